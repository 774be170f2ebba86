//! `npr ablate`: the ablation matrix as ordinary runs, one child `npr` process per cell so
//! that a failing cell never takes the sweep down. Finished cells are skipped and
//! interrupted ones resumed, so the same command continues a sweep; `--shard i/n` splits it
//! across a cluster array job and `--devices` runs one cell at a time on each device. A cell
//! whose run folder another process holds (an overlapping shard, a relaunched sweep) is
//! reported as running elsewhere and left alone; SIGINT/SIGTERM is passed on to the running
//! cell, which saves, and no new cell starts.
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use anyhow::{bail, Context, Result};

use super::{parse_shard, shard, Cell, Study};
use crate::cli::AblateArgs;
use crate::commands::Outcome;
use crate::config::{Config, Suites};
use crate::eval::completion;
use crate::run_lock::RunLock;
use crate::train::{run_status, RunStatus};

/// Status of a cell whose run folder another process holds (not a failure).
const ELSEWHERE: &str = "running elsewhere";
/// Status of a cell stopped by SIGINT/SIGTERM (its state is saved).
const INTERRUPTED: &str = "interrupted (the same command resumes it)";
/// Status of a cell a stop signal kept from starting.
const NOT_STARTED: &str = "not started (stopped by a signal)";

/// How one cell ended.
#[derive(Debug, serde::Serialize)]
struct CellResult {
    cell: String,
    variant: String,
    seed: u64,
    device: String,
    run: String,
    status: String,
}

/// The sweep as the flags describe it, every cell's config checked before anything runs.
struct Sweep {
    study: Study,
    /// The suites' data, then `--set`: what every cell's config starts from.
    overrides: Vec<String>,
    /// Per suite, the generator folders it must hold (for the dry run).
    expected: Vec<(String, Vec<String>)>,
    base: Config,
    todo: Vec<Cell>,
    out: PathBuf,
}

impl Sweep {
    fn from_args(args: &AblateArgs) -> Result<Sweep> {
        let mut study = Study::load(&args.config)?;
        if let Some(base) = &args.base {
            study.base = base.clone();
        }
        // A suites file's data come first, so that `--set` can still refine them.
        let (mut overrides, mut expected) = (Vec::new(), Vec::new());
        if let (Some(file), Some(data)) = (&args.suites, &args.data) {
            let suites = Suites::load(file)?;
            overrides = suites.overrides(data);
            let sets = suites.sets.iter();
            expected = sets
                .map(|s| (s.name.clone(), s.generators.clone()))
                .collect();
        }
        overrides.extend(args.overrides.iter().cloned());
        let base = Config::load(&study.base, &overrides)?;
        let mut todo = study.cells(&args.variants, &args.seeds)?;
        if let Some(spec) = &args.shard {
            let (i, n) = parse_shard(spec)?;
            todo = shard(todo, i, n);
        }
        let default_out = || PathBuf::from("runs").join(format!("ablation_{}", base.name));
        let out = args.out.clone().unwrap_or_else(default_out);
        // An --out that cannot be written is the user's to fix (exit 2), before any cell.
        crate::atomic::check_writable(&out.join("logs"))
            .with_context(|| format!("--out {}", out.display()))?;
        Ok(Sweep {
            study,
            overrides,
            expected,
            base,
            todo,
            out,
        })
    }
}

pub fn run(args: &AblateArgs) -> Result<Outcome> {
    let sweep = Sweep::from_args(args)?;
    // Every cell's config must be valid before anything runs.
    let mut configs = Vec::new();
    for cell in &sweep.todo {
        let (config, _) = cell_config(&sweep.overrides, &sweep.study, &sweep.base, cell)?;
        configs.push((cell.to_string(), config));
    }
    if args.dry_run {
        let device = args.devices.first().map_or("auto", String::as_str);
        return super::dry_run::run(&sweep.base, &configs, &sweep.expected, &sweep.out, device);
    }
    let devices = match args.devices.is_empty() {
        true => vec!["auto".to_string()],
        false => args.devices.clone(),
    };
    for d in &devices {
        crate::model::detector::parse_device(d)?;
    }
    eprintln!(
        "ablation: {} cell(s) on {} device(s) into {}",
        sweep.todo.len(),
        devices.len(),
        sweep.out.display()
    );
    crate::interrupt::install()?;
    let results = run_cells(args, &sweep, &devices);
    summarize(args, &sweep.out, results)
}

/// One worker per device takes cells off a shared queue until it is empty or a stop
/// signal comes; cells a signal kept from starting are listed too, so the summary covers
/// the whole shard.
fn run_cells(args: &AblateArgs, sweep: &Sweep, devices: &[String]) -> Vec<CellResult> {
    let queue = Mutex::new(sweep.todo.iter().cloned().collect::<VecDeque<Cell>>());
    let results = Mutex::new(Vec::new());
    let result = |cell: &Cell, device: &str, status: String| CellResult {
        cell: cell.to_string(),
        variant: cell.variant.name.clone(),
        seed: cell.seed,
        device: device.to_string(),
        run: sweep.out.join(cell.to_string()).display().to_string(),
        status,
    };
    std::thread::scope(|scope| {
        for device in devices {
            let (queue, results, result) = (&queue, &results, &result);
            scope.spawn(move || loop {
                if crate::interrupt::requested().is_some() {
                    break; // stopping: no new cell
                }
                let Some(cell) = queue.lock().expect("queue").pop_front() else {
                    break;
                };
                let status = run_cell(args, sweep, &cell, device).unwrap_or_else(|e| {
                    match crate::interrupt::requested() {
                        Some(_) => INTERRUPTED.to_string(),
                        None => format!("failed: {e:#}"),
                    }
                });
                eprintln!("ablation: {cell} on {device}: {status}");
                let row = result(&cell, device, status);
                results.lock().expect("results").push(row);
            });
        }
    });
    let mut results = results.into_inner().expect("results");
    for cell in queue.into_inner().expect("queue") {
        results.push(result(&cell, "", NOT_STARTED.into()));
    }
    results.sort_by(|a, b| a.cell.cmp(&b.cell));
    results
}

/// Writes the shard's summary (`ablation.json`, `ablation_shard<i>of<n>.json`), says how
/// the cells ended, and turns that into the outcome: interrupted, failed, or done.
fn summarize(args: &AblateArgs, out: &Path, results: Vec<CellResult>) -> Result<Outcome> {
    let summary = out.join(match &args.shard {
        Some(s) => format!("ablation_shard{}.json", s.replace('/', "of")),
        None => "ablation.json".into(),
    });
    crate::atomic::write(&summary, serde_json::to_string_pretty(&results)?.as_bytes())?;
    let failed: Vec<&str> = results
        .iter()
        .filter(|r| r.status.starts_with("failed"))
        .map(|r| r.cell.as_str())
        .collect();
    let elsewhere = results
        .iter()
        .filter(|r| r.status.starts_with(ELSEWHERE))
        .count();
    println!(
        "ablation: {} cell(s), {} failed, {elsewhere} running elsewhere; summary {}",
        results.len(),
        failed.len(),
        summary.display()
    );
    if crate::interrupt::requested().is_some() {
        eprintln!("ablation: stopped by a signal; the same command continues the sweep");
        return Ok(Outcome::Interrupted);
    }
    if !failed.is_empty() {
        bail!(
            "cells failed: {} (logs in {})",
            failed.join(", "),
            out.join("logs").display()
        );
    }
    Ok(Outcome::Done)
}

/// A cell's config and the `--set` list that makes it from the study's base config.
fn cell_config(
    overrides: &[String],
    study: &Study,
    base: &Config,
    cell: &Cell,
) -> Result<(Config, Vec<String>)> {
    let mut sets = overrides.to_vec();
    sets.extend(cell.overrides(base));
    let config = Config::load(&study.base, &sets).with_context(|| format!("cell {cell}"))?;
    Ok((config, sets))
}

/// Trains (or resumes, or skips) one cell, then tests it; returns a short status. A cell
/// whose run folder another process holds is "running elsewhere", not failed.
fn run_cell(args: &AblateArgs, sweep: &Sweep, cell: &Cell, device: &str) -> Result<String> {
    let (study, out) = (&sweep.study, &sweep.out);
    let (config, sets) = cell_config(&sweep.overrides, study, &sweep.base, cell)?;
    let dir = out.join(cell.to_string());
    let log = out.join("logs").join(format!("{cell}.log"));
    let elsewhere = |holder: String| format!("{ELSEWHERE} ({holder})");
    if let Some(holder) = RunLock::holder(&dir)? {
        return Ok(elsewhere(holder));
    }
    // A child that failed because another sweep took the cell after the check above
    // leaves it to that sweep: `Some(status)`.
    let run = |cmd: &[String]| -> Result<Option<String>> {
        match child(cmd, &log) {
            Ok(()) => Ok(None),
            Err(e) => RunLock::holder(&dir)?.map(|h| Some(elsewhere(h))).ok_or(e),
        }
    };
    let state = run_status(&dir, &config)?;
    let mut status = "done before".to_string();
    if state != RunStatus::Finished {
        let (base, run_dir) = (study.base.display().to_string(), dir.display().to_string());
        // `--resume auto` resumes a checkpoint, replaces a failed start, starts an absent cell.
        let mut cmd = [
            "train", "--config", &base, "--out", &run_dir, "--device", device, "--resume", "auto",
        ]
        .map(String::from)
        .to_vec();
        for s in &sets {
            cmd.extend(["--set".into(), s.clone()]);
        }
        if let Some(held) = run(&cmd)? {
            return Ok(held);
        }
        status = if state == RunStatus::Partial {
            "resumed".into()
        } else {
            "trained".into()
        };
    }
    if !args.no_test && !config.test.sets.is_empty() {
        // Tested means: a complete test folder of the weights the run holds now. A cell
        // that trained on (`--set train.epochs=N` on a finished sweep) is tested again.
        let checkpoint = crate::checkpoint::resolve(&dir)?;
        if let Some(why) = completion::stale_reason(&dir.join("test"), &checkpoint)? {
            if dir.join("test").exists() {
                eprintln!("{cell}: testing again: {why}");
            }
            // The run folder: `npr test` evaluates the weights its recipe names (last or
            // best), holding the run's lock, so two sweeps never test one cell at once.
            let run_dir = dir.display().to_string();
            let cmd = ["test", "--checkpoint", &run_dir, "--device", device].map(String::from);
            if let Some(held) = run(&cmd)? {
                return Ok(held);
            }
            status.push_str(", tested");
        }
    }
    Ok(status)
}

/// Runs this binary with `args`, appending its output to `log`. A stop signal received by
/// the sweep is passed on to the child, which saves its state and exits.
fn child(args: &[String], log: &Path) -> Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let exe = std::env::current_exe().context("locating the npr binary")?;
    let mut process = Command::new(exe)
        .args(args)
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()
        .with_context(|| format!("starting npr {}", args.join(" ")))?;
    let mut forwarded = false;
    let status = loop {
        if let Some(status) = process.try_wait()? {
            break status;
        }
        if let (Some(sig), false) = (crate::interrupt::requested(), forwarded) {
            // SAFETY: signalling a child process this thread spawned and has not reaped.
            unsafe { libc::kill(process.id() as libc::pid_t, sig) };
            forwarded = true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    if !status.success() {
        bail!(
            "`npr {}` exited with {status}; see {}",
            args[0],
            log.display()
        );
    }
    Ok(())
}
