//! npr: multi-scale NPR detectors of AI-generated images on tch (libtorch).
pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod model;
pub mod eval;
pub mod stats;
pub mod amp;

