//! `npr train`: config → run folder with checkpoints and logs.
use std::path::PathBuf;

use anyhow::Result;

use crate::cli::TrainArgs;
use crate::config::{Config, Monitor};
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
    let config_monitor = config.train.early_stopping.monitor;
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
        let monitor = match config_monitor {
            Monitor::ValLoss => "val loss",
            Monitor::ValAcc => "val acc",
        };
        let best = outcome
            .best_monitored
            .map(|b| format!("{b:.4}"))
            .unwrap_or_else(|| "n/a".into());
        println!(
            "done: {} epochs, last val acc {:.4}, best {monitor} {best}; run folder {}",
            outcome.epochs_done,
            val.acc,
            outcome.run_dir.display()
        );
    }
    if outcome.interrupted {
        // 130: the conventional exit status after SIGINT, so schedulers see the interruption.
        std::process::exit(130);
    }
    Ok(())
}
