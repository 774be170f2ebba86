//! `npr train`: config → run folder with checkpoints and logs.
use std::path::PathBuf;

use anyhow::Result;

use crate::cli::TrainArgs;
use crate::config::Config;
use crate::model::detector::parse_device;
use crate::train::{train, TrainOptions};

pub fn run(args: &TrainArgs) -> Result<()> {
    let mut overrides = args.overrides.clone();
    if let Some(seed) = args.seed {
        overrides.push(format!("train.seed={seed}"));
    }
    let config = Config::load(&args.config, &overrides)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(&config.name));
    let device = parse_device(&args.device.device)?;
    let outcome = train(TrainOptions {
        config,
        out,
        device,
        resume: args.resume,
        overwrite: args.overwrite,
        interrupt_after_epochs: std::env::var("NPR_INTERRUPT_AFTER_EPOCHS")
            .ok()
            .and_then(|v| v.parse().ok()),
    })?;
    if let Some(val) = &outcome.last_val {
        println!(
            "done: {} epochs, last val acc {:.4}, best val loss {:.4}; run folder {}",
            outcome.epochs_done,
            val.acc,
            outcome.best_val_loss.unwrap_or(f64::NAN),
            outcome.run_dir.display()
        );
    }
    if outcome.interrupted {
        // 130: the conventional exit status after SIGINT, so schedulers see the interruption.
        std::process::exit(130);
    }
    Ok(())
}
