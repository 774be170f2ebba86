//! `npr predict`: score single images or folders. One line per image: the fake
//! probability, the call, and the mean weight of every NPR branch (JSON lines on request).
//!
//! Preprocessing follows the checkpoint's first test set (ForenSynths protocol by default:
//! resize to the load size, no crop), one image per batch so that sizes may differ. Images
//! are found by the dataset walker and scored by the same scorer as `npr test`.
use std::sync::Arc;

use anyhow::Result;

use crate::checkpoint::load_model;
use crate::cli::PredictArgs;
use crate::config::CropPolicy;
use crate::data::{self, Sample, SkipLog};
use crate::eval::score::{loader, score};
use crate::model::detector::parse_device;
use crate::usage;

pub fn run(args: &PredictArgs) -> Result<()> {
    let device = parse_device(&args.device.device)?;
    let loaded = load_model(&args.checkpoint, device)?;
    let config = &loaded.config;
    let threads = crate::threads::apply(device, config.data.workers)?;
    let (resize, crop) = match config.test.sets.first() {
        Some(set) => (set.resize.then_some(config.data.load_size), set.crop),
        None => (Some(config.data.load_size), CropPolicy::None),
    };
    let transform = data::TestTransform {
        resize,
        crop: crop.to_crop(config.data.crop_size),
        ..Default::default()
    };
    let (files, unlisted) = data::images_under(&args.paths)?;
    for skip in &unlisted {
        eprintln!("skipped {}: {}", skip.path.display(), skip.detail);
    }
    if files.is_empty() {
        return Err(usage!(
            "no image found in {:?} (extensions: {})",
            args.paths,
            data::IMAGE_EXTENSIONS.join(", ")
        ));
    }
    // Labels are unknown here; the scorer carries them through untouched.
    let samples: Arc<Vec<Sample>> = Arc::new(
        files
            .iter()
            .map(|path| Sample {
                path: path.clone(),
                label: data::REAL,
                generator: String::new(),
                class: String::new(),
            })
            .collect(),
    );
    let skips = Arc::new(SkipLog::default());
    let loader = loader(samples.clone(), transform, 1, threads.loader, &skips)?;
    let scored = score(&loaded.detector, &loader, 0, device);
    for skip in skips.skips() {
        eprintln!("skipped {}: {}", skip.path.display(), skip.detail);
    }
    let scored = scored?;
    let scales = &config.model.scales;
    if !args.json {
        let heads: String = scales
            .iter()
            .map(|s| format!("{:>7}", format!("w@{s}")))
            .collect();
        println!("{:<8} {:<5} {heads}  path", "score", "call");
    }
    for image in &scored.images {
        let path = &samples[image.sample].path;
        let weights = image.branch_weights();
        // score > 0.5 ⇔ logit > 0 (the test's rule, also where the score rounds to 1).
        let call = if image.logit > 0.0 { "fake" } else { "real" };
        if args.json {
            let line = serde_json::json!({
                "path": path.display().to_string(), "logit": image.logit, "score": image.score,
                "pred": call, "scales": scales, "weights": weights,
            });
            println!("{line}");
        } else {
            let ws: String = weights.iter().map(|w| format!("{w:>7.3}")).collect();
            println!("{:<8.4} {call:<5} {ws}  {}", image.score, path.display());
        }
    }
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
    Ok(())
}
