//! `npr synth`: the synthetic benchmark (DATASET_DETAILS.md).
use anyhow::Result;

use crate::cli::{SynthArgs, SynthPreset};
use crate::synth::{generate, SynthError, SynthOptions, MULTISCALE_SEEN};

pub fn run(args: &SynthArgs) -> Result<()> {
    let mut opts = SynthOptions {
        out: args.out.clone(),
        seed: args.seed,
        overwrite: args.force,
        ..SynthOptions::default()
    };
    if let Some(v) = args.size {
        opts.size = v;
    }
    if let Some(v) = args.train_per_class {
        opts.train_per_class = v;
    }
    if let Some(v) = args.val_per_class {
        opts.val_per_class = v;
    }
    if let Some(v) = args.test_per_family {
        opts.test_per_family = v;
    }
    if let Some(v) = args.classes {
        opts.classes = v;
    }
    if let Some(v) = args.threads {
        opts.threads = v;
    }
    if args.preset == SynthPreset::Multiscale {
        opts.seen = MULTISCALE_SEEN.iter().map(|s| s.to_string()).collect();
    }
    if !args.seen.is_empty() {
        opts.seen = args.seen.clone();
    }
    if let Some(v) = args.detail_weight {
        opts.detail_weight = v;
    }
    if let Some(v) = args.noise_sigma {
        opts.noise_sigma = v;
    }
    if args.jpeg_quality.is_some() {
        opts.jpeg_quality = args.jpeg_quality;
    }
    let started = std::time::Instant::now();
    // A bad option or an occupied folder is the user's to fix: exit 2.
    let manifest = generate(&opts).map_err(|e| {
        if e.is::<SynthError>() {
            crate::usage!("{e:#}")
        } else {
            e
        }
    })?;
    let images: usize = manifest.folders.iter().map(|f| f.count).sum();
    println!(
        "wrote {images} images ({} families, {} classes) to {} in {:.1}s; manifest {}",
        manifest.families.len(),
        manifest.classes.len(),
        args.out.display(),
        started.elapsed().as_secs_f64(),
        args.out.join("synth.json").display()
    );
    Ok(())
}
