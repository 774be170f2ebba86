//! `npr`: train and evaluate detectors of AI-generated images (see README.md).
//! `main` parses, dispatches and maps errors to exit codes (DESIGN.md §2):
//! 0 success, 2 bad usage / config / paths, 1 anything else.
use std::process::ExitCode;

use clap::Parser;

use npr::cli::{Cli, Command};
use npr::commands;
use npr::error::is_usage_error;

fn main() -> ExitCode {
    // `npr predict … | head` must end quietly when the reader goes away, as Unix tools do,
    // instead of panicking on a broken pipe.
    // SAFETY: restoring the default disposition of one signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train(args) => commands::train::run(&args),
        Command::Test(args) => commands::test::run(&args),
        Command::Predict(args) => commands::predict::run(&args),
        Command::Ablate(args) => commands::ablate::run(&args),
        Command::Report(args) => commands::not_implemented("report", &args),
        Command::Synth(args) => commands::synth::run(&args),
        Command::Bench(args) => commands::bench::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            if is_usage_error(&err) {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
