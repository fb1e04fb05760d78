//! Matchers, selectors and sorting over JSON documents (stub, to be written).

use serde_json::Value;

/// Does `doc` satisfy `matcher`?
pub fn matches(_doc: &Value, _matcher: &Value) -> bool {
    false
}

/// Which fields a query returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    /// Only these fields (plus `id`).
    pub include: Vec<String>,
    /// All but these fields.
    pub exclude: Vec<String>,
}

/// One sort key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    /// Dotted field path.
    pub field: String,
    /// Descending.
    pub desc: bool,
}
