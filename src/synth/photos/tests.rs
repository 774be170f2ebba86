//! The photo benchmark from photographs of the scikit-image wheel (`scripts/get_photos.sh
//! --small`, which `scripts/test.sh` runs): splits by photograph, and each family's trace
//! at its declared NPR scale — the calibration pattern of the procedural families
//! (`synth::tests::each_family_leaves_its_trace_at_its_scale`).
use std::path::{Path, PathBuf};

use super::*;
use image::RgbImage;

use crate::synth::calibration::{mean_abs_npr, to_planes};

/// The photographs the test builds from (CC0 / public domain, in the scikit-image wheel).
const PHOTOS: [&str; 3] = ["chelsea.png", "coffee.png", "rocket.jpg"];

/// `datasets/photos/scikit-image` and `datasets/upsamplers`, or None (with why) when
/// `scripts/get_photos.sh --small` has not run; with `NPR_REQUIRE_UPSAMPLERS` set (CI)
/// their absence fails the test instead.
fn fetched() -> Option<(PathBuf, PathBuf)> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let photos = repo.join("datasets/photos/scikit-image");
    let nets = repo.join(crate::upsample::esrgan::DEFAULT_ROOT);
    let present = PHOTOS.iter().all(|p| photos.join(p).is_file())
        && nets.join("esrgan-slim/x4/model.json").is_file();
    if present {
        return Some((photos, nets));
    }
    let why = "the scikit-image photographs or esrgan-slim are not fetched (scripts/get_photos.sh --small)";
    assert!(
        std::env::var_os("NPR_REQUIRE_UPSAMPLERS").is_none(),
        "{why}"
    );
    eprintln!("skipped: {why}");
    None
}

/// A benchmark of 48-px crops from `photos` (copied into a folder of their own).
fn build(photos: &[&str], dir: &Path, nets: &Path, from: &Path) -> Result<Manifest> {
    let reals = dir.join("reals");
    fs::create_dir_all(&reals)?;
    for p in photos {
        fs::copy(from.join(p), reals.join(p))?;
    }
    generate_from_photos(&PhotoOptions {
        reals,
        upsamplers: nets.to_path_buf(),
        out: dir.join("bench"),
        train_per_photo: 4,
        val_per_photo: 4,
        test_per_photo: 128,
        families: [
            "nearest_x2",
            "tconv_x2",
            "bilinear_x2",
            "nearest_x4",
            "bilinear_x4",
            "bicubic_x4_3",
            "nearest_x8",
            "esrgan_slim_x2",
            "esrgan_slim_x3",
            "esrgan_slim_x4",
        ]
        .map(String::from)
        .into(),
        threads: 2,
        ..PhotoOptions::default()
    })
}

/// Grid periods looked for: every family's factor numerator (×4/3 repeats every 4 pixels).
const PERIODS: [usize; 4] = [2, 3, 4, 8];

/// Phases of a profile: a multiple of every period.
const PHASES: usize = 24;

/// Mean |step| between neighbouring pixels (each channel) by position modulo [`PHASES`],
/// pooled over images: first along the step (horizontal steps by `x`, vertical by `y`),
/// then across it (horizontal steps by `y`, vertical by `x`) — a transposed convolution's
/// checkerboard changes a step's size from row to row, not along the row. An up-sampler
/// of factor `f` repeats its pattern every `f` output pixels; natural content has no phase.
fn step_profile(images: &[RgbImage]) -> [f64; 2 * PHASES] {
    let mut pooled = [0f64; 2 * PHASES];
    for img in images {
        let mut sums = [0f64; 2 * PHASES];
        let mut counts = [0usize; 2 * PHASES];
        let mut add = |i: usize, v: f64| {
            sums[i] += v;
            counts[i] += 1;
        };
        let (w, h) = img.dimensions();
        let px = |x: u32, y: u32| img.get_pixel(x, y).0.map(|v| v as f64);
        let step = |a: [f64; 3], b: [f64; 3]| (0..3).map(|c| (a[c] - b[c]).abs()).sum::<f64>();
        for y in 0..h {
            for x in 0..w {
                if x + 1 < w {
                    let v = step(px(x + 1, y), px(x, y));
                    add(x as usize % PHASES, v);
                    add(PHASES + y as usize % PHASES, v);
                }
                if y + 1 < h {
                    let v = step(px(x, y + 1), px(x, y));
                    add(y as usize % PHASES, v);
                    add(PHASES + x as usize % PHASES, v);
                }
            }
        }
        // Each image counts once, whatever its contrast.
        let profile: Vec<f64> = sums.iter().zip(counts).map(|(s, c)| s / c as f64).collect();
        let mean = profile.iter().sum::<f64>() / profile.len() as f64;
        for (p, v) in pooled.iter_mut().zip(profile) {
            *p += v / mean.max(1e-9) / images.len() as f64;
        }
    }
    pooled
}

/// Coefficient of variation of a profile over its phases: how much the steps depend on
/// where they are (0 for content without a grid).
fn contrast(profile: &[f64]) -> f64 {
    let n = profile.len() as f64;
    let mean = profile.iter().sum::<f64>() / n;
    let var = profile.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
    var.sqrt() / mean.max(1e-9)
}

/// The profile averaged over the phases that a period `p` does not tell apart: its part
/// that repeats every `p` pixels.
fn fold(profile: &[f64; 2 * PHASES], p: usize) -> Vec<f64> {
    (0..2 * PHASES)
        .map(|i| {
            let half = i / PHASES * PHASES;
            let same: Vec<f64> = (half + i % p..half + PHASES)
                .step_by(p)
                .map(|j| profile[j])
                .collect();
            same.iter().sum::<f64>() / same.len() as f64
        })
        .collect()
}

/// Share of the profile's variance that a pattern of period `p` explains (1: the profile
/// repeats every `p` pixels).
fn explained(profile: &[f64; 2 * PHASES], p: usize) -> f64 {
    (contrast(&fold(profile, p)) / contrast(profile)).powi(2)
}

fn pngs(dir: &Path) -> Vec<RgbImage> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| image::open(f).unwrap().to_rgb8())
        .collect()
}

#[test]
fn a_photo_benchmark_splits_by_photograph_and_each_family_leaves_its_trace_at_its_scale() {
    let Some((photos, nets)) = fetched() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let m = build(&PHOTOS, dir.path(), &nets, &photos).unwrap();
    let bench = dir.path().join("bench");

    // Splits by photograph: each photograph in one split, every image listed once.
    let set = m.photos.as_ref().unwrap();
    let mut splits: Vec<Split> = set.photos.iter().map(|p| p.split.unwrap()).collect();
    splits.sort_by_key(|s| s.name());
    assert_eq!(splits, [Split::Test, Split::Train, Split::Val]);
    let rows: Vec<SourceRow> = crate::table::read(&bench.join(SOURCES_FILE)).unwrap();
    check_sources(&rows).unwrap();
    let images: usize = m.folders.iter().map(|f| f.count).sum();
    assert_eq!(rows.len(), images);
    for r in &rows {
        assert!(bench.join(&r.path).is_file(), "{}", r.path);
        let photo = set.photos.iter().find(|p| p.file == r.photo).unwrap();
        assert_eq!(photo.split.unwrap().name(), r.split, "{}", r.path);
    }

    // Each family's declared factor: its fakes repeat their pattern with the factor's
    // period and the reals of its folder show none; nearest fakes vanish exactly under NPR
    // at their scale and not at half of it.
    let mut table = String::new();
    let mut found = Vec::new();
    for f in &m.families {
        let test = bench.join("test").join(&f.name);
        let (reals, fakes) = (pngs(&test.join("0_real")), pngs(&test.join("1_fake")));
        let (real, fake) = (step_profile(&reals), step_profile(&fakes));
        let r2 = PERIODS.map(|p| explained(&fake, p));
        let strength = PERIODS.map(|p| (contrast(&fold(&fake, p)), contrast(&fold(&real, p))));
        table.push_str(&format!(
            "{:16} x{:<5.3} periods {PERIODS:?}: explained {r2:.2?}, periodic contrast fakes/reals {strength:.3?}\n",
            f.name, f.factor
        ));
        found.push((f, r2, strength, fakes));
    }
    for (f, r2, strength, fakes) in found {
        // The pattern's period: the factor's numerator (×4/3: every 4 pixels). It must
        // explain clearly more of the fakes' profile than any period that is not a
        // multiple of it, and be stronger in the fakes than in the reals.
        let whole = (f.factor.round() - f.factor).abs() < 1e-9;
        let declared = if whole { f.factor.round() as usize } else { 4 };
        let k = PERIODS.iter().position(|&p| p == declared).unwrap();
        for (j, p) in PERIODS.into_iter().enumerate() {
            if p % declared != 0 {
                assert!(
                    r2[k] > r2[j] + 0.1,
                    "{}: period {p} explains as much as {declared}\n{table}",
                    f.name
                );
            }
        }
        let (fake, real) = strength[k];
        assert!(
            fake > 2.0 * real,
            "{}: no stronger than in reals\n{table}",
            f.name
        );
        if f.name.starts_with("nearest") {
            for img in &fakes {
                let img = to_planes(img);
                assert_eq!(mean_abs_npr(&img, f.npr_scale), 0.0, "{}", f.name);
                assert!(mean_abs_npr(&img, f.npr_scale / 2.0) > 0.0, "{}", f.name);
            }
        }
    }
    eprintln!("{table}");
}

#[test]
fn two_photographs_are_too_few_to_split_and_the_message_says_why() {
    let Some((photos, nets)) = fetched() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let err = build(&PHOTOS[..2], dir.path(), &nets, &photos).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("at least 3") && msg.contains("2 usable"),
        "{msg}"
    );
    assert!(!dir.path().join("bench/synth.json").exists());
}
