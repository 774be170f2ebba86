//! npr: multi-scale NPR detectors of AI-generated images on tch (libtorch).
pub mod ablation;
pub mod amp;
pub mod atomic;
pub mod checkpoint;
pub mod cli;
pub mod commands;
pub mod config;
pub mod data;
pub mod error;
pub mod eval;
pub mod interrupt;
pub mod model;
pub mod report;
pub mod run_lock;
pub mod stats;
pub mod synth;
pub mod train;
