//! `threds eval 'EXPRESSION' [--input FILE|-] [--bindings JSON]`.

use anyhow::Context;
use std::io::Read;
use std::process::ExitCode;
use threds_patterns::expr::{Bindings, Expression};

/// Arguments of `threds eval`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The JSONata expression.
    expression: String,
    /// The input document: a JSON file, or `-` for stdin (none: undefined input).
    #[arg(long, value_name = "FILE|-")]
    input: Option<String>,
    /// Variables as a JSON object: `{"x": 1}` binds `$x`.
    #[arg(long, value_name = "JSON")]
    bindings: Option<String>,
}

/// Prints the result as one JSON line (nothing when undefined); errors go to stderr as
/// `ERROR <code>: <message>` with exit 1.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut host = Bindings::default();
    if let Some(source) = &args.input {
        let text = if source == "-" {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading the input document from stdin")?;
            s
        } else {
            std::fs::read_to_string(source)
                .with_context(|| format!("reading the input document {source}"))?
        };
        host.input =
            Some(serde_json::from_str(&text).with_context(|| format!("{source}: not JSON"))?);
    }
    if let Some(bindings) = &args.bindings {
        let value: serde_json::Value =
            serde_json::from_str(bindings).context("--bindings: not JSON")?;
        let serde_json::Value::Object(vars) = value else {
            anyhow::bail!("--bindings must be a JSON object");
        };
        host.variables = vars;
    }
    host.now_millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let result = Expression::compile(&args.expression).and_then(|e| e.evaluate(&host));
    match result {
        Ok(Some(value)) => {
            println!("{value}");
            Ok(ExitCode::SUCCESS)
        }
        Ok(None) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            match e.position {
                Some(p) => eprintln!("ERROR {}: {} (at {})", e.code, e.message, p),
                None => eprintln!("ERROR {}: {}", e.code, e.message),
            }
            Ok(ExitCode::from(1))
        }
    }
}
