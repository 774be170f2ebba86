//! `npr test`.
use anyhow::Result;

pub fn run(args: &crate::cli::TestArgs) -> Result<()> {
    super::not_implemented("test", args)
}
