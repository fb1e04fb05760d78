//! `threds validate PATH...`.

use std::path::PathBuf;
use std::process::ExitCode;
use threds_runtime::files;

/// Arguments of `threds validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pattern files, or directories searched for `*.pattern.json`.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Also validate this sessions model.
    #[arg(long, value_name = "FILE")]
    sessions: Option<PathBuf>,
    /// Also validate this resolver config.
    #[arg(long, value_name = "FILE")]
    resolver: Option<PathBuf>,
    /// Report fields the model does not know (normally ignored) as problems.
    #[arg(long)]
    strict: bool,
    /// Treat the files as one pattern set (as `simulate`/`dev` load them): duplicate pattern ids are errors.
    #[arg(long)]
    set: bool,
    /// Print nothing for valid files.
    #[arg(long, short)]
    quiet: bool,
}

/// Validates every file; prints one line per problem to stderr; exit 0 when all are valid, else 2.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut bad = 0usize;
    let mut good = 0usize;
    let mut report =
        |name: String, result: Result<Vec<String>, files::Error>, strict: bool| match result {
            Ok(unknown) if strict && !unknown.is_empty() => {
                bad += 1;
                for field in unknown {
                    eprintln!("{name}: {field}: unknown field (ignored; --strict)");
                }
            }
            Ok(_) => {
                good += 1;
                if !args.quiet {
                    println!("ok: {name}");
                }
            }
            Err(e) => {
                bad += 1;
                for line in e.lines() {
                    eprintln!("{line}");
                }
            }
        };
    let mut ids: Vec<(String, String)> = Vec::new();
    match files::pattern_files(&args.paths) {
        Ok(list) => {
            for file in list {
                let name = file.display().to_string();
                let result = files::pattern(&file).and_then(|loaded| {
                    let duplicate = ids
                        .iter()
                        .find(|(id, _)| *id == loaded.value.id)
                        .filter(|_| args.set);
                    if let Some((_, first)) = duplicate {
                        return Err(files::Error::Invalid(threds_patterns::load::Error {
                            problems: vec![threds_patterns::load::Problem {
                                source: name.clone(),
                                line: None,
                                path: "id".into(),
                                reason: format!(
                                    "pattern id '{}' is already defined by {first}",
                                    loaded.value.id
                                ),
                            }],
                        }));
                    }
                    ids.push((loaded.value.id.clone(), name.clone()));
                    Ok(loaded.unknown_fields)
                });
                report(name, result, args.strict);
            }
        }
        Err(e) => report("(paths)".into(), Err(e), false),
    }
    if let Some(path) = &args.sessions {
        report(
            path.display().to_string(),
            files::sessions(path).map(|l| l.unknown_fields),
            args.strict,
        );
    }
    if let Some(path) = &args.resolver {
        report(
            path.display().to_string(),
            files::resolver(path).map(|l| l.unknown_fields),
            args.strict,
        );
    }
    if !args.quiet {
        println!("{good} valid, {bad} invalid");
    }
    Ok(if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}
