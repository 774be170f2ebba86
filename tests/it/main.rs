//! One integration-test binary, so that libtorch links once (ripgrep's tests/tests.rs).
mod adam;
mod bench;
mod cli;
mod cluster;
mod common;
mod early_errors;
mod npz;
mod parity;
mod progress;
mod report;
mod reproduce;
mod scale_control;
mod serve;
mod serve_policy;
mod serve_safety;
mod trust;
mod upsample;
