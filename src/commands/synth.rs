//! `npr synth`: the synthetic benchmark (DATASET_DETAILS.md).
use anyhow::Result;

use crate::cli::{SynthArgs, SynthPreset};
use crate::synth::photos::{generate_from_photos, PhotoOptions};
use crate::synth::{generate, Manifest, SynthError, SynthOptions, MULTISCALE_SEEN};

pub fn run(args: &SynthArgs) -> Result<()> {
    if args.reals.is_some() {
        return run_photos(args);
    }
    let photo_only = [
        ("--upsamplers", args.upsamplers.is_some()),
        ("--train-per-photo", args.train_per_photo.is_some()),
        ("--val-per-photo", args.val_per_photo.is_some()),
        ("--test-per-photo", args.test_per_photo.is_some()),
        ("--families", !args.families.is_empty()),
    ];
    if let Some((flag, _)) = photo_only.iter().find(|(_, given)| *given) {
        return Err(crate::usage!(
            "{flag} applies to a photo benchmark: add --reals DIR"
        ));
    }
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
    let manifest = as_usage(generate(&opts))?;
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

/// A bad option or an occupied folder is the user's to fix: exit 2.
fn as_usage(result: Result<Manifest>) -> Result<Manifest> {
    result.map_err(|e| {
        if e.is::<SynthError>() {
            crate::usage!("{e:#}")
        } else {
            e
        }
    })
}

/// `npr synth --reals DIR`.
fn run_photos(args: &SynthArgs) -> Result<()> {
    let procedural_only = [
        ("--preset", args.preset != SynthPreset::Default),
        ("--train-per-class", args.train_per_class.is_some()),
        ("--val-per-class", args.val_per_class.is_some()),
        ("--test-per-family", args.test_per_family.is_some()),
        ("--classes", args.classes.is_some()),
        ("--detail-weight", args.detail_weight.is_some()),
        ("--noise-sigma", args.noise_sigma.is_some()),
        ("--jpeg-quality", args.jpeg_quality.is_some()),
    ];
    if let Some((flag, _)) = procedural_only.iter().find(|(_, given)| *given) {
        return Err(crate::usage!(
            "{flag} applies to the procedural benchmark, not to --reals (see npr synth --help)"
        ));
    }
    let d = PhotoOptions::default();
    let opts = PhotoOptions {
        reals: args.reals.clone().expect("--reals"),
        upsamplers: args.upsamplers.clone().unwrap_or(d.upsamplers),
        out: args.out.clone(),
        seed: args.seed,
        size: args.size.unwrap_or(d.size),
        train_per_photo: args.train_per_photo.unwrap_or(d.train_per_photo),
        val_per_photo: args.val_per_photo.unwrap_or(d.val_per_photo),
        test_per_photo: args.test_per_photo.unwrap_or(d.test_per_photo),
        seen: if args.seen.is_empty() {
            d.seen
        } else {
            args.seen.clone()
        },
        families: args.families.clone(),
        threads: args.threads.unwrap_or(d.threads),
        overwrite: args.force,
    };
    let started = std::time::Instant::now();
    let manifest = as_usage(generate_from_photos(&opts))?;
    let images: usize = manifest.folders.iter().map(|f| f.count).sum();
    let photos = manifest.photos.as_ref().expect("a photo benchmark");
    let per_split =
        |s: crate::synth::Split| photos.photos.iter().filter(|p| p.split == Some(s)).count();
    println!(
        "wrote {images} images ({} families) from {} photographs (train {}, val {}, test {}; {} skipped) to {} in {:.1}s; manifest {}, sources {}",
        manifest.families.len(),
        photos.photos.len(),
        per_split(crate::synth::Split::Train),
        per_split(crate::synth::Split::Val),
        per_split(crate::synth::Split::Test),
        photos.photos.iter().filter(|p| p.skipped.is_some()).count(),
        args.out.display(),
        started.elapsed().as_secs_f64(),
        args.out.join("synth.json").display(),
        args.out.join(&photos.sources).display()
    );
    Ok(())
}
