//! `npr synth`.
use anyhow::Result;

pub fn run(args: &crate::cli::SynthArgs) -> Result<()> {
    super::not_implemented("synth", args)
}
