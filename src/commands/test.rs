//! `npr test`: flags → a [`TestRequest`] for [`crate::eval::suite`], then the tables.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::checkpoint::load_model;
use crate::cli::TestArgs;
use crate::config::{Config, CropPolicy, TestSet};
use crate::eval::completion::{self, Completion};
use crate::eval::metrics::fmt_opt;
use crate::eval::perturb::{parse_sweep, Perturbation};
use crate::eval::suite::{self, SetTable, TestRequest};
use crate::model::detector::parse_device;
use crate::run_lock::RunLock;
use crate::usage;

pub fn run(args: &TestArgs) -> Result<()> {
    // Flags first, so that a typo fails before the model loads.
    let device = parse_device(&args.device.device)?;
    let levels: Vec<Perturbation> = match &args.sweep {
        Some(spec) => parse_sweep(spec)?,
        None => vec![Perturbation::from_flags(
            args.jpeg_quality,
            args.blur_sigma,
        )?],
    };
    // Decode threads: --workers, or one per usable core (capped at the cores on CPU).
    let threads = crate::threads::apply(
        device,
        args.workers.unwrap_or_else(crate::threads::usable_cores),
    )?;
    let checkpoint = crate::checkpoint::resolve(&args.checkpoint)?;
    // One writer per run folder: a test of a run's weights waits for no training or other
    // test of that run (README "Running on shared machines").
    let run_dir = checkpoint
        .parent()
        .filter(|d| d.join(crate::train::run_dir::CONFIG).is_file());
    let _lock = run_dir.map(RunLock::acquire).transpose()?;
    let loaded = load_model(&checkpoint, device)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_out(&checkpoint, args.sweep.as_deref(), &levels));
    // Everything is written into a staging folder and swapped into place at the end, so
    // `out` holds the previous complete results or the new ones, never a mix.
    completion::remove_stale_staging(&out)?;
    let staging = completion::staging_dir(&out)?;
    crate::atomic::check_writable(&staging).with_context(|| format!("--out {}", out.display()))?;
    let set_resize = if args.no_resize {
        Some(false)
    } else {
        args.resize.map(|_| true)
    };
    let sets = sets_to_test(args, &loaded.config)?;
    let mut keep: Vec<&Path> = vec![checkpoint.as_path()];
    keep.extend(run_dir);
    keep.extend(sets.iter().map(|s| s.dataroot.as_path()));
    completion::check_replaceable(&out, &keep)?;
    let synthetic = suite::all_synthetic(&sets);
    let photos = suite::all_photos(&sets);
    let done = Completion {
        checkpoint: checkpoint.clone(),
        checkpoint_sha256: completion::sha256_file(&checkpoint)?,
        levels: levels.iter().map(|l| l.to_string()).collect(),
        synthetic,
        photos,
        npr: env!("CARGO_PKG_VERSION").into(),
    };
    let request = TestRequest {
        sets,
        set_resize,
        resize_to: args.resize,
        set_crop: args.crop,
        split: args.split.clone(),
        levels,
        batch_size: args.batch_size,
        workers: threads.loader,
        max_features: args.max_features,
        out: staging.clone(),
    };
    let tables = match suite::run(&loaded, &checkpoint, &request, device)
        .and_then(|t| completion::publish(&staging, &out, &done).map(|warning| (t, warning)))
    {
        Ok((t, warning)) => {
            if let Some(w) = warning {
                eprintln!("warning: {w}");
            }
            t
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging); // best effort: the error matters more
            return Err(e.context(format!(
                "nothing was written to {} (results were staged in {}, now removed; any previous results there are untouched)",
                out.display(),
                staging.display()
            )));
        }
    };
    for table in tables {
        print_table(&table);
    }
    println!("outputs in {}", out.display());
    Ok(())
}

/// `RUN/test` for the clean test; anything else never writes over it: a sweep writes
/// `RUN/test_sweep_<kind>`, a single perturbation `RUN/test_<level>` (`test_jpeg_75`).
fn default_out(checkpoint: &Path, sweep: Option<&str>, levels: &[Perturbation]) -> PathBuf {
    let dir = checkpoint.parent().unwrap_or(Path::new("."));
    if let Some((kind, _)) = sweep.and_then(|s| s.split_once('=')) {
        return dir.join(format!("test_sweep_{}", kind.trim()));
    }
    match levels {
        [only] if *only != Perturbation::default() => dir.join(format!(
            "test_{}",
            only.to_string().replace(['=', ';', '.'], "_")
        )),
        _ => dir.join("test"),
    }
}

/// The sets to test: `--dataroot` (one set, policy from the flags) or the checkpoint
/// config's `test.sets`; `--sets` filters by name.
fn sets_to_test(args: &TestArgs, config: &Config) -> Result<Vec<TestSet>> {
    let mut sets: Vec<TestSet> = match &args.dataroot {
        Some(root) => {
            if !root.is_dir() {
                return Err(usage!("--dataroot {} is not a folder", root.display()));
            }
            let name = root.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_else(|| "test".into());
            // The checkpoint's test transform, as `npr predict` and `npr serve` (one policy).
            let (resize, crop): (bool, CropPolicy) = crate::eval::policy::default_protocol(config);
            vec![TestSet { name, dataroot: root.clone(), resize, crop, seen: false, seen_generators: vec![] }]
        }
        None if !config.test.sets.is_empty() => config.test.sets.clone(),
        None => {
            return Err(usage!(
                "no test set: pass --dataroot DIR (one folder per generator) or list test.sets in the config"
            ))
        }
    };
    if !args.sets.is_empty() {
        let known: Vec<String> = sets.iter().map(|s| s.name.clone()).collect();
        sets.retain(|s| args.sets.contains(&s.name));
        if sets.is_empty() {
            return Err(usage!(
                "--sets {:?} matches none of the sets {:?}",
                args.sets,
                known
            ));
        }
    }
    Ok(sets)
}

fn print_table(table: &SetTable) {
    let SetTable {
        set,
        level,
        rows,
        mean,
        gap,
        images_per_s,
    } = table;
    println!("\n{set} [{level}] ({images_per_s:.0} images/s)");
    println!(
        "{:<24} {:>7} {:>6} {:>6} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}",
        "generator", "seen", "real", "fake", "acc", "ap", "auc", "r_acc", "f_acc", "eer"
    );
    for r in rows.iter().chain(std::iter::once(mean)) {
        let m = &r.metrics;
        let seen = match r.seen {
            Some(true) => "seen",
            Some(false) => "unseen",
            None => "",
        };
        let f = |v: Option<f64>| {
            v.map(|x| format!("{x:.4}"))
                .unwrap_or_else(|| fmt_opt(None))
        };
        println!(
            "{:<24} {:>7} {:>6} {:>6} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}",
            r.generator,
            seen,
            m.n_real,
            m.n_fake,
            f(m.acc),
            f(m.ap),
            f(m.auc),
            f(m.r_acc),
            f(m.f_acc),
            f(m.eer)
        );
    }
    match *gap {
        Some(g) => println!("generalization gap (acc seen − acc unseen): {g:+.4}"),
        None => println!("generalization gap: n/a (needs seen and unseen generators)"),
    }
}
