//! `threds patterns push|list|show|diff|activate|rollback|migrate`: the pattern registry of a
//! running Threds, through the admin operations (`sysControl`) with an admin's token.

use super::client::{self, Connection, Socket};
use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use threds_patterns::expr::{Bindings, Expression};
use threds_runtime::files;

const SYS_CONTROL: &str = "org.wt.control.sysControl";

/// Arguments of `threds patterns`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Validate pattern files, show how they differ from the active versions, optionally run
    /// scenarios against them, then push them as new versions (active on every engine).
    Push(PushArgs),
    /// List every pattern's versions (or one pattern's), with the live threds on each.
    List {
        #[command(flatten)]
        connection: Connection,
        /// Only this pattern.
        pattern: Option<String>,
    },
    /// Print a version of a pattern (the active one unless `--version`).
    Show {
        #[command(flatten)]
        connection: Connection,
        /// The pattern id.
        pattern: String,
        /// The version.
        #[arg(long)]
        version: Option<u32>,
    },
    /// Show how two versions of a pattern differ (the active one and the one before it, unless
    /// given).
    Diff {
        #[command(flatten)]
        connection: Connection,
        /// The pattern id.
        pattern: String,
        /// The older version.
        from: Option<u32>,
        /// The newer version (default: the active one).
        to: Option<u32>,
    },
    /// Make a version of a pattern the active one (new threds start on it).
    Activate {
        #[command(flatten)]
        connection: Connection,
        /// The pattern id.
        pattern: String,
        /// The version.
        version: u32,
    },
    /// Make the version active before the current one active again.
    Rollback {
        #[command(flatten)]
        connection: Connection,
        /// The pattern id.
        pattern: String,
    },
    /// Move a live thred (or with `--pattern`, every live thred of a pattern) to another version.
    Migrate {
        #[command(flatten)]
        connection: Connection,
        /// The thred id (or, with `--pattern`, the pattern id).
        target: String,
        /// The version to move to.
        version: u32,
        /// `TARGET` is a pattern id: move every live thred of it.
        #[arg(long)]
        pattern: bool,
        /// With `--pattern`: only the threds on this version.
        #[arg(long, requires = "pattern")]
        from: Option<u32>,
    },
}

/// Arguments of `threds patterns push`.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    #[command(flatten)]
    connection: Connection,
    /// Pattern files, or directories searched for `*.pattern.json`.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Run these scenario files (or every `*.scenario.json` of a directory) with the new versions
    /// in place of the patterns they name; push only when all pass.
    #[arg(long, value_name = "DIR|FILE")]
    check: Vec<PathBuf>,
    /// Keep the active versions: the pushed ones wait for `threds patterns activate`.
    #[arg(long)]
    no_activate: bool,
    /// Validate, diff and check, but push nothing.
    #[arg(long)]
    dry_run: bool,
}

/// Runs the subcommand; exit 0 on success, 1 when a check fails or the server refuses, 2 for
/// invalid files.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match args.command {
            Command::Push(push) => push_files(push).await,
            Command::List {
                connection,
                pattern,
            } => {
                let mut socket = client::connect(&connection).await?;
                let listed = list(&mut socket, pattern.as_deref(), false).await?;
                print_list(&listed);
                Ok(ExitCode::SUCCESS)
            }
            Command::Show {
                connection,
                pattern,
                version,
            } => {
                let mut socket = client::connect(&connection).await?;
                let listed = list(&mut socket, Some(&pattern), true).await?;
                let source = source_of(&listed, &pattern, version)?;
                let value: Value = serde_json::from_str(&source.1).context("stored pattern")?;
                println!("{}", serde_json::to_string_pretty(&value)?);
                Ok(ExitCode::SUCCESS)
            }
            Command::Diff {
                connection,
                pattern,
                from,
                to,
            } => {
                let mut socket = client::connect(&connection).await?;
                let listed = list(&mut socket, Some(&pattern), true).await?;
                let (to, new) = source_of(&listed, &pattern, to)?;
                let from = match from {
                    Some(v) => v,
                    None => earlier_version(&listed, to)
                        .with_context(|| format!("pattern {pattern} has no version before {to}"))?,
                };
                let (_, old) = source_of(&listed, &pattern, Some(from))?;
                println!("pattern {pattern}: version {from} -> {to}");
                for line in describe_change(&parse(&old)?, &parse(&new)?) {
                    println!("  {line}");
                }
                Ok(ExitCode::SUCCESS)
            }
            Command::Activate {
                connection,
                pattern,
                version,
            } => {
                let mut socket = client::connect(&connection).await?;
                let values =
                    json!({"op": "activatePattern", "patternId": pattern, "version": version});
                let done = request(&mut socket, values).await?;
                println!(
                    "pattern {pattern}: version {} active (was {})",
                    done["active"], done["wasActive"]
                );
                Ok(ExitCode::SUCCESS)
            }
            Command::Rollback {
                connection,
                pattern,
            } => {
                let mut socket = client::connect(&connection).await?;
                let values = json!({"op": "rollbackPattern", "patternId": pattern});
                let done = request(&mut socket, values).await?;
                println!(
                    "pattern {pattern}: rolled back to version {} (was {})",
                    done["active"], done["wasActive"]
                );
                Ok(ExitCode::SUCCESS)
            }
            Command::Migrate {
                connection,
                target,
                version,
                pattern,
                from,
            } => {
                let mut socket = client::connect(&connection).await?;
                let values = if pattern {
                    let mut v =
                        json!({"op": "migrateThreds", "patternId": target, "version": version});
                    if let Some(from) = from {
                        v["fromVersion"] = json!(from);
                    }
                    v
                } else {
                    json!({"op": "migrateThred", "thredId": target, "version": version})
                };
                let done = request(&mut socket, values).await?;
                if pattern {
                    println!("{} threds moved to version {version}", done["migrated"]);
                    let refused = done["refused"].as_array().cloned().unwrap_or_default();
                    for r in &refused {
                        println!("not moved: thred {}: {}", r["thredId"], r["reason"]);
                    }
                    if !refused.is_empty() {
                        return Ok(ExitCode::from(1));
                    }
                } else {
                    println!("thred {target} now runs version {version}");
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

async fn request(socket: &mut Socket, values: Value) -> anyhow::Result<Value> {
    client::control(socket, SYS_CONTROL, values, Duration::from_secs(30)).await
}

async fn list(
    socket: &mut Socket,
    pattern: Option<&str>,
    with_source: bool,
) -> anyhow::Result<Value> {
    let mut values = json!({"op": "listPatternVersions", "withSource": with_source});
    if let Some(id) = pattern {
        values["patternId"] = json!(id);
    }
    request(socket, values).await
}

fn print_list(listed: &Value) {
    for p in listed["patterns"].as_array().into_iter().flatten() {
        let active = match p["active"].as_u64() {
            Some(0) | None => "retired".to_string(),
            Some(n) => format!("active {n}"),
        };
        println!("{} ({active})", p["patternId"].as_str().unwrap_or_default());
        for v in p["versions"].as_array().into_iter().flatten() {
            println!(
                "  {}{:>4}  {}  live threds {:>6}  {}  from {}",
                if v["active"] == true { "*" } else { " " },
                v["version"],
                &v["hash"]
                    .as_str()
                    .unwrap_or_default()
                    .get(..12)
                    .unwrap_or_default(),
                v["liveThreds"],
                when(&v["pushedAt"]),
                v["origin"].as_str().unwrap_or_default(),
            );
        }
    }
}

/// Epoch milliseconds as an ISO 8601 time (UTC), by the expression engine's `$fromMillis`.
fn when(millis: &Value) -> String {
    let host = Bindings {
        input: Some(json!({ "t": millis })),
        ..Bindings::default()
    };
    Expression::compile("$fromMillis(t)")
        .ok()
        .and_then(|e| e.evaluate(&host).ok().flatten())
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| millis.to_string())
}

/// The `(number, source)` of version `version` of `pattern` (the active one when `None`).
fn source_of(listed: &Value, pattern: &str, version: Option<u32>) -> anyhow::Result<(u32, String)> {
    let p = listed["patterns"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["patternId"] == pattern))
        .with_context(|| format!("pattern {pattern} is not in the registry"))?;
    let wanted = match version {
        Some(v) => u64::from(v),
        None => p["active"].as_u64().filter(|a| *a > 0).with_context(|| {
            format!("pattern {pattern} is retired: name a version (--version N)")
        })?,
    };
    let v = p["versions"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["version"] == wanted))
        .with_context(|| format!("pattern {pattern} has no version {wanted} in the registry"))?;
    let source = v["source"].as_str().unwrap_or_default().to_string();
    Ok((u32::try_from(wanted)?, source))
}

/// The highest kept version below `version`.
fn earlier_version(listed: &Value, version: u32) -> Option<u32> {
    listed["patterns"][0]["versions"]
        .as_array()?
        .iter()
        .filter_map(|v| v["version"].as_u64().and_then(|n| u32::try_from(n).ok()))
        .filter(|n| *n < version)
        .max()
}

fn parse(source: &str) -> anyhow::Result<Value> {
    serde_json::from_str(source).context("stored pattern is not JSON")
}

async fn push_files(args: PushArgs) -> anyhow::Result<ExitCode> {
    let sources = match files::pattern_sources(&args.paths) {
        Ok(sources) if sources.is_empty() => bail!("no pattern files under the paths given"),
        Ok(sources) => sources,
        Err(errors) => {
            for e in &errors {
                for line in e.lines() {
                    eprintln!("{line}");
                }
            }
            return Ok(ExitCode::from(2));
        }
    };
    let overlay = match files::pattern_set(&args.paths) {
        Ok(set) => set.iter().cloned().collect::<Vec<_>>(),
        Err(errors) => {
            for e in &errors {
                for line in e.lines() {
                    eprintln!("{line}");
                }
            }
            return Ok(ExitCode::from(2));
        }
    };
    let mut socket = client::connect(&args.connection).await?;
    let listed = list(&mut socket, None, true).await?;
    for s in &sources {
        println!("{}", summary(&listed, &s.id, &s.text)?);
    }
    if !args.check.is_empty() {
        let scenarios = scenario_files(&args.check)?;
        println!(
            "checking {} scenario file(s) against the new versions",
            scenarios.len()
        );
        let overlay: Vec<Arc<_>> = overlay;
        let (passed, failed) = super::test::run_all(&scenarios, &overlay, false);
        if failed > 0 || passed == 0 {
            println!("not pushed: {failed} scenario(s) failed; the active versions are unchanged");
            return Ok(ExitCode::from(1));
        }
    }
    if args.dry_run {
        println!("dry run: nothing pushed");
        return Ok(ExitCode::SUCCESS);
    }
    let texts: Vec<&str> = sources.iter().map(|s| s.text.as_str()).collect();
    let origins: Vec<String> = sources.iter().map(|s| s.origin.clone()).collect();
    let values = json!({
        "op": "pushPatterns",
        "patterns": texts,
        "activate": !args.no_activate,
        "origin": origins.join(","),
    });
    let done = request(&mut socket, values).await?;
    for p in done["pushed"].as_array().into_iter().flatten() {
        let state = match (p["new"] == true, p["active"] == true) {
            (true, true) => "pushed, active",
            (true, false) => "pushed, not active",
            (false, true) => "unchanged, active",
            (false, false) => "unchanged, not active",
        };
        println!(
            "{}: version {} {state} (was active: {})",
            p["id"].as_str().unwrap_or_default(),
            p["version"],
            p["wasActive"]
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One pattern's change against its active version, for the push summary.
fn summary(listed: &Value, id: &str, text: &str) -> anyhow::Result<String> {
    let hash = threds_runtime::store::patterns::content_hash(text)
        .map_err(|e| anyhow::anyhow!("pattern {id}: {e}"))?;
    let Some(p) = listed["patterns"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["patternId"] == id))
    else {
        return Ok(format!("{id}: new pattern"));
    };
    let versions = p["versions"].as_array().cloned().unwrap_or_default();
    if let Some(same) = versions.iter().find(|v| v["hash"] == hash.as_str()) {
        return Ok(format!("{id}: same content as version {}", same["version"]));
    }
    let Some(active) = versions.iter().find(|v| v["active"] == true) else {
        return Ok(format!("{id}: new version (the pattern is retired)"));
    };
    let old = parse(active["source"].as_str().unwrap_or_default())?;
    let mut lines = vec![format!(
        "{id}: changes against active version {}",
        active["version"]
    )];
    lines.extend(
        describe_change(&old, &parse(text)?)
            .into_iter()
            .map(|l| format!("  {l}")),
    );
    Ok(lines.join("\n"))
}

/// How pattern `new` differs from `old`: reactions removed and added by name (what live threds
/// care about), then every other changed JSON path (at most 40).
fn describe_change(old: &Value, new: &Value) -> Vec<String> {
    let names = |p: &Value| -> Vec<String> {
        p["reactions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["name"].as_str().map(str::to_string))
            .collect()
    };
    let (was, now) = (names(old), names(new));
    let mut lines = Vec::new();
    let removed: Vec<&String> = was.iter().filter(|n| !now.contains(n)).collect();
    let added: Vec<&String> = now.iter().filter(|n| !was.contains(n)).collect();
    if !removed.is_empty() {
        lines.push(format!(
            "reactions removed: {} (threds there cannot be migrated to this version)",
            join(&removed)
        ));
    }
    if !added.is_empty() {
        lines.push(format!("reactions added: {}", join(&added)));
    }
    let mut paths = Vec::new();
    json_diff(old, new, "$", &mut paths);
    let more = paths.len().saturating_sub(40);
    lines.extend(paths.into_iter().take(40));
    if more > 0 {
        lines.push(format!("... and {more} more changes"));
    }
    if lines.is_empty() {
        lines.push("no change".into());
    }
    lines
}

fn join(names: &[&String]) -> String {
    names
        .iter()
        .map(|n| n.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn json_diff(old: &Value, new: &Value, path: &str, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                match b.get(k) {
                    Some(w) => json_diff(v, w, &format!("{path}.{k}"), out),
                    None => out.push(format!("- {path}.{k}")),
                }
            }
            for k in b.keys().filter(|k| !a.contains_key(*k)) {
                out.push(format!("+ {path}.{k}: {}", brief(&b[k.as_str()])));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let at = format!("{path}[{i}]");
                match (a.get(i), b.get(i)) {
                    (Some(v), Some(w)) => json_diff(v, w, &at, out),
                    (Some(_), None) => out.push(format!("- {at}")),
                    (None, Some(w)) => out.push(format!("+ {at}: {}", brief(w))),
                    (None, None) => {}
                }
            }
        }
        (a, b) if a != b => out.push(format!("~ {path}: {} -> {}", brief(a), brief(b))),
        _ => {}
    }
}

fn brief(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// Scenario files: each file given, and every `*.scenario.json` of each directory given.
fn scenario_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_scenario(p))
                .collect();
            if found.is_empty() {
                bail!("no *.scenario.json files in {}", path.display());
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

fn is_scenario(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(".scenario.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_times_print_as_iso_8601() {
        assert_eq!(when(&json!(0)), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn a_renamed_reaction_is_named_in_the_change() {
        let old = json!({"id": "p", "reactions": [{"name": "a"}, {"name": "b"}]});
        let new = json!({"id": "p", "reactions": [{"name": "a"}, {"name": "c"}]});
        let lines = describe_change(&old, &new);
        assert!(lines[0].starts_with("reactions removed: b"), "{lines:?}");
        assert_eq!(lines[1], "reactions added: c");
        assert_eq!(lines[2], r#"~ $.reactions[1].name: "b" -> "c""#);
    }
}
