//! `npr ablate --dry-run`: before days of GPU time, check that every data folder the sweep
//! needs is there and holds labelled images, print the plan with the images per set, and
//! estimate the time from a short benchmark of each model. Every layout problem is listed
//! at once, each naming what is missing and where it is expected; then the exit code is 2.
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use crate::bench::{time_model, BenchSize};
use crate::commands::Outcome;
use crate::config::{Config, TestSet};
use crate::data::{self, Sample, SkipLog};
use crate::train::{run_status, RunStatus};

/// Steps timed per model for the estimate (after 3 warm-up steps).
const BENCH_STEPS: usize = 3;

/// "N images (R real, F fake)".
fn counts(samples: &[Sample]) -> String {
    let fakes = samples.iter().filter(|s| s.label == 1).count();
    let reals = samples.len() - fakes;
    format!("{} images ({reals} real, {fakes} fake)", samples.len())
}

/// Checks the layout; prints the plan and the estimate. `expected`: per test set, the
/// generator folders it must hold.
pub fn run(
    base: &Config,
    cells: &[(String, Config)],
    expected: &[(String, Vec<String>)],
    out: &Path,
    device: &str,
) -> Result<Outcome> {
    let mut problems: Vec<String> = Vec::new();
    println!("data:");
    let (train_n, val_n) = training_data(base, &mut problems);
    let mut test_n = 0usize;
    for set in &base.test.sets {
        let must: &[String] = expected
            .iter()
            .find(|(name, _)| name == &set.name)
            .map_or(&[], |(_, g)| g);
        test_n += test_set(base, set, must, &mut problems);
    }
    if base.test.sets.is_empty() {
        problems.push("no test sets: the base config's test.sets is empty (give --suites, or add sets to the config)".into());
    }
    print_plan(cells, out);
    if !problems.is_empty() {
        eprintln!("data layout: {} problem(s):", problems.len());
        for p in &problems {
            eprintln!("  - {p}");
        }
        return Err(crate::usage!(
            "the data layout is not what the sweep needs ({} problem(s) above); nothing was run",
            problems.len()
        ));
    }
    estimate(cells, (train_n, val_n, test_n), device)?;
    Ok(Outcome::Done)
}

/// The training and validation images (counts printed), or the problem.
fn training_data(base: &Config, problems: &mut Vec<String>) -> (usize, usize) {
    let root = base.data.dataroot.display();
    let splits = base.data.splits(base.train.seed, &[]);
    match splits.discover(&SkipLog::default()) {
        Ok((train, val, _)) => {
            println!("  training    {root}  {}", counts(&train));
            println!("  validation  {}", counts(&val));
            (train.len(), val.len())
        }
        Err(e) => {
            problems.push(format!("training data at {root}: {e}"));
            (0, 0)
        }
    }
}

/// One test set's images per generator (printed, with seen/unseen), or its problems:
/// a missing folder, or a generator of `must` without images. Returns the image count.
fn test_set(base: &Config, set: &TestSet, must: &[String], problems: &mut Vec<String>) -> usize {
    let dir = set.dataroot.display();
    if !set.dataroot.is_dir() {
        let holding = match must.is_empty() {
            true => "one folder per generator".to_string(),
            false => must.join(", "),
        };
        problems.push(format!(
            "test suite {:?}: {dir} is not a folder (expected there: {holding}, each with 0_real/ and 1_fake/)",
            set.name
        ));
        return 0;
    }
    let found = match data::discover_test_set(&set.dataroot, None) {
        Ok((found, _)) => found,
        Err(e) => {
            problems.push(format!("test suite {:?} at {dir}: {e}", set.name));
            return 0;
        }
    };
    let mut by_gen: BTreeMap<&str, Vec<Sample>> = BTreeMap::new();
    for s in &found.samples {
        by_gen.entry(&s.generator).or_default().push(s.clone());
    }
    for g in must.iter().filter(|g| !by_gen.contains_key(g.as_str())) {
        problems.push(format!(
            "test suite {:?}: no images for generator {g:?}: expected {dir}/{g}/0_real and {dir}/{g}/1_fake (or {dir}/{g}/<class>/…)",
            set.name
        ));
    }
    let resize = match set.resize {
        true => base.data.load_size.to_string(),
        false => "no".into(),
    };
    let policy = format!("resize={resize}, crop={:?}", set.crop).to_lowercase();
    let n = counts(&found.samples);
    println!("  test {:?}  {dir}  {n}  [{policy}]", set.name);
    for (g, samples) in &by_gen {
        let seen = match set.seen_generators.is_empty() {
            true => set.seen,
            false => set.seen_generators.iter().any(|s| s == g),
        };
        let tag = if seen { "seen" } else { "unseen" };
        println!("      {g:<24} {}  {tag}", counts(samples));
    }
    found.samples.len()
}

/// Every cell with its model, epochs and whether it runs, resumes or is skipped.
fn print_plan(cells: &[(String, Config)], out: &Path) {
    println!("plan: {} cell(s) into {}", cells.len(), out.display());
    for (name, c) in cells {
        let state = match run_status(&out.join(name), c) {
            Ok(RunStatus::Finished) => "finished (skipped)",
            Ok(RunStatus::Partial) => "partial (resumes)",
            _ => "to run",
        };
        println!(
            "  {name:<40} fusion={} scales={:?} epochs={}  {state}",
            c.model.fusion, c.model.scales, c.train.epochs
        );
    }
}

/// The estimate: each distinct model timed once at the training batch and crop, for
/// (training, validation, test) images.
fn estimate(cells: &[(String, Config)], images: (usize, usize, usize), device: &str) -> Result<()> {
    let (train_n, val_n, test_n) = images;
    let device = crate::model::detector::parse_device(device)?;
    let mut timed: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let mut total = 0.0;
    for (_, c) in cells {
        let key = serde_json::to_string(&c.model)?;
        if !timed.contains_key(&key) {
            let size = BenchSize {
                batch: c.train.batch_size,
                crop: c.data.crop_size,
                steps: BENCH_STEPS,
                amp: c.train.amp,
            };
            let r = time_model(&c.model, device, &size)?;
            timed.insert(key.clone(), (r.train_ips, r.infer_ips));
        }
        let (train_ips, infer_ips) = timed[&key];
        let epochs = c.train.epochs as f64;
        total += epochs * (train_n as f64 / train_ips + val_n as f64 / infer_ips)
            + test_n as f64 / infer_ips;
    }
    println!(
        "estimated time: {:.1} h on {device:?} for every cell ({} model(s) timed for {BENCH_STEPS} steps on random tensors at the training crop; decoding, early stopping and full-size test images are not counted)",
        total / 3600.0,
        timed.len()
    );
    Ok(())
}
