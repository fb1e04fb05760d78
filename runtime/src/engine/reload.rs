//! Pattern versions on an engine: pushing pattern sources (from the files or from an admin) into
//! the pattern registry, then running what the registry holds. The engine that changes the
//! registry announces it on the control topic; every other engine loads exactly the registry's
//! content. A push with problems changes nothing: the registry never holds a version an engine
//! could not load.

use super::MachineHandle;
use crate::config::ModelConfig;
use crate::files::{self, PatternSource};
use crate::store::patterns::{update, Refused, UpdateError};
use crate::store::{self, Activation, PatternRegistry, Pushed, Registry, Threds};
use threds_patterns::load;
use threds_patterns::machine::{quota, Machine};

/// Why patterns were not pushed or loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pattern, sessions or resolver files (or pushed sources) have problems, each with its
    /// file (or pattern) and place.
    #[error("{}", .0.join("; "))]
    Files(Vec<String>),
    /// The pattern asked for is not among the files.
    #[error("pattern {id} is not in {path}")]
    NotFound {
        /// The pattern id.
        id: String,
        /// Where the patterns were read from.
        path: String,
    },
    /// The registry refused the change (an unknown pattern or version, nothing to roll back to).
    #[error(transparent)]
    Refused(#[from] Refused),
    /// The pattern registry or the thred store could not be read or written.
    #[error("pattern registry: {0}")]
    Registry(#[source] store::Error),
    /// The registry holds an older version than the one announced.
    #[error("the pattern registry is at version {found}, older than the announced {announced}")]
    Stale {
        /// The registry's version.
        found: u64,
        /// The announced version.
        announced: u64,
    },
}

impl From<UpdateError> for Error {
    fn from(e: UpdateError) -> Error {
        match e {
            UpdateError::Refused(r) => Error::Refused(r),
            UpdateError::Store(e) => Error::Registry(e),
        }
    }
}

impl Error {
    /// The stable code of a failed push or reload.
    pub fn code(&self) -> &'static str {
        crate::codes::RELOAD_FAILED
    }
}

fn problems(errors: &[files::Error]) -> Error {
    Error::Files(errors.iter().map(ToString::to_string).collect())
}

/// Reads the model files again (checking that pattern `id` is among them, when given): the
/// patterns' sources, and the machine of the files (for its sessions model and resolver).
pub fn read_files(
    model: &ModelConfig,
    id: Option<&str>,
) -> Result<(Vec<PatternSource>, Machine), Error> {
    let paths = std::slice::from_ref(&model.patterns);
    let machine = files::load_machine(paths, model.sessions.as_deref(), model.resolver.as_deref())
        .map_err(Error::Files)?;
    let mut sources = files::pattern_sources(paths).map_err(|e| problems(&e))?;
    if let Some(id) = id {
        sources.retain(|s| s.id == id);
        if sources.is_empty() {
            return Err(Error::NotFound {
                id: id.to_owned(),
                path: model.patterns.display().to_string(),
            });
        }
    }
    Ok((sources, machine))
}

/// Checks pattern JSON texts given by an admin: each must load; answers them as sources from
/// `origin`. `name` names each text in problems (`<name>[i]`).
pub fn sources_of(texts: &[String], name: &str, origin: &str) -> Result<Vec<PatternSource>, Error> {
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        match load::pattern(&format!("{name}[{i}]"), text) {
            Ok(loaded) => sources.push(PatternSource {
                id: loaded.value.id,
                text: text.clone(),
                origin: origin.to_owned(),
            }),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if errors.is_empty() {
        Ok(sources)
    } else {
        Err(Error::Files(errors))
    }
}

/// What a push asks of the registry.
#[derive(Debug, Clone, Copy)]
pub struct Push {
    /// When the pushed versions become active.
    pub activation: Activation,
    /// Retire registered patterns the push does not name (reloading every pattern file).
    pub retire_others: bool,
    /// Versions kept per pattern beyond the active one and those live threds run.
    pub kept: usize,
    /// Now (epoch ms).
    pub now: i64,
}

/// Pushes `sources` into the registry as `push` says, removes versions retention no longer keeps
/// (never one a live thred runs), and answers what each push did with the registry stored.
/// Nothing is stored when the result would not load.
pub async fn push(
    registry: &dyn PatternRegistry,
    threds: &dyn Threds,
    sources: &[PatternSource],
    push: Push,
) -> Result<(Vec<Pushed>, Registry), Error> {
    let in_use = versions_in_use(registry, threds).await?;
    let (pushed, stored) = update(registry, |r| {
        let mut pushed = Vec::new();
        for s in sources {
            pushed.push(r.push(&s.id, &s.text, &s.origin, push.now, push.activation)?);
        }
        if push.retire_others {
            let ids: Vec<String> = sources.iter().map(|s| s.id.clone()).collect();
            r.retire_others(&ids);
        }
        let removed = r.prune(push.kept, |id, n| in_use.contains(&(id.to_owned(), n)));
        for (id, n) in removed {
            tracing::info!(
                pattern = id,
                version = n,
                "pattern version removed (retention)"
            );
        }
        files::registry_set(r)
            .map_err(|e| Refused::Invalid(e.iter().map(ToString::to_string).collect()))?;
        Ok(pushed)
    })
    .await?;
    Ok((pushed, stored))
}

/// Changes the registry with `change` (an activation or a rollback), checked to load.
pub async fn change<T>(
    registry: &dyn PatternRegistry,
    mut change: impl FnMut(&mut Registry) -> Result<T, Refused>,
) -> Result<(T, Registry), Error> {
    Ok(update(registry, |r| {
        let answer = change(r)?;
        files::registry_set(r)
            .map_err(|e| Refused::Invalid(e.iter().map(ToString::to_string).collect()))?;
        Ok(answer)
    })
    .await?)
}

/// Every `(pattern id, version)` that live threds run, from the version counters.
pub async fn versions_in_use(
    registry: &dyn PatternRegistry,
    threds: &dyn Threds,
) -> Result<Vec<(String, u32)>, Error> {
    let current = registry.registry().await.map_err(Error::Registry)?;
    let live = live_per_version(&current, threds).await?;
    let all = current
        .patterns
        .iter()
        .flat_map(|p| p.versions.iter().map(|v| (p.id.clone(), v.number)));
    Ok(all
        .zip(live)
        .filter(|(_, n)| *n > 0)
        .map(|(v, _)| v)
        .collect())
}

/// Live threds per version of the registry, pattern by pattern, version by version.
pub async fn live_per_version(registry: &Registry, threds: &dyn Threds) -> Result<Vec<u64>, Error> {
    let keys: Vec<String> = registry
        .patterns
        .iter()
        .flat_map(|p| {
            p.versions
                .iter()
                .map(|v| quota::version_key(&p.id, v.number))
        })
        .collect();
    let counters = threds.counters(&keys).await.map_err(Error::Registry)?;
    Ok(counters.into_iter().map(|c| c.counter.instances).collect())
}

/// Runs `registry` on `handle`, with the running machine's sessions model and resolver unless
/// `with` (the files just read) gives others.
pub fn run(
    registry: &Registry,
    handle: &MachineHandle,
    with: Option<Machine>,
) -> Result<(), Error> {
    let set = files::registry_set(registry).map_err(|e| problems(&e))?;
    let base = match with {
        Some(machine) => machine,
        None => {
            let running = handle.current();
            Machine::new(
                Default::default(),
                running.sessions().clone(),
                running.resolver().clone(),
            )
        }
    };
    let n = set.len();
    handle.replace(Machine::new(
        set,
        base.sessions().clone(),
        base.resolver().clone(),
    ));
    tracing::info!(
        patterns = n,
        version = registry.version,
        "patterns loaded from the registry"
    );
    Ok(())
}

/// Runs the registry's patterns (at least at `version`): what another engine announced.
pub async fn from_registry(
    registry: &dyn PatternRegistry,
    handle: &MachineHandle,
    version: u64,
) -> Result<(), Error> {
    let stored = registry.registry().await.map_err(Error::Registry)?;
    if stored.version < version {
        return Err(Error::Stale {
            found: stored.version,
            announced: version,
        });
    }
    run(&stored, handle, None)
}

/// At an engine's start: pushes the pattern files (a version is activated only when its content
/// is new to the registry, so a restart never undoes an activation or rollback) and runs what the
/// registry then holds. When the registry cannot be reached, the engine runs the files as loaded
/// (unversioned) and says so.
pub async fn start(
    registry: &dyn PatternRegistry,
    threds: &dyn Threds,
    model: &ModelConfig,
    handle: &MachineHandle,
    kept: usize,
    now: i64,
) {
    let sources = match files::pattern_sources(std::slice::from_ref(&model.patterns)) {
        Ok(sources) => sources,
        Err(errors) => {
            tracing::warn!(problems = errors.len(), "pattern files not registered");
            return;
        }
    };
    let spec = Push {
        activation: Activation::IfNew,
        retire_others: false,
        kept,
        now,
    };
    match push(registry, threds, &sources, spec).await {
        Ok((pushed, stored)) => {
            for p in pushed.iter().filter(|p| p.new) {
                tracing::info!(
                    pattern = p.id,
                    version = p.version,
                    active = p.active,
                    "pattern version registered from the files"
                );
            }
            if let Err(e) = run(&stored, handle, None) {
                tracing::warn!(code = e.code(), error = %e, "could not run the pattern registry; running the files");
            }
        }
        Err(e) => {
            tracing::warn!(code = crate::codes::BACKEND_UNAVAILABLE, error = %e, "could not register the pattern files; running them unversioned")
        }
    }
}
