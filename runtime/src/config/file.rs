//! Reading `threds.toml`: TOML with every key known (an unknown one is an error naming the file,
//! the line and the key), keys of earlier releases moved to their place first.

use super::{Config, Error};
use serde::Deserialize;
use std::borrow::Cow;
use std::ops::Range;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// Keys of earlier releases and the settings they are now (both dotted: section, key).
pub const LEGACY: &[(&str, &str)] = &[
    ("bus.brokers", "bus.kafka.brokers"),
    ("bus.static_membership", "bus.kafka.static_membership"),
    ("bus.session_timeout_ms", "bus.kafka.session_timeout_ms"),
    ("bus.properties", "bus.kafka.properties"),
    ("store.redis_urls", "store.redis.urls"),
    ("store.prefix", "store.redis.prefix"),
    ("documents.mongodb_uri", "documents.mongodb.uri"),
    ("documents.database", "documents.mongodb.database"),
    ("documents.max_pool_size", "documents.mongodb.max_pool_size"),
];

/// Parses `text` (named `source` in errors).
pub(super) fn parse(source: &str, text: &str) -> Result<Config, Error> {
    let failed = |message: String| Error::Parse {
        path: source.to_owned(),
        message,
    };
    let mut root = DeTable::parse(text).map_err(|e| failed(e.to_string()))?;
    for (old, new) in LEGACY {
        move_key(root.get_mut(), old, new)
            .map_err(|(span, message)| failed(format!("line {}: {message}", line(text, span))))?;
    }
    Config::deserialize(toml::de::Deserializer::from(root)).map_err(|mut e| {
        e.set_input(Some(text));
        failed(e.to_string())
    })
}

/// The line (from 1) where `span` starts.
fn line(text: &str, span: Range<usize>) -> usize {
    text.get(..span.start)
        .map_or(0, |before| before.matches('\n').count())
        + 1
}

/// Moves the key at dotted path `old` to dotted path `new` when the file has it. Fails (with the
/// place) when the file has both, or when a part of `new`'s path is not a table.
fn move_key(root: &mut DeTable<'_>, old: &str, new: &str) -> Result<(), (Range<usize>, String)> {
    let (old_parents, old_key) = split(old);
    let Some(parent) = table(root, &old_parents) else {
        return Ok(());
    };
    let Some((key, value)) = parent.remove_entry(old_key) else {
        return Ok(());
    };
    let span = key.span();
    let (new_parents, new_key) = split(new);
    let mut target = root;
    for part in new_parents {
        if !target.contains_key(part) {
            target.insert(
                Spanned::new(span.clone(), Cow::Owned(part.to_owned())),
                Spanned::new(span.clone(), DeValue::Table(DeTable::new())),
            );
        }
        target = match target.get_mut(part).map(Spanned::get_mut) {
            Some(DeValue::Table(t)) => t,
            _ => {
                return Err((
                    span,
                    format!("`{old}` belongs in `{new}`, but `{part}` is not a table"),
                ))
            }
        };
    }
    if target.contains_key(new_key) {
        return Err((
            span,
            format!("`{old}` is the older name of `{new}`, which is set too: keep only `{new}`"),
        ));
    }
    target.insert(Spanned::new(span, Cow::Owned(new_key.to_owned())), value);
    Ok(())
}

/// The table at `path` below `root`, if every part is a table.
fn table<'a, 'i>(root: &'a mut DeTable<'i>, path: &[&str]) -> Option<&'a mut DeTable<'i>> {
    path.iter()
        .try_fold(root, |t, part| match t.get_mut(*part)?.get_mut() {
            DeValue::Table(t) => Some(t),
            _ => None,
        })
}

/// A dotted path's parents and last part.
fn split(path: &str) -> (Vec<&str>, &str) {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().unwrap_or_default();
    (parts, last)
}
