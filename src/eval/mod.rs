//! Evaluation: the field's metrics (pure functions) and the test/predict machinery.
pub mod metrics;
