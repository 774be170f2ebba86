//! `npr predict`.
use anyhow::Result;

pub fn run(args: &crate::cli::PredictArgs) -> Result<()> {
    super::not_implemented("predict", args)
}
