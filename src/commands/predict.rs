//! `npr predict`: score single images or folders. One line per image: the fake
//! probability, the call, and the mean weight of every NPR branch (JSON lines on request).
//!
//! Preprocessing is the checkpoint's test transform, the one policy of `npr test` and `npr
//! serve` too (src/eval/policy.rs), named on stderr and in every JSON line; one image per
//! batch so that sizes may differ. Images are found by the dataset walker and scored by the
//! same scorer as `npr test`. `--maps DIR` also writes what the backbone's input is made
//! of (src/explain/).
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::checkpoint::load_model;
use crate::cli::PredictArgs;
use crate::data::{self, Sample, SkipLog};
use crate::eval::metrics::sigmoid;
use crate::eval::policy::{describe_transform, CHECKPOINT_POLICY};
use crate::eval::score::{
    loader, predict_transform, score_with_maps, BatchScores, ImageScore, MapsHook,
};
use crate::explain::{unique_stems, Explanation, ImageMaps};
use crate::model::detector::parse_device;
use crate::progress::Progress;
use crate::usage;

pub fn run(args: &PredictArgs) -> Result<()> {
    let device = parse_device(&args.device.device)?;
    let loaded = load_model(&args.checkpoint, device)?;
    let config = &loaded.config;
    // The loader's share depends on the checkpoint's `data.workers`, so the budget comes
    // after loading; libtorch's team is sized before any image is scored.
    let threads = crate::threads::apply(device, config.data.workers)?;
    let transform = predict_transform(config);
    let policy = describe_transform(&transform, CHECKPOINT_POLICY);
    eprintln!("preprocessing: {policy}");
    if let Some(dir) = &args.maps {
        std::fs::create_dir_all(dir)
            .map_err(|e| usage!("--maps {}: cannot create the folder ({e})", dir.display()))?;
        crate::atomic::check_writable(dir)?;
    }
    let (files, unlisted) = data::images_under(&args.paths)?;
    for skip in &unlisted {
        eprintln!("skipped {}: {}", skip.path.display(), skip.detail);
    }
    let samples = unlabelled(&files, &args.paths)?;
    let skips = Arc::new(SkipLog::default());
    let loader = loader(samples.clone(), transform, 1, threads.loader, &skips)?;
    let scales = &config.model.scales;
    let stems = unique_stems(&files);
    let mut write_maps = |batch: &data::Batch, scored: &BatchScores| -> Result<()> {
        let Some(dir) = &args.maps else { return Ok(()) };
        for (i, &sample) in batch.indices.iter().enumerate() {
            let (logit, weights) = &scored.images[i];
            let explained = Explanation {
                logit: *logit,
                score: sigmoid(*logit),
                weights: weights.clone(),
                maps: ImageMaps::from_tensors(&scored.maps, i, scales)?,
            };
            explained
                .write(dir, &stems[sample], &samples[sample].path)
                .with_context(|| {
                    format!("writing the maps of {}", samples[sample].path.display())
                })?;
        }
        Ok(())
    };
    let hook: Option<MapsHook<'_>> = args.maps.is_some().then_some(&mut write_maps as _);
    let progress = Progress::new("scoring", samples.len() as u64, "images");
    let scored = score_with_maps(&loaded.detector, &loader, 0, device, hook, &progress);
    drop(progress);
    for skip in skips.skips() {
        eprintln!("skipped {}: {}", skip.path.display(), skip.detail);
    }
    let scored = scored?;
    print_scores(&scored.images, &samples, scales, &policy, args.json);
    if !skips.is_empty() {
        eprintln!(
            "{} of {} file(s) could not be read",
            skips.len(),
            files.len()
        );
    }
    if !unlisted.is_empty() {
        eprintln!(
            "{} entries could not be listed or are not images (see above)",
            unlisted.len()
        );
    }
    if let Some(dir) = &args.maps {
        eprintln!(
            "maps of {} image(s) in {}",
            scored.images.len(),
            dir.display()
        );
    }
    Ok(())
}

/// The files as samples; labels are unknown here, the scorer carries them through untouched.
fn unlabelled(
    files: &[std::path::PathBuf],
    asked: &[std::path::PathBuf],
) -> Result<Arc<Vec<Sample>>> {
    if files.is_empty() {
        return Err(usage!(
            "no image found in {asked:?} (extensions: {})",
            data::IMAGE_EXTENSIONS.join(", ")
        ));
    }
    let sample = |path: &std::path::PathBuf| Sample {
        path: path.clone(),
        label: data::REAL,
        generator: String::new(),
        class: String::new(),
    };
    Ok(Arc::new(files.iter().map(sample).collect()))
}

/// One line per image: a table (score, call, branch weights, path) or JSON lines.
fn print_scores(
    images: &[ImageScore],
    samples: &[Sample],
    scales: &[f64],
    policy: &str,
    json: bool,
) {
    if !json {
        let heads: String = scales
            .iter()
            .map(|s| format!("{:>7}", format!("w@{s}")))
            .collect();
        println!("{:<8} {:<5} {heads}  path", "score", "call");
    }
    for image in images {
        let path = &samples[image.sample].path;
        let weights = image.branch_weights();
        let call = crate::eval::score::call(image.logit);
        if json {
            let line = serde_json::json!({
                "path": path.display().to_string(), "logit": image.logit, "score": image.score,
                "pred": call, "scales": scales, "weights": weights, "preprocessing": policy,
            });
            println!("{line}");
        } else {
            let ws: String = weights.iter().map(|w| format!("{w:>7.3}")).collect();
            println!("{:<8.4} {call:<5} {ws}  {}", image.score, path.display());
        }
    }
}
