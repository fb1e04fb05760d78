//! JSON ↔ BSON: how documents and operands are stored in MongoDB and read back.
//!
//! JSON integers are stored as Int64 (an unsigned value beyond `i64::MAX` as a Double), other
//! numbers as Double. Reading back, Int32/Int64/Double become JSON numbers, a DateTime its epoch
//! milliseconds and an ObjectId its hex string (so documents written by other tools still read as
//! the port's values); anything else is MongoDB's relaxed extended JSON.

use mongodb::bson::{Bson, Document};
use serde_json::{Map, Number, Value};

/// A JSON value as BSON.
pub(super) fn to_bson(value: &Value) -> Bson {
    match value {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        Value::Number(n) => number(n),
        Value::String(s) => Bson::String(s.clone()),
        Value::Array(items) => Bson::Array(items.iter().map(to_bson).collect()),
        Value::Object(map) => Bson::Document(to_document(map)),
    }
}

/// A JSON object as a BSON document (same keys, same order).
pub(super) fn to_document(map: &Map<String, Value>) -> Document {
    map.iter().map(|(k, v)| (k.clone(), to_bson(v))).collect()
}

fn number(n: &Number) -> Bson {
    if let Some(i) = n.as_i64() {
        Bson::Int64(i)
    } else {
        Bson::Double(n.as_f64().unwrap_or(0.0))
    }
}

/// A BSON value as JSON.
pub(super) fn to_json(value: Bson) -> Value {
    match value {
        Bson::Null | Bson::Undefined => Value::Null,
        Bson::Boolean(b) => Value::Bool(b),
        Bson::Int32(i) => Value::from(i),
        Bson::Int64(i) => Value::from(i),
        Bson::Double(f) => Number::from_f64(f).map_or(Value::Null, Value::Number),
        Bson::String(s) => Value::String(s),
        Bson::Array(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Bson::Document(doc) => Value::Object(to_map(doc)),
        Bson::DateTime(t) => Value::from(t.timestamp_millis()),
        Bson::ObjectId(oid) => Value::String(oid.to_hex()),
        other => other.into_relaxed_extjson(),
    }
}

/// A BSON document as a JSON object.
pub(super) fn to_map(doc: Document) -> Map<String, Value> {
    doc.into_iter().map(|(k, v)| (k, to_json(v))).collect()
}

/// A stored document as the port returns it: `_id` becomes `id`, first.
pub(super) fn from_stored(mut doc: Document) -> Value {
    let id = doc.remove("_id");
    let mut out = Map::new();
    if let Some(id) = id {
        out.insert("id".into(), to_json(id));
    }
    out.extend(to_map(doc));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;
    use serde_json::json;

    #[test]
    fn round_trips_json() {
        let value = json!({"i": 1, "neg": -5, "f": 2.5, "whole": 2.0, "s": "x", "b": true,
                           "n": null, "l": [1, {"k": "v"}], "o": {"p": [true]}});
        assert_eq!(to_json(to_bson(&value)), value);
        assert_eq!(to_bson(&json!(u64::MAX)), Bson::Double(u64::MAX as f64));
    }

    #[test]
    fn reads_stored_documents() {
        let stored = doc! {"name": "a", "_id": "x", "n": 3_i32, "at": mongodb::bson::DateTime::from_millis(7)};
        let out = from_stored(stored);
        assert_eq!(out, json!({"id": "x", "name": "a", "n": 3, "at": 7}));
        assert_eq!(
            out.as_object().and_then(|m| m.keys().next().cloned()),
            Some("id".to_owned())
        );
    }
}
