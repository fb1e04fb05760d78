//! The host the expression benchmarks and allocation tests share: `$event` bound to one event and
//! `$valueNamed(name)` searching its `data.content.values`, borrowing (as the pattern host does).

use serde_json::Value;
use threds_patterns::expr::{Host, HostValue};
use threds_patterns::model::event::value_named;

/// `$event` and `$valueNamed` over one event.
pub struct EventHost {
    /// The event.
    pub event: Value,
}

impl Host for EventHost {
    fn variable(&self, name: &str) -> Option<&Value> {
        (name == "event").then_some(&self.event)
    }
    fn has_function(&self, name: &str) -> bool {
        name == "valueNamed"
    }
    fn call(&self, name: &str, args: &[Option<&Value>]) -> Option<Result<HostValue<'_>, String>> {
        if name != "valueNamed" {
            return None;
        }
        let key = args.first().copied().flatten().and_then(Value::as_str)?;
        let values = self.event.get("data")?.get("content")?.get("values")?;
        Some(Ok(
            value_named(values, key).map_or(HostValue::Undefined, HostValue::Borrowed)
        ))
    }
}
