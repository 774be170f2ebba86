//! One module per subcommand: glue between the CLI and the library, nothing more. `npr
//! ablate` and `npr bench` dispatch straight to their rooms, `src/ablation/` (study file, the
//! sweep and its child processes, the dry run) and `src/bench/` (model, pipeline, loader).
pub mod predict;
pub mod report;
pub mod serve;
pub mod synth;
pub mod test;
pub mod train;

/// How a command ended; `main` maps it to the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    /// Stopped cleanly by a signal (state saved): exit 128 + the signal, 130 for SIGINT
    /// and 143 for SIGTERM, so a job script tells a clean stop from a failure.
    Interrupted,
}

impl Outcome {
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Done => 0,
            Outcome::Interrupted => crate::interrupt::exit_code() as u8,
        }
    }
}
