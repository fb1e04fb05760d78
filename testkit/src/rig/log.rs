//! A process's log: a thread reads its stderr line by line, echoes or files each line, and hands
//! it on over a bounded channel (the newest lines are dropped while [`KEPT`] lines wait unread).

use super::Output;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::ChildStderr;
use std::sync::mpsc;

/// Lines kept for the reader before the newest are dropped.
const KEPT: usize = 100_000;

/// Starts the reader of `stderr`, labelled `node`, of process `pid`; answers the lines and the
/// log file (with [`Output::Files`]).
pub(super) fn follow(
    stderr: ChildStderr,
    output: &Output,
    node: String,
    pid: u32,
) -> (mpsc::Receiver<String>, Option<PathBuf>) {
    let (lines, received) = mpsc::sync_channel(KEPT);
    let path = match output {
        Output::Echo => None,
        Output::Files(dir) => Some(dir.join(format!("threds-{node}-{pid}.log"))),
    };
    let mut file = path.as_ref().and_then(|p| std::fs::File::create(p).ok());
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            match file.as_mut() {
                Some(file) => {
                    let _ = writeln!(file, "{line}");
                }
                None => eprintln!("[{node}] {line}"),
            }
            // Full or no longer read: drop the line, keep draining so the process never blocks.
            let _ = lines.try_send(line);
        }
    });
    (received, path)
}
