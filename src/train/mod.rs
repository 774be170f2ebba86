//! Training: the loop, one step, the schedule, the optimizer, resuming, the log, the run
//! folder.
pub mod adam;
pub mod log;
pub mod resume;
pub mod run_dir;
pub mod scale_supervision;
pub mod schedule;
mod start_up;
pub mod step;
pub mod trainer;

pub use resume::{run_status, RunStatus};
pub use trainer::{train, TrainOptions, TrainOutcome};
