//! `threds config`'s view of the settings: secrets masked, written as `threds.toml` text.

use super::Error;
use serde_json::{Map, Value};
use std::fmt::Write;

/// What a secret is replaced with.
pub const MASK: &str = "********";

/// Parts of a setting's or property's name that mark its value as secret (`jwt_secret`,
/// `sasl.password`, `ssl.key.password`, `sasl.jaas.config`, `ssl.key.pem`, ...).
const SECRET_NAMES: &[&str] = &[
    "secret",
    "password",
    "passwd",
    "jaas",
    "oauthbearer.config",
    "ssl.key.pem",
    "credential",
];

/// Masks, in place, the string values under secret names and the passwords in URLs.
pub(super) fn mask(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (name, value) in map.iter_mut() {
                if is_secret(name) {
                    hide(value);
                } else {
                    mask(value);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(mask),
        Value::String(s) => {
            if let Some(masked) = mask_url(s) {
                *s = masked;
            }
        }
        _ => {}
    }
}

/// Does `name` mark a secret?
fn is_secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_NAMES.iter().any(|s| name.contains(s))
}

/// Replaces every string in `value` with [`MASK`].
fn hide(value: &mut Value) {
    match value {
        Value::String(s) => *s = MASK.to_owned(),
        Value::Array(items) => items.iter_mut().for_each(hide),
        Value::Object(map) => map.values_mut().for_each(hide),
        _ => {}
    }
}

/// `text` with the password of a `scheme://user:password@host` URL masked (else unchanged), for
/// messages that name a server.
pub fn redact(text: &str) -> String {
    mask_url(text).unwrap_or_else(|| text.to_owned())
}

/// `scheme://user:password@rest` with the password masked (everything from the first `:` of the
/// user part to the last `@`, so an unescaped `@` or `/` in a password is masked too).
fn mask_url(s: &str) -> Option<String> {
    let start = s.find("://")? + 3;
    let rest = &s[start..];
    let at = rest.rfind('@')?;
    let colon = rest[..at].find(':')?;
    Some(format!(
        "{}{}:{MASK}{}",
        &s[..start],
        &rest[..colon],
        &rest[at..]
    ))
}

/// `tree` (an object of sections) as TOML text: each section's settings, then its subsections;
/// `null` settings as comments.
pub(super) fn render(tree: &Value) -> Result<String, Error> {
    let root = tree
        .as_object()
        .ok_or_else(|| Error::Tree("the settings are not a table".into()))?;
    let mut out = String::new();
    section(&mut out, &mut Vec::new(), root)?;
    Ok(out)
}

/// Writes the table at `path`.
fn section(
    out: &mut String,
    path: &mut Vec<String>,
    table: &Map<String, Value>,
) -> Result<(), Error> {
    if !path.is_empty() {
        let header: Vec<String> = path.iter().map(|p| key(p)).collect();
        let _ = writeln!(
            out,
            "{}[{}]",
            if out.is_empty() { "" } else { "\n" },
            header.join(".")
        );
    }
    for (name, value) in table {
        match value {
            Value::Object(_) => {}
            Value::Null => {
                let _ = writeln!(out, "# {} is unset", key(name));
            }
            other => {
                let value = toml::Value::try_from(other).map_err(|e| Error::Tree(e.to_string()))?;
                let _ = writeln!(out, "{} = {value}", key(name));
            }
        }
    }
    for (name, value) in table {
        if let Value::Object(sub) = value {
            path.push(name.clone());
            section(out, path, sub)?;
            path.pop();
        }
    }
    Ok(())
}

/// `name` as a TOML key: bare when it can be, else quoted.
fn key(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        name.to_owned()
    } else {
        toml::Value::String(name.to_owned()).to_string()
    }
}
