//! `npr bench`.
use anyhow::Result;

pub fn run(args: &crate::cli::BenchArgs) -> Result<()> {
    super::not_implemented("bench", args)
}
