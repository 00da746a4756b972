//! `autoawait`: the front end. For now it answers `%autoawait` lines read from
//! standard input, the shared selector every front end will use.

use std::io::BufRead;
use std::process::ExitCode;

use autoawait_core::{Registry, Selector};
use autoawait_runners as _;

fn main() -> ExitCode {
    let mut selector = Selector::new(Registry::global());
    let mut failed = false;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let Some(arg) = line.trim().strip_prefix("%autoawait") else {
            eprintln!("only %autoawait lines are understood for now: `{line}`");
            failed = true;
            continue;
        };
        match selector.handle(arg) {
            Ok(text) => println!("{text}"),
            Err(err) => {
                eprintln!("error: {err}");
                failed = true;
            }
        }
    }
    Registry::global().shutdown_all(std::time::Duration::from_secs(1));
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
