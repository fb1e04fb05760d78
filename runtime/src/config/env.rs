//! The environment overlay: the setting at `section.sub.key` is read from
//! `THREDS_SECTION_SUB_KEY`, parsed as its kind says, and written into the tree.

use super::schema::{Kind, Leaf};
use super::Error;
use serde_json::{Map, Number, Value};

/// Shorter variables of earlier releases, each naming the setting it sets (when both are given,
/// the long name wins).
pub const ALIASES: &[(&str, &str)] = &[
    ("THREDS_JWT_SECRET", "auth.jwt_secret"),
    ("THREDS_LISTEN", "server.listen"),
    ("THREDS_PATTERNS", "model.patterns"),
    ("THREDS_SESSIONS", "model.sessions"),
    ("THREDS_RESOLVER", "model.resolver"),
    ("THREDS_DATA_DIR", "storage.data_dir"),
    ("THREDS_PARTITIONS", "engine.partitions"),
    ("THREDS_HISTORY", "engine.history"),
    ("THREDS_BUS", "bus.backend"),
    ("THREDS_KAFKA_BROKERS", "bus.kafka.brokers"),
    ("THREDS_KAFKA_PROPERTIES", "bus.kafka.properties"),
    ("THREDS_STORE", "store.backend"),
    ("THREDS_REDIS_URLS", "store.redis.urls"),
    ("THREDS_DOCUMENTS", "documents.backend"),
    ("THREDS_MONGODB_URI", "documents.mongodb.uri"),
    ("THREDS_NODE", "node.name"),
];

/// The variable of the setting at `path`: `THREDS_` and the path's parts, upper case, joined
/// by `_`.
pub fn variable(path: &[&str]) -> String {
    format!("THREDS_{}", path.join("_").to_uppercase())
}

/// Writes into `tree` every variable `var` knows, for each of `leaves`: aliases first, then the
/// setting's own variable.
pub(super) fn overlay(
    tree: &mut Value,
    leaves: &[Leaf],
    var: &dyn Fn(&str) -> Option<String>,
) -> Result<(), Error> {
    for leaf in leaves {
        let setting = leaf.dotted();
        let names = ALIASES
            .iter()
            .filter(|(_, path)| *path == setting)
            .map(|(name, _)| (*name).to_owned())
            .chain(std::iter::once(variable(&leaf.path)));
        for name in names {
            let Some(text) = var(&name) else { continue };
            let slot = slot(tree, &leaf.path).ok_or_else(|| {
                Error::Tree(format!("{setting} is not in the serialized settings"))
            })?;
            *slot = parse(&leaf.kind, &text, slot.take()).map_err(|message| Error::Env {
                name,
                setting: setting.clone(),
                message,
            })?;
        }
    }
    Ok(())
}

/// The value at `path` in `tree`.
fn slot<'a>(tree: &'a mut Value, path: &[&str]) -> Option<&'a mut Value> {
    path.iter()
        .try_fold(tree, |node, part| node.as_object_mut()?.get_mut(*part))
}

/// `text` as a value of `kind`; `current` is the value before (a map adds to it). An error says
/// what was expected.
fn parse(kind: &Kind, text: &str, current: Value) -> Result<Value, String> {
    let trimmed = text.trim();
    match kind {
        Kind::Str => Ok(Value::String(text.to_owned())),
        Kind::Bool => match trimmed.to_ascii_lowercase().as_str() {
            "true" | "1" | "on" => Ok(Value::Bool(true)),
            "false" | "0" | "off" => Ok(Value::Bool(false)),
            _ => Err(format!(
                "'{text}' is not a boolean (true/false, 1/0, on/off)"
            )),
        },
        Kind::Int { min, max } => {
            let n = trimmed
                .parse::<i128>()
                .ok()
                .filter(|n| (*min..=*max).contains(n))
                .ok_or_else(|| format!("'{text}' is not a whole number from {min} to {max}"))?;
            let number = match u64::try_from(n) {
                Ok(n) => Number::from(n),
                Err(_) => {
                    Number::from(i64::try_from(n).map_err(|_| format!("'{text}' is out of range"))?)
                }
            };
            Ok(Value::Number(number))
        }
        Kind::Float => trimmed
            .parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("'{text}' is not a number")),
        Kind::Enum(variants) => variants
            .iter()
            .find(|v| v.eq_ignore_ascii_case(trimmed))
            .map(|v| Value::String((*v).to_owned()))
            .ok_or_else(|| format!("'{text}' is not one of {}", variants.join(", "))),
        Kind::Option(inner) => {
            if trimmed.is_empty() {
                Ok(Value::Null)
            } else {
                parse(inner, text, current)
            }
        }
        Kind::List(inner) => items(text)
            .map(|item| {
                parse(inner, item, Value::Null)
                    .map_err(|e| format!("{e} (in a comma-separated list)"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Kind::Map(inner) => {
            let mut map = match current {
                Value::Object(map) => map,
                _ => Map::new(),
            };
            for pair in items(text) {
                let (name, value) = pair.split_once('=').ok_or_else(|| {
                    format!("'{pair}' is not name=value (pairs separated by commas)")
                })?;
                let value = parse(inner, value.trim(), Value::Null)
                    .map_err(|e| format!("{}: {e}", name.trim()))?;
                map.insert(name.trim().to_owned(), value);
            }
            Ok(Value::Object(map))
        }
        Kind::Table(_) => Err("a section, not a setting".into()),
    }
}

/// The non-empty items of a comma-separated list, trimmed.
fn items(text: &str) -> impl Iterator<Item = &str> {
    text.split(',').map(str::trim).filter(|s| !s.is_empty())
}
