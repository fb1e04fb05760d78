//! Test and benchmark tooling for Threds, kept out of the product: servers the tests run against
//! ([`redis`], [`mongo`], [`kafka`]), the process rig that starts `threds` subcommands ([`rig`]),
//! a WebSocket client ([`client`]), an OTLP trace receiver ([`otlp`]), tokens ([`token`]),
//! test-only signing keys ([`keys`]) and an identity provider's key set endpoint ([`jwks`]), HTTP
//! helpers ([`http`]), the worst-case load of the memory test ([`flood`]), the distributed deployment's infrastructure ([`deployment`]), and the port
//! contract suites every adapter must pass ([`contract`]).
//!
//! Functions that a benchmark calls answer `Result`; tests unwrap them. The helpers made only for
//! tests (`*_or_skip`, [`redis::available`]) panic, as a failing test should.

pub mod client;
pub mod contract;
pub mod deployment;
mod error;
pub mod flood;
pub mod http;
pub mod jwks;
pub mod kafka;
pub mod keys;
pub mod mongo;
pub mod otlp;
pub mod redis;
pub mod rig;
pub mod tansu;
pub mod token;

pub use error::Error;

/// The environment variable that makes service tests fail, rather than skip, when a server they
/// need is not installed.
pub const REQUIRE_SERVICES: &str = "THREDS_REQUIRE_SERVICES";

/// Must tests fail (rather than skip) when a server they need is not installed
/// (`THREDS_REQUIRE_SERVICES=1`)?
pub fn services_required() -> bool {
    std::env::var(REQUIRE_SERVICES).is_ok_and(|v| v == "1")
}

/// Whether `binary --version` runs and succeeds (the server a test needs is installed).
pub fn runs(binary: impl AsRef<std::ffi::OsStr>) -> bool {
    std::process::Command::new(binary)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A test cannot run because a server is missing (`why`): prints `SKIPPED: …` naming the install
/// `script` and answers `false`, or panics under `THREDS_REQUIRE_SERVICES=1`.
///
/// # Panics
/// Under `THREDS_REQUIRE_SERVICES=1`.
pub fn skipped(why: &str, script: &str) -> bool {
    if services_required() {
        panic!("{why} ({REQUIRE_SERVICES}=1); install it with {script}");
    }
    eprintln!("SKIPPED: {why}, install with {script}");
    false
}
