//! `npr predict`: score single images or folders. One line per image: the fake
//! probability, the call, and the mean weight of every NPR branch (JSON lines on request).
//!
//! Preprocessing follows the checkpoint's first test set (ForenSynths protocol by default:
//! resize to the load size, no crop), one image at a time so that sizes may differ.
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::checkpoint::load_model;
use crate::cli::PredictArgs;
use crate::config::CropPolicy;
use crate::data;
use crate::eval::metrics::sigmoid;
use crate::model::detector::parse_device;
use crate::model::input::to_input;
use crate::usage;

fn is_image(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        data::IMAGE_EXTENSIONS
            .iter()
            .any(|x| x.eq_ignore_ascii_case(e))
    })
}

/// Files given directly, plus images found recursively (sorted) in folders. Symlinked
/// folders are not followed (no loops); symlinked files are. A folder or entry that cannot
/// be read is reported on stderr and counted in the returned number, never passed over.
fn collect(paths: &[PathBuf]) -> Result<(Vec<PathBuf>, usize)> {
    let mut out = Vec::new();
    let mut unreadable = 0;
    let mut report = |what: &Path, e: &std::io::Error| {
        unreadable += 1;
        eprintln!("skipped {}: cannot be listed ({e})", what.display());
    };
    for p in paths {
        if p.is_dir() {
            let mut stack = vec![p.clone()];
            let mut found = Vec::new();
            while let Some(dir) = stack.pop() {
                let entries = match std::fs::read_dir(&dir) {
                    Ok(entries) => entries,
                    Err(e) => {
                        report(&dir, &e);
                        continue;
                    }
                };
                for e in entries {
                    let e = match e {
                        Ok(e) => e,
                        Err(err) => {
                            report(&dir, &err);
                            continue;
                        }
                    };
                    let path = e.path();
                    match e.file_type() {
                        Ok(t) if t.is_dir() => stack.push(path),
                        Ok(_) if is_image(&path) => found.push(path),
                        Ok(_) => {}
                        Err(err) => report(&path, &err),
                    }
                }
            }
            found.sort();
            out.extend(found);
        } else if p.exists() {
            out.push(p.clone());
        } else {
            return Err(usage!("{} does not exist", p.display()));
        }
    }
    Ok((out, unreadable))
}

pub fn run(args: &PredictArgs) -> Result<()> {
    let device = parse_device(&args.device.device)?;
    let loaded = load_model(&args.checkpoint, device)?;
    let config = &loaded.config;
    let (resize, crop) = match config.test.sets.first() {
        Some(set) => (set.resize.then_some(config.data.load_size), set.crop),
        None => (Some(config.data.load_size), CropPolicy::None),
    };
    let transform = data::TestTransform {
        resize,
        crop: crop.to_crop(config.data.crop_size),
        jpeg_quality: None,
        blur_sigma: None,
        pre_resize: None,
    };
    let (files, unlisted) = collect(&args.paths)?;
    if files.is_empty() {
        return Err(usage!(
            "no image found in {:?} (extensions: {})",
            args.paths,
            data::IMAGE_EXTENSIONS.join(", ")
        ));
    }
    let scales = &config.model.scales;
    if !args.json {
        let heads: Vec<String> = scales.iter().map(|s| format!("w@{s}")).collect();
        println!(
            "{:<8} {:<5} {}  path",
            "score",
            "call",
            heads.iter().map(|h| format!("{h:>7}")).collect::<String>()
        );
    }
    let files_total = files.len();
    let mut failed = 0;
    for path in files {
        let img = match data::decode_file(&path, &data::DecodeLimits::default()) {
            Ok(img) => match data::apply_test(img, &transform) {
                Ok(applied) => applied.image,
                Err(rejected) => {
                    failed += 1;
                    eprintln!("skipped {}: {rejected}", path.display());
                    continue;
                }
            },
            Err(rejected) => {
                failed += 1;
                eprintln!("skipped {}: {rejected}", path.display());
                continue;
            }
        };
        let (w, h) = img.dimensions();
        let x = to_input(img.as_raw(), 1, h as usize, w as usize, device);
        let out = tch::no_grad(|| loaded.detector.forward_t(&x, false));
        let logit = out.logit.to_kind(tch::Kind::Double).double_value(&[0]);
        let score = sigmoid(logit);
        let weights = out.branch_weights()?;
        // score > 0.5 ⇔ logit > 0 (the test's rule, also where the score rounds to 1).
        let call = if logit > 0.0 { "fake" } else { "real" };
        if args.json {
            let line = serde_json::json!({
                "path": path.display().to_string(), "logit": logit, "score": score, "pred": call,
                "scales": scales, "weights": weights,
            });
            println!("{line}");
        } else {
            let ws: String = weights.iter().map(|w| format!("{w:>7.3}")).collect();
            println!("{score:<8.4} {call:<5} {ws}  {}", path.display());
        }
    }
    if failed > 0 {
        eprintln!("{failed} of {} file(s) could not be read", files_total);
    }
    if unlisted > 0 {
        eprintln!("{unlisted} folder(s) or entries could not be listed (see above)");
    }
    if failed == files_total {
        anyhow::bail!("no image could be scored");
    }
    Ok(())
}
