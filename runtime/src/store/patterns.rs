//! The pattern registry port: every version of every pattern the engines may run, and which version
//! of each is active (the one new threds start on). An engine told of a change loads exactly what
//! the registry holds, so every engine runs the same versions.
//!
//! The port stores the registry as one document under a version (compare-and-set); what a push,
//! an activation, a rollback or retention does to it is decided here, by [`Registry`]'s methods,
//! the same for every adapter.
//!
//! Guarantees every adapter MUST keep (checked by `threds_testkit::contract::store::patterns`):
//! - a reader sees a whole stored registry, never a mix of two;
//! - [`PatternRegistry::store_registry`] succeeds only when the stored version is the one
//!   expected, and raises it by one; otherwise it fails with [`Error::Conflict`] and changes nothing.

use super::Error;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Activations remembered per pattern for rollbacks.
const ROLLBACK_DEPTH: usize = 16;

/// One version of a pattern.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PatternVersion {
    /// Its number: 1 for the first version of the pattern id, then one more per new content.
    pub number: u32,
    /// SHA-256 (hex) of the pattern's canonical JSON (keys sorted, no whitespace).
    pub hash: String,
    /// Where it came from: `file:<path>` or `push:<who>`.
    pub origin: String,
    /// When it was first pushed (epoch ms).
    pub pushed_at: i64,
    /// The pattern JSON as pushed.
    pub source: String,
}

/// A pattern id's versions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisteredPattern {
    /// The pattern id.
    pub id: String,
    /// The active version's number (0: retired, no new threds start on it).
    pub active: u32,
    /// Versions active before, oldest first (what rollbacks go back to).
    #[serde(default)]
    pub previous: Vec<u32>,
    /// The versions kept, by number.
    pub versions: Vec<PatternVersion>,
}

impl RegisteredPattern {
    /// Version `number`, if kept.
    pub fn version(&self, number: u32) -> Option<&PatternVersion> {
        self.versions.iter().find(|v| v.number == number)
    }

    fn activate(&mut self, number: u32) {
        if self.active != number {
            if self.active > 0 {
                self.previous.push(self.active);
                if self.previous.len() > ROLLBACK_DEPTH {
                    self.previous.remove(0);
                }
            }
            self.active = number;
        }
    }
}

/// The registry: every pattern's versions, under the version the store gave it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registry {
    /// Raised by every stored change (0 = nothing stored yet).
    #[serde(skip)]
    pub version: u64,
    /// The patterns, in the order they were first pushed (unbound events are matched in it).
    pub patterns: Vec<RegisteredPattern>,
}

/// When a push makes its version active.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// Always (a push, a reload of the files).
    Always,
    /// Only when the content is new to the registry: pattern files read at an engine's start,
    /// so that a restart never undoes an activation or a rollback.
    IfNew,
    /// Never, apart from a pattern id's first version (`push --no-activate`).
    Never,
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Pushed {
    /// The pattern id.
    pub id: String,
    /// The version the content has (new or found).
    pub version: u32,
    /// Whether the content was new to the registry.
    pub new: bool,
    /// Whether that version is now the active one.
    pub active: bool,
    /// The version active before the push (0: none).
    pub was_active: u32,
}

/// Why a registry change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// No pattern with this id is registered.
    #[error("pattern {0} is not in the pattern registry")]
    UnknownPattern(String),
    /// The pattern has no such version (never pushed, or removed by retention).
    #[error("pattern {id} has no version {version} in the registry (kept: {kept})")]
    UnknownVersion {
        /// The pattern id.
        id: String,
        /// The version asked for.
        version: u32,
        /// The versions kept, listed.
        kept: String,
    },
    /// Nothing to roll back to.
    #[error("pattern {0} has no earlier active version to roll back to")]
    NoEarlierVersion(String),
    /// The registry would hold a pattern that does not load (each problem with its place).
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
    /// The source is not JSON.
    #[error("pattern {id}: not JSON: {reason}")]
    NotJson {
        /// The pattern id.
        id: String,
        /// The parser's message.
        reason: String,
    },
}

impl Registry {
    /// The versions of pattern `id`.
    pub fn pattern(&self, id: &str) -> Option<&RegisteredPattern> {
        self.patterns.iter().find(|p| p.id == id)
    }

    fn pattern_mut(&mut self, id: &str) -> Result<&mut RegisteredPattern, Refused> {
        self.patterns
            .iter_mut()
            .find(|p| p.id == id)
            .ok_or_else(|| Refused::UnknownPattern(id.to_owned()))
    }

    /// Adds `source` as a version of pattern `id` (a version with the same content is found,
    /// not added again) and activates it as `activation` says.
    pub fn push(
        &mut self,
        id: &str,
        source: &str,
        origin: &str,
        now: i64,
        activation: Activation,
    ) -> Result<Pushed, Refused> {
        let hash = content_hash(source).map_err(|reason| Refused::NotJson {
            id: id.to_owned(),
            reason,
        })?;
        if self.pattern(id).is_none() {
            self.patterns.push(RegisteredPattern {
                id: id.to_owned(),
                active: 0,
                previous: Vec::new(),
                versions: Vec::new(),
            });
        }
        let pattern = self.pattern_mut(id)?;
        let was_active = pattern.active;
        let found = pattern.versions.iter().find(|v| v.hash == hash);
        let (version, new) = match found {
            Some(v) => (v.number, false),
            None => {
                let number = pattern.versions.iter().map(|v| v.number).max().unwrap_or(0) + 1;
                pattern.versions.push(PatternVersion {
                    number,
                    hash,
                    origin: origin.to_owned(),
                    pushed_at: now,
                    source: source.to_owned(),
                });
                (number, true)
            }
        };
        let activate = match activation {
            Activation::Always => true,
            Activation::IfNew => new,
            Activation::Never => false,
        } || was_active == 0 && pattern.versions.len() == 1;
        if activate {
            pattern.activate(version);
        }
        Ok(Pushed {
            id: id.to_owned(),
            version,
            new,
            active: pattern.active == version,
            was_active,
        })
    }

    /// Makes version `number` of pattern `id` the active one.
    pub fn activate(&mut self, id: &str, number: u32) -> Result<(), Refused> {
        let pattern = self.pattern_mut(id)?;
        if pattern.version(number).is_none() {
            return Err(unknown_version(pattern, number));
        }
        pattern.activate(number);
        Ok(())
    }

    /// Makes the version active before the current one active again; answers its number.
    pub fn rollback(&mut self, id: &str) -> Result<u32, Refused> {
        let pattern = self.pattern_mut(id)?;
        while let Some(number) = pattern.previous.pop() {
            if number != pattern.active && pattern.version(number).is_some() {
                pattern.active = number;
                return Ok(number);
            }
        }
        Err(Refused::NoEarlierVersion(id.to_owned()))
    }

    /// Retires every pattern not in `ids` (no new threds start on it; its versions stay for the
    /// threds that run them): what reloading every pattern file does to patterns no file defines.
    pub fn retire_others(&mut self, ids: &[String]) {
        for p in &mut self.patterns {
            if !ids.contains(&p.id) {
                p.activate(0);
            }
        }
    }

    /// Removes versions that are neither active, nor among the `kept` newest of their pattern,
    /// nor in use (`in_use(id, number)`: live threds run it); answers what was removed.
    pub fn prune(&mut self, kept: usize, in_use: impl Fn(&str, u32) -> bool) -> Vec<(String, u32)> {
        let mut removed = Vec::new();
        for p in &mut self.patterns {
            let mut numbers: Vec<u32> = p.versions.iter().map(|v| v.number).collect();
            numbers.sort_unstable_by(|a, b| b.cmp(a));
            // The newest always stays, so a number is never given twice.
            let newest: Vec<u32> = numbers.into_iter().take(kept.max(1)).collect();
            let (active, id) = (p.active, p.id.clone());
            p.versions.retain(|v| {
                let keep =
                    v.number == active || newest.contains(&v.number) || in_use(&id, v.number);
                if !keep {
                    removed.push((id.clone(), v.number));
                }
                keep
            });
        }
        removed
    }
}

fn unknown_version(pattern: &RegisteredPattern, number: u32) -> Refused {
    let kept: Vec<String> = pattern
        .versions
        .iter()
        .map(|v| v.number.to_string())
        .collect();
    Refused::UnknownVersion {
        id: pattern.id.clone(),
        version: number,
        kept: kept.join(", "),
    }
}

/// SHA-256 (hex) of `source`'s canonical JSON: object keys sorted, no whitespace — so that
/// reformatting a pattern file does not make a new version.
pub fn content_hash(source: &str) -> Result<String, String> {
    use sha2::Digest;
    let value: Value = serde_json::from_str(source).map_err(|e| e.to_string())?;
    let mut canonical = String::new();
    write_canonical(&value, &mut canonical);
    let digest = sha2::Sha256::digest(canonical.as_bytes());
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// Keeps the pattern registry of a deployment.
#[async_trait]
pub trait PatternRegistry: Send + Sync + 'static {
    /// The registry as stored, with its version (0 and empty before anything is stored).
    async fn registry(&self) -> Result<Registry, Error>;

    /// Stores `registry` in place of the stored one if that is still at version `expected`;
    /// answers the new version (`expected + 1`), or [`Error::Conflict`] when another change came
    /// first (read again and redo the change).
    async fn store_registry(&self, expected: u64, registry: &Registry) -> Result<u64, Error>;
}

/// Why a registry update failed.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    /// The change itself was refused.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// The registry could not be read or written.
    #[error("pattern registry: {0}")]
    Store(#[from] Error),
}

/// Reads the registry, applies `change`, and stores the result, again from a fresh read when
/// another change came in between; answers `change`'s answer and the stored registry.
pub async fn update<T>(
    port: &dyn PatternRegistry,
    mut change: impl FnMut(&mut Registry) -> Result<T, Refused>,
) -> Result<(T, Registry), UpdateError> {
    let mut attempts = 0;
    loop {
        let mut registry = port.registry().await?;
        let expected = registry.version;
        let answer = change(&mut registry)?;
        match port.store_registry(expected, &registry).await {
            Ok(version) => {
                registry.version = version;
                return Ok((answer, registry));
            }
            Err(Error::Conflict(_)) if attempts < 16 => attempts += 1,
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const V1: &str = r#"{"id": "p", "name": "P", "reactions": [{"name": "a"}]}"#;
    const V1_REFORMATTED: &str = r#"{"reactions":[{"name":"a"}],"name":"P","id":"p"}"#;
    const V2: &str = r#"{"id": "p", "name": "P", "reactions": [{"name": "b"}]}"#;

    #[test]
    fn reformatting_is_not_a_new_version() {
        assert_eq!(content_hash(V1), content_hash(V1_REFORMATTED));
        assert_ne!(content_hash(V1), content_hash(V2));
    }

    #[test]
    fn pushes_number_versions_and_activate_as_asked() {
        let mut r = Registry::default();
        let first = r.push("p", V1, "file:a", 1, Activation::Never).unwrap();
        assert_eq!((first.version, first.new, first.active), (1, true, true));
        let again = r.push("p", V1_REFORMATTED, "push:x", 2, Activation::Always);
        assert_eq!(again.unwrap().version, 1);
        let second = r.push("p", V2, "push:x", 3, Activation::Never).unwrap();
        assert_eq!(
            (second.version, second.new, second.active),
            (2, true, false)
        );
        assert_eq!(r.pattern("p").unwrap().active, 1);
        // Files read at start activate only new content: a rollback survives a restart.
        r.activate("p", 2).unwrap();
        r.rollback("p").unwrap();
        let restart = r.push("p", V2, "file:a", 4, Activation::IfNew).unwrap();
        assert!(!restart.new && !restart.active);
        assert_eq!(r.pattern("p").unwrap().active, 1);
    }

    #[test]
    fn rollback_goes_back_through_earlier_activations() {
        let mut r = Registry::default();
        r.push("p", V1, "o", 1, Activation::Always).unwrap();
        r.push("p", V2, "o", 2, Activation::Always).unwrap();
        assert_eq!(r.rollback("p"), Ok(1));
        assert_eq!(r.rollback("p"), Err(Refused::NoEarlierVersion("p".into())));
        assert!(matches!(
            r.activate("p", 7),
            Err(Refused::UnknownVersion { version: 7, .. })
        ));
    }

    #[test]
    fn retention_keeps_the_active_the_newest_and_those_in_use() {
        let mut r = Registry::default();
        for i in 1..=5 {
            let source = format!(r#"{{"id": "p", "n": {i}}}"#);
            r.push("p", &source, "o", i, Activation::Always).unwrap();
        }
        r.activate("p", 1).unwrap();
        let removed = r.prune(2, |_, n| n == 2);
        assert_eq!(removed, vec![("p".to_string(), 3)]);
        let kept: Vec<u32> = r.patterns[0].versions.iter().map(|v| v.number).collect();
        assert_eq!(kept, vec![1, 2, 4, 5]);
    }
}
