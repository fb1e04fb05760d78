//! Events: the unit of input and output of every thred (spec §1.1).
//!
//! An [`Event`] wraps the event's JSON object as it arrived, so unknown fields travel unchanged and
//! expressions can borrow `$event` without a copy. Construction validates the required fields.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;
use std::sync::Arc;

/// Type of every engine-generated event.
pub const TELL: &str = "org.wt.tell";
/// Type of engine-generated broadcast and echo events.
pub const BROADCAST: &str = "org.wt.broadcast";
/// A participant's response to an interaction (triggers the echo effect).
pub const CLIENT_TELL: &str = "org.wt.client.tell";
/// A participant's broadcast request (builtin reaction).
pub const CLIENT_BROADCAST: &str = "org.wt.client.broadcast";
/// Admin system-control events.
pub const SYS_CONTROL: &str = "org.wt.control.sysControl";
/// Admin data-control events.
pub const DATA_CONTROL: &str = "org.wt.control.dataControl";
/// User-control events (any participant).
pub const USER_CONTROL: &str = "org.wt.control.userControl";
/// The reserved thred id and source id of system events.
pub const SYSTEM: &str = "SYSTEM";
/// Display name of the system source.
pub const SYSTEM_NAME: &str = "Workthreds Bot";

/// Why a JSON value is not a valid event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The value is not a JSON object.
    #[error("an event must be a JSON object")]
    NotAnObject,
    /// A required field is absent or has the wrong type.
    #[error("event field `{field}` must be {expected}")]
    Field {
        /// JSON path of the field, e.g. `source.id`.
        field: &'static str,
        /// What was expected.
        expected: &'static str,
    },
}

/// An event: a JSON object with at least `id`, `type` and `source.id` (strings).
/// Immutable and cheap to clone (shared), since one event is recorded, routed and sent many times.
#[derive(Clone, PartialEq)]
pub struct Event(Arc<Value>);

impl Event {
    /// Validates `value` as an event (object; string `id`, `type`, `source.id`; optional string or
    /// null `thredId` and `re`; `data` an object when present).
    pub fn from_value(value: Value) -> Result<Event, Error> {
        let obj = value.as_object().ok_or(Error::NotAnObject)?;
        require_str(obj, "id", "id")?;
        require_str(obj, "type", "type")?;
        let source = obj
            .get("source")
            .and_then(Value::as_object)
            .ok_or(Error::Field {
                field: "source",
                expected: "an object with a string `id`",
            })?;
        require_str(source, "id", "source.id")?;
        optional_str(obj, "thredId", "thredId")?;
        optional_str(obj, "re", "re")?;
        match obj.get("data") {
            None | Some(Value::Null) | Some(Value::Object(_)) => {}
            Some(_) => {
                return Err(Error::Field {
                    field: "data",
                    expected: "an object",
                })
            }
        }
        Ok(Event(Arc::new(value)))
    }

    /// Wraps a value the caller built with every required field (crate-internal, unchecked).
    pub(crate) fn from_trusted(value: Value) -> Event {
        debug_assert!(
            Event::from_value(value.clone()).is_ok(),
            "not an event: {value}"
        );
        Event(Arc::new(value))
    }

    /// The event id.
    pub fn id(&self) -> &str {
        self.str_field("id").unwrap_or_default()
    }

    /// The event type, e.g. `org.wt.tell`.
    pub fn event_type(&self) -> &str {
        self.str_field("type").unwrap_or_default()
    }

    /// The source object.
    pub fn source(&self) -> &Value {
        self.0.get("source").unwrap_or(&Value::Null)
    }

    /// The source id (the participant or agent that sent the event).
    pub fn source_id(&self) -> &str {
        self.source()
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The thred this event is bound to; `None` for an unbound event (spec §1.3).
    pub fn thred_id(&self) -> Option<&str> {
        self.str_field("thredId")
    }

    /// The id of the event this one responds to.
    pub fn re(&self) -> Option<&str> {
        self.str_field("re")
    }

    /// `data`, when present.
    pub fn data(&self) -> Option<&Value> {
        self.0.get("data").filter(|d| !d.is_null())
    }

    /// `data.content`, when present.
    pub fn content(&self) -> Option<&Value> {
        self.data()
            .and_then(|d| d.get("content"))
            .filter(|c| !c.is_null())
    }

    /// `data.content.values`, when present.
    pub fn values(&self) -> Option<&Value> {
        self.content()
            .and_then(|c| c.get("values"))
            .filter(|v| !v.is_null())
    }

    /// `data.content.error`, when present and not null (an agent reporting a failure).
    pub fn error(&self) -> Option<&Value> {
        self.content()
            .and_then(|c| c.get("error"))
            .filter(|e| !e.is_null())
    }

    /// `valueNamed` of spec §1.1: depth-first, pre-order search of `data.content.values` for the
    /// first non-null value under key `name`.
    pub fn value_named(&self, name: &str) -> Option<&Value> {
        self.values().and_then(|v| value_named(v, name))
    }

    /// True for the admin/user control types handled outside patterns (spec §4.9).
    pub fn is_system(&self) -> bool {
        matches!(self.event_type(), SYS_CONTROL | DATA_CONTROL | USER_CONTROL)
    }

    /// The whole event as JSON.
    pub fn as_value(&self) -> &Value {
        &self.0
    }

    /// The whole event as JSON, by value.
    pub fn into_value(self) -> Value {
        Arc::unwrap_or_clone(self.0)
    }

    /// A copy of this event bound to `thred_id`.
    pub fn with_thred_id(&self, thred_id: &str) -> Event {
        let mut value = Value::clone(&self.0);
        if let Value::Object(obj) = &mut value {
            obj.insert("thredId".into(), Value::String(thred_id.into()));
        }
        Event(Arc::new(value))
    }

    /// Replaces the source with `{id}` (the authenticated participant), keeping nothing the client claimed.
    pub fn with_source_id(self, source_id: &str) -> Event {
        let mut source = Map::new();
        source.insert("id".into(), Value::String(source_id.into()));
        self.with_source(source)
    }

    /// Replaces the source with `source`, which must hold a string `id` (the caller vouches for it).
    pub fn with_source(mut self, source: Map<String, Value>) -> Event {
        if source.get("id").is_some_and(Value::is_string) {
            if let Value::Object(obj) = Arc::make_mut(&mut self.0) {
                obj.insert("source".into(), Value::Object(source));
            }
        }
        self
    }

    /// Sets `time` when absent (as the reference's queue does).
    pub fn with_default_time(mut self, now: i64) -> Event {
        if self.0.get("time").is_some() {
            return self;
        }
        if let Value::Object(obj) = Arc::make_mut(&mut self.0) {
            obj.entry("time").or_insert_with(|| Value::from(now));
        }
        self
    }

    fn str_field(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }
}

/// The recursive search behind [`Event::value_named`], usable on any value.
pub fn value_named<'v>(value: &'v Value, name: &str) -> Option<&'v Value> {
    match value {
        Value::Object(obj) => {
            if let Some(hit) = obj.get(name).filter(|v| !v.is_null()) {
                return Some(hit);
            }
            obj.values().find_map(|v| value_named(v, name))
        }
        Value::Array(items) => items.iter().find_map(|v| value_named(v, name)),
        _ => None,
    }
}

fn require_str(obj: &Map<String, Value>, key: &str, field: &'static str) -> Result<(), Error> {
    match obj.get(key) {
        Some(Value::String(_)) => Ok(()),
        _ => Err(Error::Field {
            field,
            expected: "a string",
        }),
    }
}

fn optional_str(obj: &Map<String, Value>, key: &str, field: &'static str) -> Result<(), Error> {
    match obj.get(key) {
        None | Some(Value::Null) | Some(Value::String(_)) => Ok(()),
        _ => Err(Error::Field {
            field,
            expected: "a string or null",
        }),
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Event({})", self.0)
    }
}

impl Serialize for Event {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Event::from_value(value).map_err(serde::de::Error::custom)
    }
}

/// The source of an event: `{id, name?, uri?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Source {
    /// Participant or agent id.
    pub id: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A URI for the source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
}

impl Source {
    /// The system source `{id: "SYSTEM", name: "Workthreds Bot"}`.
    pub fn system() -> Source {
        Source {
            id: SYSTEM.into(),
            name: Some(SYSTEM_NAME.into()),
            uri: None,
        }
    }
}

/// The typed view of an event's `data` envelope (spec §1.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct EventData {
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `{uri}` to display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<Value>,
    /// What the sender expects back: `{eventType?, title?, template?}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub advice: Option<Value>,
    /// The payload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<EventContent>,
}

/// The typed view of `data.content`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct EventContent {
    /// A label for the kind of `values`.
    #[serde(
        default,
        rename = "valuesType",
        skip_serializing_if = "Option::is_none"
    )]
    pub values_type: Option<String>,
    /// Free-form payload (object or array of objects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Value>,
    /// Tasks for agents; an inner array is one transaction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<Vec<TaskEntry>>,
    /// Referenced resources `{contentType, uri}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Vec<Value>>,
    /// Inline content `{contentType, encoding, content}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Vec<Value>>,
    /// An error report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<EventError>,
}

/// One entry of `content.tasks`: a task, or an array of tasks run as one transaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TaskEntry {
    /// A single task.
    Task(EventTask),
    /// Tasks run in one transaction.
    Transaction(Vec<EventTask>),
}

/// A task for an agent (spec §1.1): `{op, name?, params?, options?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventTask {
    /// `put | getOne | get | update | upsert | replace | delete | count | run`.
    pub op: String,
    /// A name for the task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `{type, values?, matcher?, selector?, collector?}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Value>,
    /// Free options (e.g. `dbname`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Value>,
}

/// An error carried in `content.error`: `{message, code?, cause?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventError {
    /// What went wrong.
    pub message: String,
    /// A code of spec §1.5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<i64>,
    /// The underlying cause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<Value>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn value_named_searches_values_depth_first_preorder() {
        let e = Event::from_value(json!({
            "id": "1", "type": "t", "source": {"id": "p"},
            "name": "not here",
            "data": {"content": {"values": {"a": {"name": null, "b": [{"name": "deep"}]}, "name": "top"}}}
        }))
        .unwrap();
        assert_eq!(e.value_named("name"), Some(&json!("top")));
        assert_eq!(e.value_named("b"), Some(&json!([{"name": "deep"}])));
        assert_eq!(e.value_named("missing"), None);
    }

    #[test]
    fn invalid_events_name_the_field() {
        let err = Event::from_value(json!({"id": "1", "type": "t", "source": {}})).unwrap_err();
        assert_eq!(err.to_string(), "event field `source.id` must be a string");
        assert_eq!(
            Event::from_value(json!([])).unwrap_err(),
            Error::NotAnObject
        );
    }

    #[test]
    fn bound_means_thred_id_present() {
        let e = Event::from_value(
            json!({"id": "1", "type": "t", "source": {"id": "p"}, "thredId": null}),
        )
        .unwrap();
        assert_eq!(e.thred_id(), None);
        assert_eq!(e.with_thred_id("x").thred_id(), Some("x"));
    }
}
