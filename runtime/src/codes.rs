//! Stable codes of operational failures, one per class, logged as the `code` field and carried
//! by the errors that cause them. `docs/errors.md` says what each means and what an operator does
//! about it; a code never changes meaning.

/// A backend (thred store, bus, documents) did not answer or failed; work is retried.
pub const BACKEND_UNAVAILABLE: &str = "R1001";
/// A newer lease of a partition was granted to another engine: this engine stopped writing it.
pub const FENCED: &str = "R2001";
/// A partition's lease is held by another engine; this one waits for it.
pub const LEASE_HELD: &str = "R2002";
/// A record failed every attempt and went to its topic's dead letters.
pub const DEAD_LETTERED: &str = "R3001";
/// A record that failed every attempt could not be dead-lettered; its partition waits.
pub const DEAD_LETTER_FAILED: &str = "R3002";
/// A committed step's message could not be published; it stays in the outbox for the relay.
pub const UNPUBLISHED: &str = "R3003";
/// Every delivery slot (partition of the sessions topic) is held by another session node: this
/// node waits, not ready.
pub const NO_SLOT: &str = "R2003";
/// The configuration is invalid (file, environment or flags).
pub const BAD_CONFIGURATION: &str = "R4001";
/// A supervised service (consumer loop, partition worker) failed and was restarted.
pub const RESTARTED: &str = "R5001";
/// A pattern reload failed; the running patterns stay in force.
pub const RELOAD_FAILED: &str = "R5002";

/// Every code with its name, for documentation and tests.
pub const ALL: [(&str, &str); 10] = [
    (BACKEND_UNAVAILABLE, "backend unavailable"),
    (FENCED, "fenced"),
    (LEASE_HELD, "lease held"),
    (NO_SLOT, "no delivery slot"),
    (DEAD_LETTERED, "dead-lettered"),
    (DEAD_LETTER_FAILED, "dead letter failed"),
    (UNPUBLISHED, "message unpublished"),
    (BAD_CONFIGURATION, "bad configuration"),
    (RESTARTED, "restarted"),
    (RELOAD_FAILED, "reload failed"),
];

/// An error with its causes, `outer: inner: ...`, for logs.
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_code_is_documented_once_in_docs_errors_md() {
        let doc = include_str!("../../docs/errors.md");
        for (code, name) in super::ALL {
            let row = format!("| {code} | {name} |");
            assert_eq!(doc.matches(&row).count(), 1, "docs/errors.md row {row}");
        }
        let codes: std::collections::BTreeSet<&str> = super::ALL.iter().map(|(c, _)| *c).collect();
        assert_eq!(codes.len(), super::ALL.len(), "codes are unique");
    }
}
