//! `npr report`: flags → [`crate::report::run`], then where the report is.
use anyhow::Result;

use crate::cli::ReportArgs;
use crate::report::{self, ReportRequest};

pub fn run(args: &ReportArgs) -> Result<()> {
    let path = report::run(&ReportRequest {
        runs: args.runs.clone(),
        out: args.out.clone(),
        baseline: args.baseline.clone(),
        attention: args.attention.clone(),
        bootstrap_resamples: args.bootstrap,
        seed: args.seed,
    })?;
    println!("report: {}", path.display());
    Ok(())
}
