//! Reading pattern, sessions-model and resolver files from disk, with precise error locations.

use crate::store::Registry;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use threds_patterns::load::{self, Loaded, Problem};
use threds_patterns::model::{ResolverConfig, SessionsModel};
use threds_patterns::pattern::{Pattern, PatternSet};

/// The suffix of pattern files found in directories.
pub const PATTERN_SUFFIX: &str = ".pattern.json";

/// A file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file or directory could not be read.
    #[error("{path}: {source}")]
    Io {
        /// What we tried to read.
        path: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The content is invalid (every problem, with file, JSON path and line).
    #[error("{0}")]
    Invalid(load::Error),
}

impl Error {
    /// Every problem as one line each.
    pub fn lines(&self) -> Vec<String> {
        match self {
            Error::Io { .. } => vec![self.to_string()],
            Error::Invalid(e) => e.problems.iter().map(ToString::to_string).collect(),
        }
    }
}

fn read(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Expands files and directories into pattern files: a file stands for itself; a directory for
/// every `*.pattern.json` below it, sorted by path, skipping hidden entries (names starting with
/// `.`: editor files, and the `..data` directory a Kubernetes ConfigMap volume keeps beside the
/// links to its files, which would load every pattern twice).
pub fn pattern_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, Error> {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?;
        if meta.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found)?;
            found.sort();
            out.extend(found);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    let io = |source| Error::Io {
        path: dir.display().to_string(),
        source,
    };
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let entry = entry.map_err(io)?;
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(PATTERN_SUFFIX))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Loads one pattern file.
pub fn pattern(path: &Path) -> Result<Loaded<Pattern>, Error> {
    load::pattern(&path.display().to_string(), &read(path)?).map_err(Error::Invalid)
}

/// Loads a sessions model.
pub fn sessions(path: &Path) -> Result<Loaded<SessionsModel>, Error> {
    load::sessions(&path.display().to_string(), &read(path)?).map_err(Error::Invalid)
}

/// Loads a resolver config.
pub fn resolver(path: &Path) -> Result<Loaded<ResolverConfig>, Error> {
    load::resolver(&path.display().to_string(), &read(path)?).map_err(Error::Invalid)
}

/// A pattern file's content, for the pattern registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternSource {
    /// The pattern id.
    pub id: String,
    /// The JSON text.
    pub text: String,
    /// Where it came from (`file:<path>`).
    pub origin: String,
}

/// The source of every pattern file under `paths` (for the pattern registry).
pub fn pattern_sources(paths: &[PathBuf]) -> Result<Vec<PatternSource>, Vec<Error>> {
    let files = pattern_files(paths).map_err(|e| vec![e])?;
    let mut sources = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        let name = file.display().to_string();
        let loaded = read(&file).and_then(|text| {
            load::pattern(&name, &text)
                .map(|p| PatternSource {
                    id: p.value.id,
                    text,
                    origin: format!("file:{name}"),
                })
                .map_err(Error::Invalid)
        });
        match loaded {
            Ok(source) => sources.push(source),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(sources)
    } else {
        Err(errors)
    }
}

/// The pattern set the registry describes: each pattern's active version, and its other versions
/// retained for the threds that run them (a retired pattern has only those). Each problem names
/// the pattern as `registry:<id>@<version>`.
pub fn registry_set(registry: &Registry) -> Result<PatternSet, Vec<Error>> {
    let mut set = PatternSet::new();
    let mut errors = Vec::new();
    for registered in &registry.patterns {
        for version in &registered.versions {
            let name = format!("registry:{}@{}", registered.id, version.number);
            match load::pattern(&name, &version.source) {
                Ok(loaded) if loaded.value.id != registered.id => {
                    errors.push(Error::Invalid(load::Error {
                        problems: vec![Problem {
                            source: name,
                            line: None,
                            path: "id".into(),
                            reason: format!(
                                "is '{}', not the registered id '{}'",
                                loaded.value.id, registered.id
                            ),
                        }],
                    }))
                }
                Ok(loaded) => {
                    let mut pattern = loaded.value;
                    pattern.version = version.number;
                    if version.number == registered.active {
                        set.insert(Arc::new(pattern));
                    } else {
                        set.retain(Arc::new(pattern));
                    }
                }
                Err(e) => errors.push(Error::Invalid(e)),
            }
        }
    }
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(errors)
    }
}

/// Loads every pattern under `paths` into a set; all problems of all files are returned together,
/// including two files defining the same pattern id.
pub fn pattern_set(paths: &[PathBuf]) -> Result<PatternSet, Vec<Error>> {
    let files = pattern_files(paths).map_err(|e| vec![e])?;
    let mut set = PatternSet::new();
    let mut errors = Vec::new();
    let mut seen: HashMap<String, PathBuf> = HashMap::new();
    for file in files {
        match pattern(&file) {
            Ok(loaded) => {
                let p = loaded.value;
                if let Some(first) = seen.get(&p.id) {
                    errors.push(Error::Invalid(load::Error {
                        problems: vec![Problem {
                            source: file.display().to_string(),
                            line: None,
                            path: "id".into(),
                            reason: format!(
                                "pattern id '{}' is already defined by {}",
                                p.id,
                                first.display()
                            ),
                        }],
                    }));
                    continue;
                }
                seen.insert(p.id.clone(), file.clone());
                set.insert(Arc::new(p));
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(errors)
    }
}

/// Loads patterns, sessions and resolver into an engine; every problem is reported.
pub fn load_machine(
    patterns: &[PathBuf],
    sessions: Option<&std::path::Path>,
    resolver: Option<&std::path::Path>,
) -> Result<threds_patterns::machine::Machine, Vec<String>> {
    let mut problems = Vec::new();
    let set = pattern_set(patterns)
        .map_err(|errs| problems.extend(errs.iter().flat_map(|e| e.lines())))
        .ok();
    let sessions = match sessions.map(self::sessions) {
        Some(Ok(s)) => s.value,
        Some(Err(e)) => {
            problems.extend(e.lines());
            Default::default()
        }
        None => Default::default(),
    };
    let resolver = match resolver.map(self::resolver) {
        Some(Ok(r)) => r.value,
        Some(Err(e)) => {
            problems.extend(e.lines());
            Default::default()
        }
        None => Default::default(),
    };
    match set {
        Some(set) if problems.is_empty() => Ok(threds_patterns::machine::Machine::new(
            set, sessions, resolver,
        )),
        _ => Err(problems),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_directory_stands_for_its_visible_pattern_files_once() {
        // The layout of a mounted ConfigMap: links beside a hidden `..data` directory.
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("..2026_12_06_10_00_00.1");
        std::fs::create_dir_all(data.join("nested")).unwrap();
        std::fs::write(data.join("a.pattern.json"), "{}").unwrap();
        std::fs::write(data.join("nested/b.pattern.json"), "{}").unwrap();
        std::os::unix::fs::symlink(&data, dir.path().join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/a.pattern.json", dir.path().join("a.pattern.json"))
            .unwrap();
        std::fs::write(dir.path().join(".b.pattern.json.swp"), "").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "").unwrap();
        let found = pattern_files(&[dir.path().to_path_buf()]).unwrap();
        assert_eq!(found, vec![dir.path().join("a.pattern.json")]);
        // Named directly, the hidden directory is walked like any other.
        let found = pattern_files(&[dir.path().join("..data")]).unwrap();
        assert_eq!(found.len(), 2, "{found:?}");
    }
}
