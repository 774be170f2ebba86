//! Training: the loop, one step, the schedule, the optimizer, the run folder.
pub mod adam;
pub mod run_dir;
pub mod schedule;
pub mod step;
pub mod trainer;

pub use trainer::{run_status, train, RunStatus, TrainOptions, TrainOutcome};
