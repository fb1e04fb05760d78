//! Pattern reloads: the engine that handles a reload request reads the pattern files again and
//! registers their sources in the pattern registry; every other engine, told of it on the control
//! topic, loads exactly those sources from the registry. A reload that fails leaves the running
//! patterns in force.

use super::MachineHandle;
use crate::config::ModelConfig;
use crate::files;
use crate::store::{self, PatternRegistry};
use threds_patterns::machine::Machine;

/// Why patterns were not reloaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pattern, sessions or resolver files have problems (each with its file and place).
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
    /// The pattern registry could not be read.
    #[error("reading the pattern registry")]
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

impl Error {
    /// The stable code of a failed reload.
    pub fn code(&self) -> &'static str {
        crate::codes::RELOAD_FAILED
    }
}

fn problems(errors: &[files::Error]) -> Error {
    Error::Files(errors.iter().map(ToString::to_string).collect())
}

/// Reads the model files again (checking that pattern `id` is among them, when given), runs them
/// through `handle`, and answers the pattern sources for the registry.
pub fn from_files(
    model: &ModelConfig,
    handle: &MachineHandle,
    id: Option<&str>,
) -> Result<Vec<(String, String)>, Error> {
    let paths = std::slice::from_ref(&model.patterns);
    let machine = files::load_machine(paths, model.sessions.as_deref(), model.resolver.as_deref())
        .map_err(Error::Files)?;
    if let Some(id) = id {
        if machine.patterns().get(id).is_none() {
            return Err(Error::NotFound {
                id: id.to_owned(),
                path: model.patterns.display().to_string(),
            });
        }
    }
    let sources = files::pattern_sources(paths).map_err(|e| problems(&e))?;
    handle.replace(machine);
    tracing::info!(patterns = sources.len(), "patterns reloaded");
    Ok(sources)
}

/// Runs the patterns of the registry (at least at `version`) with the running machine's sessions
/// model and resolver: what another engine announced it reloaded.
pub async fn from_registry(
    registry: &dyn PatternRegistry,
    handle: &MachineHandle,
    version: u64,
) -> Result<(), Error> {
    let registered = registry
        .registered_patterns()
        .await
        .map_err(Error::Registry)?;
    if registered.version < version {
        return Err(Error::Stale {
            found: registered.version,
            announced: version,
        });
    }
    let set = files::registered_set(&registered.patterns).map_err(|e| problems(&e))?;
    let running = handle.current();
    let n = set.len();
    handle.replace(Machine::new(
        set,
        running.sessions().clone(),
        running.resolver().clone(),
    ));
    tracing::info!(
        patterns = n,
        version = registered.version,
        "patterns loaded from the registry"
    );
    Ok(())
}

/// Registers the pattern files when the registry is empty (the first engine of a deployment), so
/// that it holds what the engines run from the start.
pub async fn seed(registry: &dyn PatternRegistry, model: &ModelConfig) {
    match registry.registered_patterns().await {
        Ok(registered) if registered.version > 0 => {}
        Ok(_) => match files::pattern_sources(std::slice::from_ref(&model.patterns)) {
            Ok(sources) => {
                if let Err(e) = registry.register_patterns(sources).await {
                    tracing::warn!(code = crate::codes::BACKEND_UNAVAILABLE, error = %e, "could not register the patterns");
                }
            }
            Err(errors) => {
                tracing::warn!(problems = errors.len(), "pattern files not registered")
            }
        },
        Err(e) => {
            tracing::warn!(code = crate::codes::BACKEND_UNAVAILABLE, error = %e, "could not read the pattern registry")
        }
    }
}
