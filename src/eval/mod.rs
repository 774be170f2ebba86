//! Evaluation: the field's metrics (pure functions), running a model over test sets,
//! perturbations for robustness, and the output files.
pub mod completion;
pub mod metrics;
pub mod npz;
pub mod output_size;
pub mod outputs;
pub mod perturb;
pub mod policy;
pub mod scale_selection;
pub mod score;
pub mod suite;
