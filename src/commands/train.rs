//! `npr train`.
use anyhow::Result;

pub fn run(args: &crate::cli::TrainArgs) -> Result<()> {
    super::not_implemented("train", args)
}
