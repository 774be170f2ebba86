//! `npr synth`: the synthetic benchmark (DATASET_DETAILS.md).
use anyhow::Result;

use crate::cli::{SynthArgs, SynthPreset};
use crate::synth::{generate, SynthError, SynthOptions, MULTISCALE_SEEN};

pub fn run(args: &SynthArgs) -> Result<()> {
    let d = SynthOptions::default();
    let seen = if !args.seen.is_empty() {
        args.seen.clone()
    } else if args.preset == SynthPreset::Multiscale {
        MULTISCALE_SEEN.iter().map(|s| s.to_string()).collect()
    } else {
        d.seen.clone()
    };
    let opts = SynthOptions {
        out: args.out.clone(),
        seed: args.seed,
        size: args.size.unwrap_or(d.size),
        train_per_class: args.train_per_class.unwrap_or(d.train_per_class),
        val_per_class: args.val_per_class.unwrap_or(d.val_per_class),
        test_per_family: args.test_per_family.unwrap_or(d.test_per_family),
        classes: args.classes.unwrap_or(d.classes),
        seen,
        threads: args.threads.unwrap_or(d.threads),
        detail_weight: args.detail_weight.unwrap_or(d.detail_weight),
        noise_sigma: args.noise_sigma.unwrap_or(d.noise_sigma),
        jpeg_quality: args.jpeg_quality.or(d.jpeg_quality),
        overwrite: args.force,
    };
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
