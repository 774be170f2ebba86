//! `npr train`: config → run folder with checkpoints and logs.
use std::path::PathBuf;

use anyhow::Result;

use super::Outcome;
use crate::cli::{Resume, TrainArgs};
use crate::config::{Config, Monitor};
use crate::model::detector::parse_device;
use crate::train::run_dir::Start;
use crate::train::{train, TrainOptions};

/// A number from a test-only environment variable; set but unparsable is an error, never a
/// silently ignored setting.
fn test_hook<T: std::str::FromStr>(name: &str) -> Result<Option<T>> {
    match std::env::var(name) {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Ok(v) => v.trim().parse().map(Some).map_err(|_| {
            crate::usage!("environment variable {name}={v:?}: expected a whole number")
        }),
        Err(e) => Err(crate::usage!("environment variable {name}: {e}")),
    }
}

pub fn run(args: &TrainArgs) -> Result<Outcome> {
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
    let config_monitor = config
        .train
        .early_stopping()
        .map_or(Monitor::ValLoss, |e| e.monitor);
    let outcome = train(TrainOptions {
        config,
        out,
        device,
        start: match (args.resume, args.overwrite) {
            (Some(Resume::Required), _) => Start::Resume,
            (Some(Resume::Auto), _) => Start::Auto,
            (None, true) => Start::Overwrite,
            (None, false) => Start::New,
        },
        interrupt_after_epochs: test_hook("NPR_INTERRUPT_AFTER_EPOCHS")?,
        sigterm_at_step: test_hook("NPR_TEST_SIGTERM_AT_STEP")?,
    })?;
    let (ended, result) = if outcome.interrupted {
        ("stopped", Outcome::Interrupted)
    } else {
        ("done", Outcome::Done)
    };
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
            "{ended}: {} epochs, last val acc {:.4}, best {monitor} {best}; run folder {}",
            outcome.epochs_done,
            val.acc,
            outcome.run_dir.display()
        );
    }
    // The run folder's lock was released when `train` returned.
    Ok(result)
}
