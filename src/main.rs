//! `npr`: train and evaluate detectors of AI-generated images (see README.md).
//! `main` parses, dispatches and maps every outcome to its exit code (README.md, "Exit
//! codes"): 0 success, 2 bad usage / config / paths (a full or unwritable output
//! included), 128 + signal after a stop by SIGINT/SIGTERM (130/143, even when saving on
//! the way out failed), 1 anything else.
use std::process::ExitCode;

use clap::Parser;

use npr::cli::{Cli, Command};
use npr::commands::{self, Outcome};
use npr::error::is_usage_error;

/// A command that has no other way to end than done or failed.
fn done(_: ()) -> Outcome {
    Outcome::Done
}

fn main() -> ExitCode {
    // `npr predict … | head` must end quietly when the reader goes away, as Unix tools do,
    // instead of panicking on a broken pipe.
    // SAFETY: restoring the default disposition of one signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    // Commands that run a model start libgomp with a short spin (src/threads.rs); the
    // others do not pay for the restart.
    if matches!(
        cli.command,
        Command::Train(_)
            | Command::Test(_)
            | Command::Ablate(_)
            | Command::Bench(_)
            | Command::Predict(_)
            | Command::Serve(_)
    ) {
        npr::threads::start_with_short_spin();
    }
    let result = match cli.command {
        Command::Train(args) => commands::train::run(&args),
        Command::Ablate(args) => npr::ablation::sweep::run(&args),
        Command::Test(args) => commands::test::run(&args).map(done),
        Command::Predict(args) => commands::predict::run(&args).map(done),
        Command::Report(args) => commands::report::run(&args).map(done),
        Command::Serve(args) => commands::serve::run(&args),
        Command::Synth(args) => commands::synth::run(&args).map(done),
        Command::Bench(args) => npr::bench::run(&args).map(done),
    };
    match result {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        Err(err) => {
            eprintln!("error: {err:#}");
            if npr::interrupt::requested().is_some() {
                // Asked to stop, and the stop failed part-way (its save hit a full disk):
                // still a stop, so a job script requeues from the last whole checkpoint.
                ExitCode::from(npr::interrupt::exit_code() as u8)
            } else if is_usage_error(&err) {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}
