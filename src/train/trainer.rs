//! The training loop (nanoGPT-style: one readable loop, a comment per phase).
//!
//! Exact resume: the data order and every augmentation are functions of (seed, epoch,
//! sample index), the model has no other randomness, and a checkpoint holds weights,
//! BatchNorm statistics, Adam moments, the step, the epoch and the batch within it. So a
//! run interrupted at any step and resumed reaches the weights of an uninterrupted run.
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use tch::{nn, Device, Kind, Tensor};

use super::adam::Adam;
use super::run_dir::{self, CsvLog, RunDir, Start};
use super::schedule::{lr_at_epoch, EarlyStopper, Goal, Verdict};
use super::step::train_step;
use crate::checkpoint::{self, model_tensors, read_safetensors, write_safetensors_atomic};
use crate::config::{Config, Monitor};
use crate::data::{self, SkipLog, Splits};
use crate::eval::metrics;
use crate::model::fusion::{ATTENTION_PREFIX, LEARNED_WEIGHTS};
use crate::model::input::to_input;
use crate::model::Detector;
use crate::run_lock::RunLock;

pub struct TrainOptions {
    pub config: Config,
    pub out: PathBuf,
    pub device: Device,
    /// New run, overwrite, resume, or resume when there is something to resume.
    pub start: Start,
    /// Simulates an interruption after this many epochs (tests of `--resume`).
    pub interrupt_after_epochs: Option<usize>,
    /// Sends this process a real SIGTERM after this many optimizer steps (tests of a
    /// mid-epoch interruption through the signal handler).
    pub sigterm_at_step: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct TrainOutcome {
    pub run_dir: PathBuf,
    pub epochs_done: usize,
    /// Best value of the monitored quantity (val loss or val acc, see the config).
    pub best_monitored: Option<f64>,
    pub last_val: Option<ValStats>,
    pub stopped_early: bool,
    pub interrupted: bool,
}

/// Validation figures of one epoch.
#[derive(Debug, Clone, Default)]
pub struct ValStats {
    pub loss: f64,
    pub acc: f64,
    pub ap: Option<f64>,
    /// Mean weight per branch (over the 3 channels) on real and on fake images.
    pub weights_real: Vec<f64>,
    pub weights_fake: Vec<f64>,
}

/// Progress saved in every checkpoint's metadata.
#[derive(Debug, Clone, Default, PartialEq)]
struct Progress {
    /// Next epoch to run (0-based).
    epoch: usize,
    /// Batches of `epoch` already done (non-zero after a mid-epoch interrupt).
    batch_in_epoch: usize,
    step: i64,
    best: Option<f64>,
    bad_epochs: usize,
}

impl Progress {
    /// All epochs done, or stopped early by patience.
    fn finished(&self, config: &Config) -> bool {
        let patience = config.train.patience();
        self.epoch >= config.train.epochs || (patience > 0 && self.bad_epochs >= patience)
    }

    fn to_meta(&self) -> Vec<(&'static str, String)> {
        vec![
            ("epoch", self.epoch.to_string()),
            ("batch_in_epoch", self.batch_in_epoch.to_string()),
            ("step", self.step.to_string()),
            (
                "best",
                self.best.map(|b| format!("{b:e}")).unwrap_or_default(),
            ),
            ("bad_epochs", self.bad_epochs.to_string()),
        ]
    }

    fn from_meta(meta: &std::collections::HashMap<String, String>) -> Result<Progress> {
        let get = |k: &str| {
            meta.get(k)
                .with_context(|| format!("checkpoint metadata has no {k:?}"))
        };
        Ok(Progress {
            epoch: get("epoch")?.parse()?,
            batch_in_epoch: get("batch_in_epoch")?.parse()?,
            step: get("step")?.parse()?,
            best: get("best")
                .ok()
                .filter(|s| !s.is_empty())
                .map(|s| s.parse())
                .transpose()?,
            bad_epochs: get("bad_epochs")?.parse()?,
        })
    }
}

fn fmt_f(x: f64) -> String {
    format!("{x:.6}")
}

/// Parameters with their optimizer group: 0 backbone, 1 fusion (its own lr multiplier).
fn parameter_groups(vs: &nn::VarStore) -> Vec<(String, Tensor, usize)> {
    let mut named: Vec<(String, Tensor)> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .collect();
    named.sort_by(|a, b| a.0.cmp(&b.0));
    named
        .into_iter()
        .map(|(name, t)| {
            let group = usize::from(name.starts_with(ATTENTION_PREFIX) || name == LEARNED_WEIGHTS);
            (name, t, group)
        })
        .collect()
}

/// Columns of `train_log.csv`: step rows fill the first six, epoch rows the rest, with the
/// mean weight of every branch on real and on fake validation images.
fn log_header(scales: &[f64]) -> Vec<String> {
    let mut header: Vec<String> = [
        "kind",
        "epoch",
        "step",
        "loss",
        "lr",
        "images_per_s",
        "val_loss",
        "val_acc",
        "val_ap",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for s in scales {
        header.push(format!("w_real_{s}"));
        header.push(format!("w_fake_{s}"));
    }
    header
}

/// A bar on a terminal (hidden otherwise: then [`say`] prints plain lines).
fn progress_bar(total: u64, position: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} steps {msg} ETA {eta}")
            .expect("a valid template")
            .progress_chars("=> "),
    );
    bar.set_position(position);
    bar
}

/// A log line that does not tear the progress bar.
fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

/// Checkpoint metadata keys of the training and validation file lists' fingerprints.
const META_TRAIN_FILES: &str = "train_files";
const META_VAL_FILES: &str = "val_files";

/// Weights, BN statistics, Adam moments, progress, the resolved config and the data's
/// fingerprints, atomically.
fn save_checkpoint(
    path: &Path,
    vs: &nn::VarStore,
    adam: &Adam,
    progress: &Progress,
    config: &Config,
    splits: &Splits,
) -> Result<()> {
    let mut tensors = model_tensors(vs);
    tensors.extend(adam.state_tensors());
    let mut meta: BTreeMap<String, String> = progress
        .to_meta()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    meta.insert(checkpoint::META_CONFIG.into(), config.to_yaml());
    meta.insert(
        checkpoint::META_FORMAT.into(),
        checkpoint::FORMAT_VERSION.into(),
    );
    meta.insert("seed".into(), config.train.seed.to_string());
    meta.insert(META_TRAIN_FILES.into(), splits.train_fingerprint.clone());
    meta.insert(META_VAL_FILES.into(), splits.val_fingerprint.clone());
    write_safetensors_atomic(path, &tensors, &meta)
}

/// What `meta.json` records about a run: enough to reproduce and to compare runs.
fn run_meta(
    config: &Config,
    device: Device,
    vs: &nn::VarStore,
    threads: crate::threads::ThreadBudget,
    dataset: serde_json::Value,
) -> serde_json::Value {
    serde_json::json!({
        "name": config.name,
        "seed": config.train.seed,
        "git_revision": run_dir::git_revision(),
        "npr_version": env!("CARGO_PKG_VERSION"),
        "tch_version": "0.24.0",
        "libtorch_version": "2.11.0",
        "device": format!("{device:?}"),
        "cuda_devices": tch::Cuda::device_count(),
        "cpu_threads": tch::get_num_threads(),
        "loader_threads": threads.loader,
        // How libgomp waits (src/threads.rs): null where it runs with its own defaults.
        "openmp_spin": std::env::var(crate::threads::SPIN_ENV).ok(),
        "omp_wait_policy": std::env::var(crate::threads::WAIT_POLICY_ENV).ok(),
        "trainable_parameters": crate::model::detector::trainable_parameters(vs),
        "dataset": dataset,
        "started": chrono_like_now(),
        // The exact command line, so a report can say what produced the run.
        "command": std::env::args().collect::<Vec<_>>(),
    })
}

/// Where a run folder stands, for sweeps that must skip or continue finished cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// No `last.safetensors`: start from scratch.
    Absent,
    /// Stopped before its last epoch (interrupted): continue with `--resume`.
    Partial,
    /// All epochs done, or stopped early.
    Finished,
}

/// Reads the progress stored in `RUN/last.safetensors` against the run's config.
pub fn run_status(run: &Path, config: &Config) -> Result<RunStatus> {
    let last = run.join(run_dir::LAST);
    if !last.is_file() {
        return Ok(RunStatus::Absent);
    }
    let (_, meta) = read_safetensors(&last)?;
    let progress = Progress::from_meta(&meta)?;
    Ok(if progress.finished(config) {
        RunStatus::Finished
    } else {
        RunStatus::Partial
    })
}

/// Where a run starts.
enum Resume {
    Fresh,
    /// From `last.safetensors`: its tensors and progress.
    From(HashMap<String, Tensor>, Progress),
    /// Nothing to do: `--resume auto` on a finished run.
    Finished(TrainOutcome),
}

/// On `--resume`, the state to continue from, after checking that it is the same run: the
/// same config (only `train.epochs` may grow) and the same training and validation files.
fn resume_point(run: &RunDir, config: &Config, splits: &Splits, start: Start) -> Result<Resume> {
    if !run.resuming {
        return Ok(Resume::Fresh);
    }
    let last = run.file(run_dir::LAST);
    let (tensors, meta) = read_safetensors(&last)?;
    let saved = meta.get(checkpoint::META_CONFIG).with_context(|| {
        format!(
            "--resume: {} has no embedded config, so it cannot be checked against this run; start a new run",
            last.display()
        )
    })?;
    let mut prev = Config::from_yaml(saved, &[])
        .with_context(|| format!("the config embedded in {}", last.display()))?;
    prev.train.epochs = config.train.epochs;
    if prev != *config {
        return Err(crate::usage!(
            "--resume: the config differs from the one {} was trained with (only train.epochs may change on resume); see {}",
            last.display(),
            run.file(run_dir::CONFIG).display()
        ));
    }
    for (key, now, what) in [
        (META_TRAIN_FILES, &splits.train_fingerprint, "training"),
        (META_VAL_FILES, &splits.val_fingerprint, "validation"),
    ] {
        let before = meta.get(key).map(String::as_str).unwrap_or("none recorded");
        if before != now {
            return Err(crate::usage!(
                "--resume: the {what} files differ from those {} was trained on (fingerprint then {before}, now {now}; `count:hash` of the file list); resume on the same data, or start a new run",
                last.display()
            ));
        }
    }
    let progress = Progress::from_meta(&meta)?;
    let patience = config.train.patience();
    let stopped_early = patience > 0 && progress.bad_epochs >= patience;
    if progress.finished(config) && start == Start::Auto {
        // A requeued job whose run is complete: nothing to do, and that is success.
        eprintln!(
            "--resume auto: {} is finished ({} epochs); nothing to do",
            run.path.display(),
            progress.epoch
        );
        return Ok(Resume::Finished(TrainOutcome {
            run_dir: run.path.clone(),
            epochs_done: progress.epoch,
            best_monitored: progress.best,
            last_val: None,
            stopped_early,
            interrupted: false,
        }));
    }
    if progress.epoch >= config.train.epochs {
        return Err(crate::usage!(
            "--resume: {} already ran all {} epochs; continue with --set train.epochs=N (N > {})",
            run.path.display(),
            progress.epoch,
            progress.epoch
        ));
    }
    if stopped_early {
        return Err(crate::usage!(
            "--resume: {} was stopped early ({} epochs without improvement, patience {patience}); nothing to continue",
            run.path.display(),
            progress.bad_epochs
        ));
    }
    Ok(Resume::From(tensors, progress))
}

/// Trains one model; see the module doc for the guarantees.
pub fn train(opts: TrainOptions) -> Result<TrainOutcome> {
    let config = &opts.config;
    let device = opts.device;
    let seed = config.train.seed;
    // Threads: libtorch's team and the decode pool sized together (README.md, "Threads on
    // CPU"); a bad NPR_THREADS stops here, before anything is written.
    let threads = crate::threads::apply(device, config.data.workers)?;

    // One writer per run folder, for the whole run: a second process stops here, before any
    // work. A folder created only for the lock is removed again if the run fails to start.
    let _lock = RunLock::acquire(&opts.out)?;

    // Data next: a dataset that cannot be used leaves no run folder behind.
    let skips = Arc::new(SkipLog::default());
    let mut splits = config
        .data
        .splits(seed, &config.test.sets)
        .load(&skips)
        .with_context(|| {
            format!(
                "the training data (data.dataroot {})",
                config.data.dataroot.display()
            )
        })?;
    // The lists move into the loaders; `splits` keeps the fingerprints and summary.
    let train_samples = Arc::new(std::mem::take(&mut splits.train));
    let val_samples = Arc::new(std::mem::take(&mut splits.val));

    // Run folder: refuse to clobber, write the resolved config first (a run describes itself).
    let run = RunDir::prepare(&opts.out, opts.start)?;
    let resume = match resume_point(&run, config, &splits, opts.start)? {
        Resume::Finished(outcome) => return Ok(outcome),
        Resume::From(tensors, progress) => Some((tensors, progress)),
        Resume::Fresh => None,
    };
    run.write(run_dir::CONFIG, &config.to_yaml())?;

    eprintln!(
        "train: {} images, val: {} images, device {device:?}, run folder {}",
        train_samples.len(),
        val_samples.len(),
        run.path.display()
    );

    // Model and optimizer (train.seed fixes the initialisation).
    tch::manual_seed(seed as i64);
    let vs = nn::VarStore::new(device);
    let mut model = Detector::new(&vs.root(), &config.model);
    if config.train.channels_last {
        model.use_channels_last(&vs);
    }
    let o = &config.train.optimizer;
    let mut adam = Adam::new(
        parameter_groups(&vs),
        o.lr,
        (o.betas[0], o.betas[1]),
        o.eps,
        o.weight_decay,
        vec![1.0, o.fusion_lr_mult],
    );
    let monitor = config
        .train
        .early_stopping()
        .map_or(Monitor::ValLoss, |e| e.monitor);
    let goal = match monitor {
        Monitor::ValLoss => Goal::Minimize,
        Monitor::ValAcc => Goal::Maximize,
    };
    let mut stopper = EarlyStopper::new(goal, config.train.patience());
    let mut progress = Progress::default();

    // Resume: weights, BN statistics, Adam moments and the position in the schedule.
    if let Some((tensors, saved)) = resume {
        let report = checkpoint::load_into(&vs, &tensors)?;
        if !report.missing.is_empty() {
            bail!("{}: {report}", run.file(run_dir::LAST).display());
        }
        progress = saved;
        adam.load_state(&tensors, progress.step)?;
        stopper.best = progress.best;
        stopper.bad_epochs = progress.bad_epochs;
        eprintln!(
            "resuming at epoch {} (batch {}), step {}",
            progress.epoch + 1,
            progress.batch_in_epoch,
            progress.step
        );
    } else {
        let meta = run_meta(config, device, &vs, threads, splits.summary.clone());
        run.write(run_dir::META, &serde_json::to_string_pretty(&meta)?)?;
    }
    if config.train.amp && !device.is_cuda() {
        eprintln!("note: train.amp applies on CUDA only; training in fp32 on {device:?}");
    }

    // Rows past the checkpoint (a process killed after logging) are dropped: the steps
    // they describe run again now, and the log must not hold them twice.
    let mut log = CsvLog::open(
        &run.file(run_dir::LOG),
        &log_header(&config.model.scales),
        progress.step,
    )?;

    crate::interrupt::install()?;
    crate::amp::configure_cudnn(config.train.deterministic, device);
    let batch_size = config.train.batch_size;
    let steps_per_epoch = train_samples.len().div_ceil(batch_size);
    let bar = progress_bar(
        (config.train.epochs * steps_per_epoch) as u64,
        (progress.epoch * steps_per_epoch + progress.batch_in_epoch) as u64,
    );

    let mut outcome = TrainOutcome {
        run_dir: run.path.clone(),
        epochs_done: progress.epoch,
        best_monitored: stopper.best,
        last_val: None,
        stopped_early: false,
        interrupted: false,
    };
    let save = |name: &str, progress: &Progress, adam: &Adam| {
        save_checkpoint(&run.file(name), &vs, adam, progress, config, &splits)
    };

    // One decode pool each for the whole run.
    let train_loader = data::Loader::new(
        train_samples,
        data::Transform::Train(config.data.train_transform()),
        config.data.train_loader(batch_size, seed, threads.loader),
        skips.clone(),
    )?;
    let val_loader = crate::eval::score::loader(
        val_samples,
        config.data.val_transform(),
        config.test.batch_size,
        threads.loader,
        &skips,
    )?;
    let result = crate::amp::bf16_autocast(config.train.amp, device, || -> Result<()> {
        for epoch in progress.epoch..config.train.epochs {
            bar.set_prefix(format!("epoch {}/{}", epoch + 1, config.train.epochs));
            adam.lr = lr_at_epoch(
                o.lr,
                config.train.lr_decay.factor,
                config.train.lr_decay.every_epochs,
                epoch,
            );
            let mut stepper = Stepper {
                config,
                model: &model,
                adam: &mut adam,
                log: &mut log,
                bar: &bar,
                device,
                run: &run,
                sigterm_at_step: opts.sigterm_at_step,
            };
            let train_loss = match train_epoch(
                &mut stepper,
                epoch,
                train_loader.epoch(epoch)?,
                &mut progress,
            )? {
                Pass::Done(loss) => loss,
                Pass::Interrupted => {
                    save(run_dir::LAST, &progress, &adam)?;
                    outcome.interrupted = true;
                    return Ok(());
                }
            };

            // Validate, log, checkpoint.
            let val = crate::amp::without_autocast(|| validate(&model, &val_loader, device))?;
            let verdict = stopper.update(match goal {
                Goal::Minimize => val.loss,
                Goal::Maximize => val.acc,
            });
            progress.epoch = epoch + 1;
            progress.batch_in_epoch = 0;
            progress.best = stopper.best;
            progress.bad_epochs = stopper.bad_epochs;
            // After a resume on the epoch's last batch no training loss was seen: n/a.
            let train_loss = train_loss.map_or_else(|| "n/a".to_string(), fmt_f);
            let ap = val.ap.map(fmt_f).unwrap_or_else(|| "n/a".into());
            let rounded = |w: &[f64]| {
                w.iter()
                    .map(|w| (w * 1000.0).round() / 1000.0)
                    .collect::<Vec<_>>()
            };
            say(
                &bar,
                format!(
                    "epoch {}/{}: train loss {train_loss}, val loss {:.4}, acc {:.4}, AP {ap}, weights real {:?} fake {:?}{}",
                    epoch + 1, config.train.epochs, val.loss, val.acc,
                    rounded(&val.weights_real),
                    rounded(&val.weights_fake),
                    if verdict == Verdict::Improved { " (best)" } else { "" }
                ),
            );
            let mut row = vec![
                "epoch".into(),
                (epoch + 1).to_string(),
                progress.step.to_string(),
                train_loss,
                format!("{:e}", adam.lr),
                String::new(),
                fmt_f(val.loss),
                fmt_f(val.acc),
                ap,
            ];
            for (r, f) in val.weights_real.iter().zip(&val.weights_fake) {
                row.push(fmt_f(*r));
                row.push(fmt_f(*f));
            }
            log.row(&row)?;
            // `best` exists only where the recipe evaluates it (the official one has none).
            if verdict == Verdict::Improved && config.train.evaluates_best() {
                save(run_dir::BEST, &progress, &adam)?;
            }
            save(run_dir::LAST, &progress, &adam)?;
            outcome.epochs_done = epoch + 1;
            outcome.best_monitored = stopper.best;
            outcome.last_val = Some(val);
            if verdict == Verdict::Stop {
                say(
                    &bar,
                    format!(
                        "early stopping: no improvement for {} epochs",
                        stopper.patience
                    ),
                );
                outcome.stopped_early = true;
                return Ok(());
            }
            if opts.interrupt_after_epochs == Some(epoch + 1)
                || crate::interrupt::requested().is_some()
            {
                outcome.interrupted = true;
                return Ok(());
            }
        }
        Ok(())
    });
    bar.finish_and_clear();

    // Whatever happened, say what was skipped and keep the list.
    crate::atomic::write(&run.file(run_dir::SKIPPED), skips.to_tsv().as_bytes())?;
    if !skips.is_empty() || skips.upscaled() > 0 {
        eprintln!("{}", skips.summary());
    }
    result?;
    if outcome.interrupted {
        eprintln!(
            "interrupted: state saved to {}; continue with the same command plus --resume (or --resume auto)",
            run.file(run_dir::LAST).display()
        );
    }
    Ok(outcome)
}

/// What one epoch's optimizer steps work on.
struct Stepper<'a> {
    config: &'a Config,
    model: &'a Detector,
    adam: &'a mut Adam,
    log: &'a mut CsvLog,
    bar: &'a ProgressBar,
    device: Device,
    run: &'a RunDir,
    /// Tests: raise a real SIGTERM after this optimizer step.
    sigterm_at_step: Option<i64>,
}

/// How a pass over one epoch's training batches ended.
enum Pass {
    /// Every batch done, with the epoch's mean training loss (`None` when a resume landed
    /// after the last batch).
    Done(Option<f64>),
    /// A signal asked to stop; `progress` describes the state after the last step.
    Interrupted,
}

/// One epoch of optimizer steps from `progress.batch_in_epoch` on (an interrupted run's
/// batches are skipped), a step row in the log every `train.log_every` steps, a stop at the
/// next batch when a signal asks. A diverged loss is an error, so it never reaches a
/// checkpoint.
fn train_epoch(
    s: &mut Stepper,
    epoch: usize,
    batches: data::BatchIter,
    progress: &mut Progress,
) -> Result<Pass> {
    let device = s.device;
    let zero = || Tensor::zeros([], (Kind::Float, device));
    let (mut interval_loss, mut interval_n, mut interval_images) = (zero(), 0usize, 0usize);
    let (mut epoch_loss, mut epoch_batches) = (0.0f64, 0usize);
    let mut clock = Instant::now();
    for (b, batch) in batches.enumerate() {
        if b < progress.batch_in_epoch {
            continue;
        }
        let x = to_input(&batch.data, batch.n, batch.h, batch.w, device);
        let y = Tensor::from_slice(&batch.labels)
            .to_kind(Kind::Float)
            .to_device(device);
        let loss = train_step(s.model, s.adam, &x, &y);
        progress.step += 1;
        progress.batch_in_epoch = b + 1;
        if s.sigterm_at_step == Some(progress.step) {
            // SAFETY: raising a signal for which a handler is installed.
            unsafe { libc::raise(libc::SIGTERM) };
        }
        interval_loss += loss;
        interval_n += 1;
        interval_images += batch.n;
        s.bar.inc(1);

        if progress.step % s.config.train.log_every as i64 == 0 {
            let mean_loss = interval_loss.double_value(&[]) / interval_n as f64;
            if !mean_loss.is_finite() {
                bail!(
                    "the training loss became {mean_loss} at step {} (epoch {}); the last good checkpoint is kept in {}. Lower train.optimizer.lr or check the data",
                    progress.step, epoch + 1, s.run.path.display()
                );
            }
            let ips = interval_images as f64 / clock.elapsed().as_secs_f64();
            epoch_loss += mean_loss * interval_n as f64;
            epoch_batches += interval_n;
            s.bar
                .set_message(format!("loss {mean_loss:.4} {ips:.0} img/s"));
            if s.bar.is_hidden() {
                say(
                    s.bar,
                    format!(
                        "epoch {} step {} loss {mean_loss:.4} lr {:.3e} {ips:.0} img/s",
                        epoch + 1,
                        progress.step,
                        s.adam.lr
                    ),
                );
            }
            s.log.row(&[
                "step".into(),
                (epoch + 1).to_string(),
                progress.step.to_string(),
                fmt_f(mean_loss),
                format!("{:e}", s.adam.lr),
                format!("{ips:.1}"),
            ])?;
            interval_loss = zero();
            (interval_n, interval_images) = (0, 0);
            clock = Instant::now();
        }
        if crate::interrupt::requested().is_some() {
            // Never overwrite the last good state with diverged weights.
            let pending = interval_loss.double_value(&[]);
            if !pending.is_finite() {
                bail!(
                    "interrupted after the training loss became {pending}; {} keeps the last good state",
                    s.run.file(run_dir::LAST).display()
                );
            }
            return Ok(Pass::Interrupted);
        }
    }
    if interval_n > 0 {
        let rest = interval_loss.double_value(&[]);
        if !rest.is_finite() {
            bail!(
                "the training loss became {rest} in epoch {}; the last good checkpoint is kept in {}",
                epoch + 1,
                s.run.path.display()
            );
        }
        epoch_loss += rest;
        epoch_batches += interval_n;
    }
    Ok(Pass::Done(
        (epoch_batches > 0).then(|| epoch_loss / epoch_batches as f64),
    ))
}

/// Loss, accuracy, AP and mean branch weights on the validation set (eval mode, no grad).
pub fn validate(model: &Detector, loader: &data::Loader, device: Device) -> Result<ValStats> {
    let scores = crate::eval::score::score(model, loader, 0, device).context("validation")?;
    let k = model.config.scales.len();
    let mut loss_sum = 0.0;
    let mut w_sum = [vec![0.0; k], vec![0.0; k]];
    let mut count = [0usize; 2];
    for image in &scores.images {
        loss_sum += metrics::bce_with_logit(image.logit, image.label);
        let class = image.label as usize;
        count[class] += 1;
        for (sum, w) in w_sum[class].iter_mut().zip(image.branch_weights()) {
            *sum += w;
        }
    }
    let labels: Vec<u8> = scores.images.iter().map(|i| i.label).collect();
    let logits: Vec<f64> = scores.images.iter().map(|i| i.logit).collect();
    let m = metrics::from_logits(&labels, &logits)?;
    let mean = |class: usize| -> Vec<f64> {
        let n = count[class].max(1) as f64;
        w_sum[class].iter().map(|w| w / n).collect()
    };
    Ok(ValStats {
        loss: loss_sum / labels.len() as f64,
        acc: m.acc.unwrap_or(0.0),
        ap: m.ap,
        weights_real: mean(0),
        weights_fake: mean(1),
    })
}

/// Seconds since the Unix epoch (no date crate needed for a timestamp in meta.json).
fn chrono_like_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
