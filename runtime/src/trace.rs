//! W3C trace context on bus records: the `traceparent` header (`00-<trace id>-<span id>-<flags>`,
//! <https://www.w3.org/TR/trace-context/>).
//!
//! The session service starts a trace for each event a client sends (or continues the one its
//! HTTP request carries); the engine gives every record a step publishes a child of the trace of
//! the record that caused the step, so one trace follows an event from the client through the
//! engine to every message it caused. Child span ids are derived from the parent and the
//! record's place in the step, so a step run again (after a conflict or a redelivery) publishes
//! the same context. Records republished by the outbox relay after a crash carry none.

/// The header name.
pub const HEADER: &str = "traceparent";

/// A parsed `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// The trace id (never 0).
    pub trace_id: u128,
    /// The parent span id (never 0).
    pub span_id: u64,
    /// The trace flags (bit 0: sampled).
    pub flags: u8,
}

impl TraceParent {
    /// Parses a version-00 header value; `None` if it is malformed or has an all-zero id.
    pub fn parse(value: &str) -> Option<TraceParent> {
        let mut parts = value.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version.len() != 2 || version == "ff" || u8::from_str_radix(version, 16).is_err() {
            return None;
        }
        // Version 00 has exactly four fields; later versions may append more.
        if version == "00" && parts.next().is_some() {
            return None;
        }
        let trace_id = u128::from_str_radix(hex(trace, 32)?, 16).ok()?;
        let span_id = u64::from_str_radix(hex(span, 16)?, 16).ok()?;
        let flags = u8::from_str_radix(hex(flags, 2)?, 16).ok()?;
        (trace_id != 0 && span_id != 0).then_some(TraceParent {
            trace_id,
            span_id,
            flags,
        })
    }

    /// The context in `headers`, if a valid one is there.
    pub fn of_headers(headers: &[(String, String)]) -> Option<TraceParent> {
        headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(HEADER))
            .and_then(|(_, value)| TraceParent::parse(value))
    }

    /// A new sampled trace whose ids are derived from `seed` (which should be unique).
    pub fn root(seed: &str) -> TraceParent {
        let high = hash(&[seed.as_bytes(), b"/trace-high"]);
        let low = hash(&[seed.as_bytes(), b"/trace-low"]);
        TraceParent {
            trace_id: (u128::from(high) << 64 | u128::from(low)).max(1),
            span_id: hash(&[seed.as_bytes(), b"/span"]).max(1),
            flags: 1,
        }
    }

    /// A child span in the same trace, its id derived from this span and `seed`.
    pub fn child(&self, seed: &str) -> TraceParent {
        TraceParent {
            span_id: hash(&[&self.span_id.to_be_bytes(), seed.as_bytes()]).max(1),
            ..*self
        }
    }

    /// The trace id as 32 lowercase hex digits (how log lines name the trace).
    pub fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    /// The trace id of the context in `headers`, or `""` (for log lines).
    pub fn trace_id_of(headers: &[(String, String)]) -> String {
        TraceParent::of_headers(headers).map_or_else(String::new, |t| t.trace_id_hex())
    }

    /// The header value.
    pub fn header(&self) -> String {
        format!(
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id, self.span_id, self.flags
        )
    }

    /// The `(name, value)` header.
    pub fn to_header(&self) -> (String, String) {
        (HEADER.to_string(), self.header())
    }
}

/// `s` if it is `len` lowercase hex digits.
fn hex(s: &str, len: usize) -> Option<&str> {
    let lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    (s.len() == len && s.bytes().all(lower_hex)).then_some(s)
}

/// FNV-1a over `parts` (ids, not security).
fn hash(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_and_prints_the_w3c_example() {
        let v = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let t = TraceParent::parse(v).unwrap();
        assert_eq!(t.trace_id, 0x4bf92f3577b34da6a3ce929d0e0e4736);
        assert_eq!(t.span_id, 0x00f067aa0ba902b7);
        assert_eq!(t.flags, 1);
        assert_eq!(t.header(), v);
    }

    #[test]
    fn refuses_malformed_values() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn children_keep_the_trace_and_repeat_for_the_same_seed() {
        let root = TraceParent::root("events/3/17");
        assert_eq!(root, TraceParent::root("events/3/17"));
        assert_ne!(root.trace_id, TraceParent::root("events/3/18").trace_id);
        let a = root.child("0");
        assert_eq!(a.trace_id, root.trace_id);
        assert_ne!(a.span_id, root.span_id);
        assert_eq!(a, root.child("0"));
        assert_ne!(a.span_id, root.child("1").span_id);
        let headers = vec![("traceparent".to_string(), a.header())];
        assert_eq!(TraceParent::of_headers(&headers), Some(a));
    }
}
