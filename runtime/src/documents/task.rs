//! Reading `content.tasks` entries (spec §1.1 `EventTask`) into validated tasks, so that nothing is
//! written before a whole entry is known to be well-formed.

use serde_json::{Map, Value};

use super::collect::Collector;
use super::order::kind;
use super::query::Matcher;
use super::select::{Projection, Selector};
use super::update::Update;
use super::Error;

/// One entry of `content.tasks`.
#[derive(Debug)]
pub(crate) enum Entry<'a> {
    /// A single task; its result is the entry's result.
    Single(Task<'a>),
    /// Tasks run as one transaction; the result is the array of their results.
    Transaction(Vec<Task<'a>>),
}

/// A validated task, with the parameters its op needs.
#[derive(Debug)]
pub(crate) enum Task<'a> {
    /// No work: `run`, or a task without `params`.
    Nothing,
    /// Insert documents; `many` when `values` was an array.
    Put {
        collection: &'a str,
        docs: Docs<'a>,
        many: bool,
    },
    /// The first match, or null.
    GetOne {
        collection: &'a str,
        matcher: Option<Matcher>,
        projection: Option<Projection>,
    },
    /// Every match, collected.
    Get {
        collection: &'a str,
        matcher: Option<Matcher>,
        projection: Option<Projection>,
        collector: Collector,
    },
    /// Update every match.
    Update {
        collection: &'a str,
        matcher: Matcher,
        update: Update,
    },
    /// Update the first match, or insert.
    Upsert {
        collection: &'a str,
        matcher: Matcher,
        update: Update,
    },
    /// Replace the first match's content, or insert.
    Replace {
        collection: &'a str,
        matcher: Matcher,
        values: &'a Map<String, Value>,
    },
    /// Delete every match.
    Delete {
        collection: &'a str,
        matcher: Matcher,
    },
    /// Count the matches.
    Count {
        collection: &'a str,
        matcher: Matcher,
    },
}

impl<'a> Entry<'a> {
    /// Reads an entry: a task object, or an array of task objects (a transaction).
    pub(crate) fn parse(entry: &'a Value) -> Result<Self, Error> {
        match entry {
            Value::Array(tasks) => tasks
                .iter()
                .map(Task::parse)
                .collect::<Result<_, _>>()
                .map(Entry::Transaction),
            _ => Task::parse(entry).map(Entry::Single),
        }
    }
}

impl<'a> Task<'a> {
    /// Reads one task object.
    pub(crate) fn parse(task: &'a Value) -> Result<Self, Error> {
        let Value::Object(task) = task else {
            return Err(Error::Invalid(format!(
                "a task must be an object, got {}",
                kind(task)
            )));
        };
        let params = match task.get("params") {
            None | Some(Value::Null) => return Ok(Task::Nothing),
            Some(Value::Object(params)) => params,
            Some(other) => {
                return Err(Error::Invalid(format!(
                    "task params must be an object, got {}",
                    kind(other)
                )))
            }
        };
        let op = match task.get("op") {
            Some(Value::String(op)) => op.as_str(),
            Some(other) => return Err(unsupported(kind(other))),
            None => return Err(unsupported("(none)")),
        };
        if op == "run" {
            return Ok(Task::Nothing);
        }
        if !OPS.contains(&op) {
            return Err(unsupported(op));
        }
        let p = Params { map: params, op };
        let collection = p.collection()?;
        Ok(match op {
            "put" => {
                let (docs, many) = p.documents()?;
                Task::Put {
                    collection,
                    docs,
                    many,
                }
            }
            "getOne" => Task::GetOne {
                collection,
                matcher: p.matcher()?,
                projection: p.projection()?,
            },
            "get" => Task::Get {
                collection,
                matcher: p.matcher()?,
                projection: p.projection()?,
                collector: p.collector()?,
            },
            "update" => Task::Update {
                collection,
                matcher: p.required_matcher()?,
                update: Update::compile(p.values()?)?,
            },
            "upsert" => Task::Upsert {
                collection,
                matcher: p.required_matcher()?,
                update: Update::compile(p.values()?)?,
            },
            "replace" => Task::Replace {
                collection,
                matcher: p.required_matcher()?,
                values: p
                    .values()?
                    .as_object()
                    .ok_or_else(|| p.invalid("values must be an object"))?,
            },
            "delete" => Task::Delete {
                collection,
                matcher: p.required_matcher()?,
            },
            _ => Task::Count {
                collection,
                matcher: p.required_matcher()?,
            },
        })
    }
}

/// The ops that take parameters (besides `run`).
const OPS: [&str; 8] = [
    "put", "getOne", "get", "update", "upsert", "replace", "delete", "count",
];

fn unsupported(op: &str) -> Error {
    Error::Invalid(format!("Unsupported task operation: {op}"))
}

/// The documents a `put` inserts.
type Docs<'a> = Vec<&'a Map<String, Value>>;

/// A task's `params`, read for one op.
struct Params<'a> {
    map: &'a Map<String, Value>,
    op: &'a str,
}

impl<'a> Params<'a> {
    fn invalid(&self, what: &str) -> Error {
        Error::Invalid(format!("{}: {what}", self.op))
    }

    /// The field, ignoring an explicit null.
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn collection(&self) -> Result<&'a str, Error> {
        match self.get("type") {
            Some(Value::String(name)) if valid_collection(name) => Ok(name),
            Some(Value::String(name)) => Err(self.invalid(&format!(
                "params.type {name:?} is not a collection name (1 to {MAX_COLLECTION} ASCII \
                 letters, digits, `_`, `-` or `.`, starting with a letter or `_`, no `..`, not \
                 `system.*`)"
            ))),
            _ => Err(self.invalid("params.type (the collection) must be a non-empty string")),
        }
    }

    fn values(&self) -> Result<&'a Value, Error> {
        self.get("values")
            .ok_or_else(|| self.invalid("params.values is required"))
    }

    /// `put` values: an object, or a non-empty array of objects (`true`: it was an array).
    fn documents(&self) -> Result<(Docs<'a>, bool), Error> {
        let not_object =
            || self.invalid("values must be an object or a non-empty array of objects");
        match self.values()? {
            Value::Object(doc) => Ok((vec![doc], false)),
            Value::Array(items) if !items.is_empty() => items
                .iter()
                .map(|item| item.as_object().ok_or_else(not_object))
                .collect::<Result<_, _>>()
                .map(|docs| (docs, true)),
            _ => Err(not_object()),
        }
    }

    fn matcher(&self) -> Result<Option<Matcher>, Error> {
        self.get("matcher").map(Matcher::compile).transpose()
    }

    fn required_matcher(&self) -> Result<Matcher, Error> {
        self.matcher()?
            .ok_or_else(|| self.invalid("params.matcher is required"))
    }

    fn projection(&self) -> Result<Option<Projection>, Error> {
        match self.get("selector") {
            None => Ok(None),
            Some(selector) => Projection::compile(&Selector::from_json(selector)?),
        }
    }

    fn collector(&self) -> Result<Collector, Error> {
        self.get("collector")
            .map_or_else(|| Ok(Collector::default()), Collector::from_json)
    }
}

/// The longest collection name.
pub const MAX_COLLECTION: usize = 64;

/// Whether `name` may name a collection: 1 to [`MAX_COLLECTION`] ASCII letters, digits, `_`, `-`
/// or `.`, starting with a letter or `_`, without `..`, and not in MongoDB's `system.` namespace
/// (so no `$cmd`, paths, NULs or system collections reach a backend).
pub fn valid_collection(name: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "_-.".contains(c);
    name.len() <= MAX_COLLECTION
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(allowed)
        && !name.contains("..")
        && !name.starts_with("system.")
}

/// The collections the tasks of a `content.tasks` entry (a task, or an array of them) name, as
/// far as they name one.
pub fn collections_of(entry: &Value) -> Vec<&str> {
    fn one(task: &Value) -> Option<&str> {
        task.get("params")?.get("type")?.as_str()
    }
    match entry {
        Value::Array(tasks) => tasks.iter().filter_map(one).collect(),
        task => one(task).into_iter().collect(),
    }
}
