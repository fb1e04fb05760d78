//! Bounded answers to `getThreds`: a page holds at most `limit` threds (asked for, within
//! [`MAX_LIMIT`]) and at most [`MAX_PAGE_BYTES`] of thred JSON, so no answer outgrows a bus record
//! or a client frame however many threds there are; `next` says where the following page starts.

use serde_json::{json, Value};
use threds_patterns::machine::quota::json_size;
use threds_patterns::machine::Code;

/// Threds in a page when the request names no `limit`.
pub const DEFAULT_LIMIT: usize = 100;
/// The largest `limit` a request may name.
pub const MAX_LIMIT: usize = 1_000;
/// Bytes of thred JSON one page holds at most (the first thred is always taken).
pub const MAX_PAGE_BYTES: u64 = 256 * 1024;

/// Which threds a page lists, in the order `status = all` walks them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing {
    /// Live threds, by id.
    Active,
    /// Archived threds, by id.
    Terminated,
}

impl Listing {
    /// The request's `status` name.
    pub fn name(self) -> &'static str {
        match self {
            Listing::Active => "active",
            Listing::Terminated => "terminated",
        }
    }
}

/// The `limit` a request asks for (default [`DEFAULT_LIMIT`]), or why it cannot have it.
pub fn limit(request_limit: Option<&Value>) -> Result<usize, (Code, String)> {
    let Some(v) = request_limit else {
        return Ok(DEFAULT_LIMIT);
    };
    v.as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| {
            (
                Code::ArgumentValidation,
                format!("limit must be an integer from 1 to {MAX_LIMIT}, not {v}"),
            )
        })
}

/// A page being filled.
#[derive(Debug)]
pub struct Page {
    limit: usize,
    bytes: u64,
    threds: Vec<Value>,
    next: Option<(Listing, String)>,
}

impl Page {
    /// An empty page of at most `limit` threds.
    pub fn new(limit: usize) -> Page {
        Page {
            limit,
            bytes: 0,
            threds: Vec::new(),
            next: None,
        }
    }

    /// Room left, in threds (0 once full).
    pub fn room(&self) -> usize {
        match self.next {
            Some(_) => 0,
            None => self.limit.saturating_sub(self.threds.len()),
        }
    }

    /// Adds the threds read from `listing` after `from` ("" = its start); `exhausted` when the
    /// listing holds nothing after them. When the page fills up, or the listing may hold more,
    /// `next` points after the last thred taken from it.
    pub fn add(&mut self, listing: Listing, from: &str, threds: Vec<Value>, exhausted: bool) {
        let read = threds.len();
        let mut after = from.to_string();
        let mut taken = 0;
        for thred in threds {
            let size = json_size(&thred);
            if self.room() == 0 || (!self.threds.is_empty() && self.bytes + size > MAX_PAGE_BYTES) {
                break;
            }
            if let Some(id) = thred.get("id").and_then(Value::as_str) {
                after = id.to_string();
            }
            self.bytes += size;
            self.threds.push(thred);
            taken += 1;
        }
        if taken < read || !exhausted {
            self.next = Some((listing, after));
        }
    }

    /// Whether the page is full (or knows there is more before what a later listing would add).
    pub fn full(&self) -> bool {
        self.room() == 0
    }

    /// The answer's fields: `threds`, and `next` (`{status, after}`) when there may be more.
    pub fn into_answer(self) -> Value {
        let mut answer = json!({"status": "OK", "threds": self.threds});
        if let Some((listing, after)) = self.next {
            answer["next"] = json!({"status": listing.name(), "after": after});
        }
        answer
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn threds(ids: &[&str]) -> Vec<Value> {
        ids.iter().map(|id| json!({"id": id})).collect()
    }

    #[test]
    fn limits_are_checked_and_pages_point_after_their_last_thred() {
        assert_eq!(limit(None).unwrap(), DEFAULT_LIMIT);
        assert_eq!(limit(Some(&json!(5))).unwrap(), 5);
        for bad in [
            json!(0),
            json!(-1),
            json!(1.5),
            json!("7"),
            json!(MAX_LIMIT + 1),
        ] {
            assert_eq!(limit(Some(&bad)).unwrap_err().0, Code::ArgumentValidation);
        }
        // A read that may not be the end: there may be more.
        let mut page = Page::new(2);
        page.add(Listing::Active, "", threds(&["a", "b"]), false);
        assert!(page.full());
        let answer = page.into_answer();
        assert_eq!(answer["next"], json!({"status": "active", "after": "b"}));
        // A short read of active threds leaves room for archived ones.
        let mut page = Page::new(3);
        page.add(Listing::Active, "", threds(&["a"]), true);
        assert_eq!(page.room(), 2);
        page.add(Listing::Terminated, "", threds(&["x", "y"]), false);
        let answer = page.into_answer();
        assert_eq!(answer["threds"].as_array().unwrap().len(), 3);
        assert_eq!(
            answer["next"],
            json!({"status": "terminated", "after": "y"})
        );
        // The last page has no `next`.
        let mut page = Page::new(3);
        page.add(Listing::Terminated, "", threds(&["x"]), true);
        assert!(page.into_answer().get("next").is_none());
    }

    #[test]
    fn a_page_stops_at_its_byte_budget_but_always_takes_one_thred() {
        let big = "x".repeat(usize::try_from(MAX_PAGE_BYTES).unwrap() / 3);
        let many: Vec<Value> = (0..10)
            .map(|n| json!({"id": format!("t{n}"), "pad": big}))
            .collect();
        let mut page = Page::new(MAX_LIMIT);
        page.add(Listing::Active, "", many, true);
        let answer = page.into_answer();
        let taken = answer["threds"].as_array().unwrap().len();
        assert_eq!(taken, 2, "two thirds of the budget fit, not three");
        assert_eq!(answer["next"]["after"], "t1");
        let huge =
            json!({"id": "h", "pad": "x".repeat(usize::try_from(MAX_PAGE_BYTES).unwrap() * 2)});
        let mut page = Page::new(10);
        page.add(Listing::Active, "", vec![huge], true);
        assert_eq!(page.into_answer()["threds"].as_array().unwrap().len(), 1);
    }
}
