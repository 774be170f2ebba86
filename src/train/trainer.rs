//! The training loop (nanoGPT-style: one readable loop, a comment per phase).
//!
//! Exact resume: the data order and every augmentation are functions of (seed, epoch,
//! sample index), the model has no other randomness, and a checkpoint holds weights,
//! BatchNorm statistics, Adam moments, the step, the epoch and the batch within it. So a
//! run interrupted at any step and resumed reaches the weights of an uninterrupted run.
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use indicatif::ProgressBar;
use tch::{nn, Device, Kind, Tensor};

use super::adam::Adam;
use super::log::{progress_bar, TrainLog};
use super::resume::{resume_point, Progress, Resume};
use super::run_dir::{self, RunDir, Start};
use super::scale_supervision::ScaleTargets;
use super::schedule::{lr_at_epoch, EarlyStopper, Goal, Verdict};
use super::start_up::{self, StartUp};
use super::step::{train_step, train_step_with};
use crate::config::{Config, Monitor};
use crate::data::{self, SkipLog, Splits};
use crate::eval::{metrics, score};
use crate::model::detector::DetectorOutput;
use crate::model::fusion::{ATTENTION_PREFIX, LEARNED_WEIGHTS};
use crate::model::input::to_input;
use crate::model::Detector;
use crate::progress::say;
use crate::table;

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

impl TrainOutcome {
    /// A run that stands at `progress`, before any epoch of this process.
    pub(super) fn at(run_dir: &Path, progress: &Progress) -> TrainOutcome {
        TrainOutcome {
            run_dir: run_dir.to_path_buf(),
            epochs_done: progress.epoch,
            best_monitored: progress.best,
            last_val: None,
            stopped_early: false,
            interrupted: false,
        }
    }
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

/// Parameters with their optimizer group: 0 backbone, 1 fusion (its own lr multiplier).
fn parameter_groups(vs: &nn::VarStore) -> Vec<(String, Tensor, usize)> {
    let fusion = |name: &str| name.starts_with(ATTENTION_PREFIX) || name == LEARNED_WEIGHTS;
    let mut params: Vec<(String, Tensor, usize)> = vs
        .variables()
        .into_iter()
        .filter(|(_, t)| t.requires_grad())
        .map(|(name, t)| {
            let group = usize::from(fusion(&name));
            (name, t, group)
        })
        .collect();
    params.sort_by(|a, b| a.0.cmp(&b.0));
    params
}

/// Trains one model; see the module doc for the guarantees.
pub fn train(opts: TrainOptions) -> Result<TrainOutcome> {
    let config = &opts.config;
    let (seed, batch_size) = (config.train.seed, config.train.batch_size);
    // Threads: libtorch's team and the decode pool sized together (README.md, "Threads on
    // CPU"); a bad NPR_THREADS stops here, before anything is written.
    let threads = crate::threads::apply(opts.device, config.data.workers)?;

    // One writer per run folder, for the whole run: a second process stops here, before any
    // work. Until the first epoch a signal stops at once, and a start that fails or is
    // stopped leaves no run folder it created behind (start_up.rs).
    let startup = StartUp::begin(&opts.out)?;

    // Data next: a dataset that cannot be used leaves no run folder behind.
    let skips = Arc::new(SkipLog::default());
    let dataroot = config.data.dataroot.display();
    let spec = config.data.splits(seed, &config.test.sets);
    let mut splits = (spec.load(&skips))
        .with_context(|| format!("the training data (data.dataroot {dataroot})"))?;
    // The lists move into the loaders; `splits` keeps the fingerprints and summary.
    let train_samples = Arc::new(std::mem::take(&mut splits.train));
    let val_samples = Arc::new(std::mem::take(&mut splits.val));
    let supervision = ScaleTargets::for_training(config, &train_samples)?;
    start_up::test_signal_at("data");

    // Run folder: refuse to clobber, write the resolved config first (a run describes itself).
    let run = RunDir::prepare(&opts.out, opts.start)?;
    let resume = resume_point(&run, config, &splits, opts.start)?;
    if let Resume::Finished(outcome) = resume {
        startup.done();
        return Ok(outcome);
    }
    run.write(run_dir::CONFIG, &config.to_yaml())?;
    let (n_train, n_val, folder) = (train_samples.len(), val_samples.len(), run.path.display());
    eprintln!(
        "train: {n_train} images, val: {n_val} images, device {:?}, run folder {folder}",
        opts.device
    );
    let steps_per_epoch = n_train.div_ceil(batch_size);
    let mut trainer = Trainer::new(&opts, run, &splits, threads, steps_per_epoch, resume)?;
    trainer.supervision = supervision;
    // A disk that cannot hold the checkpoints fails now, not at the end of an epoch.
    trainer.check_room()?;
    start_up::test_signal_at("run");

    // One decode pool each for the whole run.
    let batches = config.data.train_loader(batch_size, seed, threads.loader);
    let augment = data::Transform::Train(config.data.train_transform());
    let train_loader = data::Loader::new(train_samples, augment, batches, skips.clone())?;
    let (transform, batch) = (config.data.val_transform(), config.test.batch_size);
    let val_loader = score::loader(val_samples, transform, batch, threads.loader, &skips)?;
    let _lock = startup.done();
    let result = trainer.fit(&train_loader, &val_loader);
    trainer.bar.finish_and_clear();
    wrap_up(&trainer.run, &skips, result)
}

/// Whatever happened, says what was skipped and keeps the list; then how the run ended.
fn wrap_up(run: &RunDir, skips: &SkipLog, result: Result<TrainOutcome>) -> Result<TrainOutcome> {
    crate::atomic::write(&run.file(run_dir::SKIPPED), skips.to_tsv().as_bytes())?;
    if !skips.is_empty() || skips.upscaled() > 0 {
        eprintln!("{}", skips.summary());
    }
    let outcome = result?;
    if outcome.interrupted {
        eprintln!(
            "interrupted: state saved to {}; continue with the same command plus --resume (or --resume auto)",
            run.file(run_dir::LAST).display()
        );
    }
    Ok(outcome)
}

/// One run in progress: the model, its optimizer, where the run stands and what it reports.
/// Its checkpoints (`save`) are written beside the resume checks that read them, in resume.rs.
pub(super) struct Trainer<'a> {
    pub(super) opts: &'a TrainOptions,
    /// The data's fingerprints, saved with every checkpoint.
    pub(super) splits: &'a Splits,
    pub(super) run: RunDir,
    pub(super) vs: nn::VarStore,
    model: Detector,
    pub(super) adam: Adam,
    stopper: EarlyStopper,
    pub(super) progress: Progress,
    log: TrainLog,
    bar: ProgressBar,
    /// `train.scale_supervision`'s targets, when the option is on.
    supervision: Option<ScaleTargets>,
}

/// How a pass over one epoch's training batches ended.
enum Pass {
    /// Every batch done, with the epoch's mean training loss (`None` when a resume landed
    /// after the last batch).
    Done(Option<f64>),
    /// A signal asked to stop; `progress` describes the state after the last step.
    Interrupted,
}

impl<'a> Trainer<'a> {
    /// The model and optimizer (train.seed fixes the initialisation), then the saved state
    /// or a new `meta.json`, the log and the progress bar.
    fn new(
        opts: &'a TrainOptions,
        run: RunDir,
        splits: &'a Splits,
        threads: crate::threads::ThreadBudget,
        steps_per_epoch: usize,
        resume: Resume,
    ) -> Result<Self> {
        let (config, device) = (&opts.config, opts.device);
        tch::manual_seed(config.train.seed as i64);
        let vs = nn::VarStore::new(device);
        let mut model = Detector::new(&vs.root(), &config.model);
        if config.train.channels_last {
            model.use_channels_last(&vs);
        }
        let (o, groups) = (&config.train.optimizer, parameter_groups(&vs));
        let (betas, lr_mult) = ((o.betas[0], o.betas[1]), vec![1.0, o.fusion_lr_mult]);
        let mut adam = Adam::new(groups, o.lr, betas, o.eps, o.weight_decay, lr_mult);
        // Resume: weights, BN statistics, Adam moments and the position in the schedule.
        let progress = match resume {
            Resume::From(saved) => saved.restore(&vs, &mut adam)?,
            _ => {
                let meta = run_dir::run_meta(config, device, &vs, threads, splits.summary.clone());
                run.write(run_dir::META, &serde_json::to_string_pretty(&meta)?)?;
                Progress::default()
            }
        };
        if config.train.amp && !device.is_cuda() {
            eprintln!("note: train.amp applies on CUDA only; training in fp32 on {device:?}");
        }
        // Rows past the checkpoint (a process killed after logging) are dropped: the steps
        // they describe run again now, and the log must not hold them twice.
        let log = TrainLog::open(&run.file(run_dir::LOG), &config.model.scales, progress.step)?;
        crate::interrupt::install()?;
        crate::amp::configure_cudnn(config.train.deterministic, device);
        let goal = match config.train.early_stopping().map(|e| e.monitor) {
            None | Some(Monitor::ValLoss) => Goal::Minimize,
            Some(Monitor::ValAcc) => Goal::Maximize,
        };
        let stopper = EarlyStopper {
            best: progress.best,
            bad_epochs: progress.bad_epochs,
            ..EarlyStopper::new(goal, config.train.patience())
        };
        let bar = progress_bar(
            (config.train.epochs * steps_per_epoch) as u64,
            (progress.epoch * steps_per_epoch + progress.batch_in_epoch) as u64,
        );
        Ok(Trainer {
            opts,
            splits,
            run,
            vs,
            model,
            adam,
            stopper,
            progress,
            log,
            bar,
            supervision: None,
        })
    }

    /// The remaining epochs: train, validate, log, checkpoint, until the last epoch, early
    /// stopping or an interruption.
    fn fit(&mut self, train: &data::Loader, val: &data::Loader) -> Result<TrainOutcome> {
        let (config, device) = (&self.opts.config, self.opts.device);
        let mut outcome = TrainOutcome::at(&self.run.path, &self.progress);
        crate::amp::bf16_autocast(config.train.amp, device, || -> Result<()> {
            for epoch in self.progress.epoch..config.train.epochs {
                self.bar
                    .set_prefix(format!("epoch {}/{}", epoch + 1, config.train.epochs));
                let decay = &config.train.lr_decay;
                let base = config.train.optimizer.lr;
                self.adam.lr = lr_at_epoch(base, decay.factor, decay.every_epochs, epoch);
                let Pass::Done(train_loss) = self.train_epoch(epoch, train.epoch(epoch)?)? else {
                    self.save(run_dir::LAST)?;
                    outcome.interrupted = true;
                    return Ok(());
                };
                let val =
                    crate::amp::without_autocast(|| validation_stats(&self.model, val, device))?;
                let verdict = self.end_epoch(epoch, train_loss, &val)?;
                outcome.epochs_done = epoch + 1;
                outcome.best_monitored = self.stopper.best;
                outcome.last_val = Some(val);
                if verdict == Verdict::Stop {
                    let patience = self.stopper.patience;
                    say(
                        &self.bar,
                        format!("early stopping: no improvement for {patience} epochs"),
                    );
                    outcome.stopped_early = true;
                    return Ok(());
                }
                if self.opts.interrupt_after_epochs == Some(epoch + 1)
                    || crate::interrupt::requested().is_some()
                {
                    outcome.interrupted = true;
                    return Ok(());
                }
            }
            Ok(())
        })?;
        Ok(outcome)
    }

    /// One epoch of optimizer steps from `progress.batch_in_epoch` on (an interrupted run's
    /// batches are skipped), a step row in the log every `train.log_every` steps, a stop at
    /// the next batch when a signal asks. A diverged loss is an error, so it never reaches a
    /// checkpoint.
    fn train_epoch(&mut self, epoch: usize, batches: data::BatchIter) -> Result<Pass> {
        let device = self.opts.device;
        let mut interval = Interval::new(device);
        let (mut epoch_loss, mut epoch_batches) = (0.0f64, 0usize);
        for (b, batch) in batches.enumerate() {
            if b < self.progress.batch_in_epoch {
                continue;
            }
            let x = to_input(&batch.data, batch.n, batch.h, batch.w, device);
            let y = Tensor::from_slice(&batch.labels)
                .to_kind(Kind::Float)
                .to_device(device);
            let loss = match &self.supervision {
                Some(s) => {
                    let aux = |out: &DetectorOutput| Some(s.loss(out, &batch.indices));
                    train_step_with(&self.model, &mut self.adam, &x, &y, &aux)
                }
                None => train_step(&self.model, &mut self.adam, &x, &y),
            };
            self.progress.step += 1;
            self.progress.batch_in_epoch = b + 1;
            if self.opts.sigterm_at_step == Some(self.progress.step) {
                // SAFETY: raising a signal for which a handler is installed.
                unsafe { libc::raise(libc::SIGTERM) };
            }
            interval.loss += loss;
            interval.steps += 1;
            interval.images += batch.n;
            self.bar.inc(1);
            if self.progress.step % self.opts.config.train.log_every as i64 == 0 {
                let mean_loss = self.log_step(epoch, &interval)?;
                epoch_loss += mean_loss * interval.steps as f64;
                epoch_batches += interval.steps;
                interval = Interval::new(device);
            }
            if crate::interrupt::requested().is_some() {
                // Never overwrite the last good state with diverged weights.
                let pending = interval.loss.double_value(&[]);
                if !pending.is_finite() {
                    bail!(
                        "interrupted after the training loss became {pending}; {} keeps the last good state",
                        self.run.file(run_dir::LAST).display()
                    );
                }
                return Ok(Pass::Interrupted);
            }
        }
        if interval.steps > 0 {
            let rest = interval.loss.double_value(&[]);
            if !rest.is_finite() {
                bail!(
                    "the training loss became {rest} in epoch {}; the last good checkpoint is kept in {}",
                    epoch + 1,
                    self.run.path.display()
                );
            }
            epoch_loss += rest;
            epoch_batches += interval.steps;
        }
        Ok(Pass::Done(
            (epoch_batches > 0).then(|| epoch_loss / epoch_batches as f64),
        ))
    }

    /// The step row of a log interval (and its line when there is no bar); returns the
    /// interval's mean loss, refused when it diverged.
    fn log_step(&mut self, epoch: usize, interval: &Interval) -> Result<f64> {
        let step = self.progress.step;
        let mean_loss = interval.loss.double_value(&[]) / interval.steps as f64;
        if !mean_loss.is_finite() {
            bail!(
                "the training loss became {mean_loss} at step {step} (epoch {}); the last good checkpoint is kept in {}. Lower train.optimizer.lr or check the data",
                epoch + 1, self.run.path.display()
            );
        }
        let ips = interval.images as f64 / interval.clock.elapsed().as_secs_f64();
        let lr = self.adam.lr;
        self.bar
            .set_message(format!("loss {mean_loss:.4} {ips:.0} img/s"));
        if self.bar.is_hidden() {
            let line = format!(
                "epoch {} step {step} loss {mean_loss:.4} lr {lr:.3e} {ips:.0} img/s",
                epoch + 1
            );
            say(&self.bar, line);
        }
        self.log.step(epoch + 1, step, mean_loss, lr, ips)?;
        Ok(mean_loss)
    }

    /// After validation: early stopping's verdict, the epoch's line and log row, `best` on
    /// improvement where the recipe evaluates it, and `last`.
    fn end_epoch(
        &mut self,
        epoch: usize,
        train_loss: Option<f64>,
        val: &ValStats,
    ) -> Result<Verdict> {
        let config = &self.opts.config;
        let verdict = self.stopper.update(match self.stopper.goal {
            Goal::Minimize => val.loss,
            Goal::Maximize => val.acc,
        });
        self.progress.epoch = epoch + 1;
        self.progress.batch_in_epoch = 0;
        self.progress.best = self.stopper.best;
        self.progress.bad_epochs = self.stopper.bad_epochs;
        // After a resume on the epoch's last batch no training loss was seen: n/a.
        let shown = |v: Option<f64>| v.map_or_else(|| table::NA.to_string(), |v| format!("{v:.6}"));
        let rounded = |w: &[f64]| {
            w.iter()
                .map(|w| (w * 1000.0).round() / 1000.0)
                .collect::<Vec<_>>()
        };
        say(
            &self.bar,
            format!(
                "epoch {}/{}: train loss {}, val loss {:.4}, acc {:.4}, AP {}, weights real {:?} fake {:?}{}",
                epoch + 1, config.train.epochs, shown(train_loss), val.loss, val.acc, shown(val.ap),
                rounded(&val.weights_real),
                rounded(&val.weights_fake),
                if verdict == Verdict::Improved { " (best)" } else { "" }
            ),
        );
        let at = (epoch + 1, self.progress.step);
        self.log.epoch(at, train_loss, self.adam.lr, val)?;
        // `best` exists only where the recipe evaluates it (the official one has none).
        if verdict == Verdict::Improved && config.train.evaluates_best() {
            self.save(run_dir::BEST)?;
        }
        self.save(run_dir::LAST)?;
        Ok(verdict)
    }
}

/// The steps since the last log row: their losses summed on the device (one sync per row,
/// not per step), their images and time.
struct Interval {
    loss: Tensor,
    steps: usize,
    images: usize,
    clock: Instant,
}

impl Interval {
    fn new(device: Device) -> Interval {
        let loss = Tensor::zeros([], (Kind::Float, device));
        Interval {
            loss,
            steps: 0,
            images: 0,
            clock: Instant::now(),
        }
    }
}

/// Loss, accuracy, AP and mean branch weights on the validation set (eval mode, no grad).
fn validation_stats(model: &Detector, loader: &data::Loader, device: Device) -> Result<ValStats> {
    // Log lines only: on a terminal the training bar stays the one on screen.
    let n = loader.samples().len() as u64;
    let progress = crate::progress::Progress::lines_only("validation", n, "images");
    let scores = score::score(model, loader, 0, device, &progress).context("validation")?;
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
