use std::collections::BTreeMap;
use std::path::Path;

use super::calibration::{self, npr, SCALES};
use super::content::Planes;
use super::family::{self, Family, Upsampler};
use super::*;

/// Tiny options: 32 px, a few images per folder.
fn tiny(out: &Path, seed: u64, threads: usize) -> SynthOptions {
    SynthOptions {
        out: out.to_path_buf(),
        seed,
        size: 32,
        train_per_class: 3,
        val_per_class: 1,
        test_per_family: 2,
        classes: 4,
        threads,
        ..SynthOptions::default()
    }
}

/// Every file under `dir`, relative path → bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(rel, fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn same_seed_is_byte_identical_whatever_the_thread_count() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        tmp.path().join("a"),
        tmp.path().join("b"),
        tmp.path().join("c"),
    );
    generate(&tiny(&a, 7, 1)).unwrap();
    generate(&tiny(&b, 7, 2)).unwrap();
    generate(&tiny(&c, 8, 2)).unwrap();
    let (fa, fb, fc) = (files(&a), files(&b), files(&c));
    // 4 classes × 2 labels × (3 + 1) + 7 families × 2 labels × 2, plus synth.json.
    assert_eq!(fa.len(), 4 * 2 * 4 + 7 * 2 * 2 + 1);
    assert!(fa == fb, "threads 1 and 2 must write identical files");
    assert_eq!(fa.keys().collect::<Vec<_>>(), fc.keys().collect::<Vec<_>>());
    let differing = fa
        .iter()
        .filter(|(k, v)| k.ends_with(".png") && fc[*k] != **v)
        .count();
    assert_eq!(
        differing,
        fa.len() - 1,
        "another seed must change every image"
    );
}

#[test]
fn the_multiscale_preset_is_deterministic_and_trains_on_two_scales() {
    let tmp = tempfile::tempdir().unwrap();
    let multiscale = |dir: &Path| SynthOptions {
        seen: MULTISCALE_SEEN.iter().map(|s| s.to_string()).collect(),
        ..tiny(dir, 3, 2)
    };
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let manifest = generate(&multiscale(&a)).unwrap();
    generate(&multiscale(&b)).unwrap();
    assert!(
        files(&a) == files(&b),
        "same seed, same preset: identical files"
    );
    let seen_scales: std::collections::BTreeSet<String> = manifest
        .families
        .iter()
        .filter(|f| f.seen)
        .map(|f| format!("{}", f.npr_scale))
        .collect();
    assert_eq!(seen_scales.into_iter().collect::<Vec<_>>(), ["0.25", "0.5"]);
    // Every seen family's fakes are in training; the unseen ones only in test.
    for f in &manifest.families {
        assert_eq!(f.fakes.train > 0, f.seen, "{}", f.name);
    }
}

#[test]
fn manifest_round_trips_and_matches_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("synth");
    let opts = SynthOptions {
        classes: 2,
        seen: vec!["tconv_x2".into(), "bilinear_x4".into()],
        ..tiny(&out, 3, 2)
    };
    let m = generate(&opts).unwrap();
    assert_eq!(read_manifest(&out).unwrap(), m);
    let json = serde_json::to_string(&m).unwrap();
    assert_eq!(serde_json::from_str::<Manifest>(&json).unwrap(), m);

    // Folder counts are what is on disk, and nothing else is there.
    let on_disk = files(&out);
    let mut counted = 0;
    for f in &m.folders {
        let n = on_disk
            .keys()
            .filter(|k| {
                k.rsplit_once('/').map(|(dir, _)| dir) == Some(f.path.as_str())
                    && k.ends_with(".png")
            })
            .count();
        assert_eq!(n, f.count, "{}", f.path);
        counted += n;
    }
    assert_eq!(counted + 1, on_disk.len());
    assert_eq!(m.classes, ["landscape", "objects"]);
    assert_eq!(m.folders.len(), 2 * 2 * 2 + 7 * 2);

    // Family counts: seen ones split the train/val fakes by index, all are in test.
    for fam in &m.families {
        let seen = fam.name == "tconv_x2" || fam.name == "bilinear_x4";
        assert_eq!(fam.seen, seen, "{}", fam.name);
        let expect = if fam.name == "tconv_x2" {
            SplitCounts {
                train: 2 * 2,
                val: 2,
                test: 2,
            } // indices 0 and 2 of 3, per class
        } else if seen {
            SplitCounts {
                train: 2,
                val: 0,
                test: 2,
            }
        } else {
            SplitCounts {
                train: 0,
                val: 0,
                test: 2,
            }
        };
        assert_eq!(fam.fakes, expect, "{}", fam.name);
        let prefix = format!("test/{}/1_fake/", fam.name);
        assert_eq!(
            on_disk.keys().filter(|k| k.starts_with(&prefix)).count(),
            fam.fakes.test
        );
    }
    let b = m
        .families
        .iter()
        .find(|f| f.name == "bicubic_x4_3")
        .unwrap();
    assert_eq!(
        (b.low_res, b.npr_scale, b.upsampler),
        (24, 0.75, Upsampler::Bicubic)
    );
    assert!((b.factor - 4.0 / 3.0).abs() < 1e-12);
    let img = image::open(out.join("test/bicubic_x4_3/1_fake/00001_objects.png")).unwrap();
    assert_eq!(
        (img.width(), img.height(), img.color()),
        (32, 32, image::ColorType::Rgb8)
    );
}

#[test]
fn an_existing_benchmark_is_kept_unless_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("synth");
    generate(&tiny(&out, 1, 1)).unwrap();
    let err = generate(&tiny(&out, 1, 1)).unwrap_err();
    assert!(
        matches!(
            err.downcast_ref::<SynthError>(),
            Some(SynthError::OutputExists { .. })
        ),
        "{err:#}"
    );
    let smaller = SynthOptions {
        classes: 1,
        overwrite: true,
        ..tiny(&out, 1, 1)
    };
    let m = generate(&smaller).unwrap();
    let pngs = files(&out).keys().filter(|k| k.ends_with(".png")).count();
    assert_eq!(pngs, m.folders.iter().map(|f| f.count).sum::<usize>());
}

#[test]
fn bad_options_are_usage_errors_that_name_the_option() {
    let out = Path::new("/nonexistent/never-created");
    let cases: Vec<(SynthOptions, &str)> = vec![
        (
            SynthOptions {
                size: 20,
                ..tiny(out, 0, 1)
            },
            "size",
        ),
        (
            SynthOptions {
                size: 8,
                ..tiny(out, 0, 1)
            },
            "size",
        ),
        (
            SynthOptions {
                classes: 0,
                ..tiny(out, 0, 1)
            },
            "classes",
        ),
        (
            SynthOptions {
                classes: 5,
                ..tiny(out, 0, 1)
            },
            "classes",
        ),
        (
            SynthOptions {
                test_per_family: 0,
                ..tiny(out, 0, 1)
            },
            "test_per_family",
        ),
        (
            SynthOptions {
                seen: vec![],
                ..tiny(out, 0, 1)
            },
            "seen",
        ),
        (
            SynthOptions {
                seen: vec!["nearest_x2".into(), "nearest_x2".into()],
                ..tiny(out, 0, 1)
            },
            "seen",
        ),
        (
            SynthOptions {
                seen: vec!["progan".into()],
                ..tiny(out, 0, 1)
            },
            "progan",
        ),
        (
            SynthOptions {
                jpeg_quality: Some(0),
                ..tiny(out, 0, 1)
            },
            "jpeg_quality",
        ),
        (
            SynthOptions {
                noise_sigma: f64::NAN,
                ..tiny(out, 0, 1)
            },
            "noise_sigma",
        ),
        (
            SynthOptions {
                detail_weight: -0.1,
                ..tiny(out, 0, 1)
            },
            "detail_weight",
        ),
    ];
    for (opts, word) in cases {
        let err = generate(&opts).unwrap_err();
        assert!(err.downcast_ref::<SynthError>().is_some(), "{err:#}");
        assert!(
            format!("{err}").contains(word),
            "`{err}` should name `{word}`"
        );
    }
    assert!(!out.exists());
}

#[test]
fn jpeg_option_changes_pixels_deterministically() {
    let recipe = |q| Recipe::new(32, DETAIL_WEIGHT, NOISE_SIGMA, q);
    let render = |r: &Recipe| {
        r.render(CLASSES[3], Kind::Real, &mut derived_rng(5, "jpeg"))
            .unwrap()
    };
    let (plain, jpeg) = (render(&recipe(None)), render(&recipe(Some(90))));
    assert_eq!(jpeg, render(&recipe(Some(90))));
    assert_ne!(plain, jpeg);
    let diff: f64 = plain
        .as_raw()
        .iter()
        .zip(jpeg.as_raw())
        .map(|(&a, &b)| (a as f64 - b as f64).abs())
        .sum::<f64>()
        / plain.as_raw().len() as f64;
    assert!(
        diff > 0.1 && diff < 8.0,
        "mean |Δ| = {diff} grey levels for quality 90"
    );
}

/// A ramp image `v(c, y, x) = (c·n·n + y·n + x) / 1000`.
fn ramp(n: usize) -> Planes {
    Planes {
        n,
        data: (0..3 * n * n).map(|i| i as f32 / 1000.0).collect(),
    }
}

#[test]
fn npr_follows_pytorch_nearest_indices() {
    // s = 0.5 on 4×4: each 2×2 block minus its top-left pixel.
    let r = npr(&ramp(4), 0.5);
    let expect = [
        0., 1., 0., 1., 4., 5., 4., 5., 0., 1., 0., 1., 4., 5., 4., 5.,
    ]
    .map(|v: f32| v / 1000.0);
    for (a, b) in r.plane(1).iter().zip(expect) {
        assert!((a - b).abs() < 1e-6, "{:?}", r.plane(1));
    }
    // s = 0.75 on 8: down to 6 keeps rows/cols [0, 1, 2, 4, 5, 6]; up maps 8 → 6 as
    // [0, 0, 1, 2, 3, 3, 4, 5], so output i copies source [0, 0, 1, 2, 4, 4, 5, 6].
    // torch: F.interpolate(F.interpolate(x, size=(6, 6)), size=(8, 8))[0, 0, :, 0] (mode
    // 'nearest') of x = arange(64).reshape(1, 1, 8, 8) is [0, 0, 8, 16, 32, 32, 40, 48].
    let x = ramp(8);
    let r = npr(&x, 0.75);
    let src = [0usize, 0, 1, 2, 4, 4, 5, 6];
    for y in 0..8 {
        for xx in 0..8 {
            let want = x.plane(0)[y * 8 + xx] - x.plane(0)[src[y] * 8 + src[xx]];
            assert!((r.plane(0)[y * 8 + xx] - want).abs() < 1e-6);
        }
    }
    // s = 0.125 on 32 → 4: blocks of 8, each minus its top-left pixel.
    let r = npr(&ramp(32), 0.125);
    assert!(r.plane(2)[..32].iter().step_by(8).all(|&v| v.abs() < 1e-6));
    assert!((r.plane(2)[9 * 32 + 9] - 33.0 / 1000.0).abs() < 1e-6); // (9, 9) − (8, 8)
}

#[test]
fn upsamplers_match_pytorch_interpolate() {
    // Golden values from torch 2.11:
    //   x = torch.arange(9.).reshape(1, 1, 3, 3) / 8
    //   F.interpolate(x, size=(6, 6), mode='bilinear', align_corners=False)[0, 0, 1]
    //   F.interpolate(x, size=(4, 4), mode='bicubic', align_corners=False)[0, 0, 1]
    //   F.interpolate(x, size=(6, 6), mode='nearest')[0, 0, 3]
    let low = Planes {
        n: 3,
        data: (0..27).map(|i| (i % 9) as f32 / 8.0).collect(),
    };
    let kernel = [[[0.0; 4]; 4]; 3];
    let check = |fam: Family, size: usize, row: usize, want: &[f32]| {
        let up = family::upsample(fam, &low, size, &kernel);
        let got = &up.plane(0)[row * size..(row + 1) * size];
        for (g, w) in got.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{fam:?}: {got:?} vs {want:?}");
        }
    };
    check(Family::BilinearX2, 6, 1, &BILINEAR_ROW1);
    check(Family::BicubicX4by3, 4, 1, &BICUBIC_ROW1);
    check(
        Family::NearestX2,
        6,
        3,
        &[0.375, 0.375, 0.5, 0.5, 0.625, 0.625],
    );
}

// See `upsamplers_match_pytorch_interpolate` for the code that produced these; the
// digits are torch's output verbatim.
const BILINEAR_ROW1: [f32; 6] = [0.09375, 0.125, 0.1875, 0.25, 0.3125, 0.34375];
#[allow(clippy::excessive_precision)]
const BICUBIC_ROW1: [f32; 4] = [
    0.189697265625,
    0.264892578125,
    0.3824462890625,
    0.4576416313648224,
];

#[test]
fn transposed_conv_with_bilinear_taps_is_bilinear_inside() {
    // With the un-jittered kernel b ⊗ b the transposed convolution is bilinear ×2;
    // they differ only at the border (replicated input vs clamped index: equal too).
    let low = Planes {
        n: 4,
        data: (0..48).map(|i| ((i * 7) % 16) as f32 / 15.0).collect(),
    };
    let b = [0.25f32, 0.75, 0.75, 0.25];
    let k = [[[0.0f32; 4]; 4]; 3]
        .map(|_| std::array::from_fn(|y| std::array::from_fn(|x| b[y] * b[x])));
    let t = family::upsample(Family::TconvX2, &low, 8, &k);
    let l = family::upsample(Family::BilinearX2, &low, 8, &k);
    for (a, b) in t.data.iter().zip(&l.data) {
        assert!((a - b).abs() < 1e-5);
    }
    // The seeded kernel has four different phase gains (the checkerboard), mean 1.
    let k = family::tconv_kernel(&mut derived_rng(family::TCONV_KERNEL_SEED, "tconv_kernel"));
    let gain = |py: usize, px: usize| -> f32 {
        (0..4)
            .filter(|ky| ky % 2 != py)
            .flat_map(|ky| {
                (0..4)
                    .filter(move |kx| kx % 2 != px)
                    .map(move |kx| (ky, kx))
            })
            .map(|(ky, kx)| k[0][ky][kx])
            .sum()
    };
    let g = [gain(0, 0), gain(0, 1), gain(1, 0), gain(1, 1)];
    assert_eq!(g.iter().sum::<f32>(), 4.0, "{g:?}");
    assert!(k
        .iter()
        .flatten()
        .flatten()
        .all(|w| (w * 4096.0).fract() == 0.0));
    assert!(g.iter().any(|&x| (x - 1.0).abs() > 0.01), "{g:?}");
}

#[test]
fn nearest_fakes_without_detail_or_noise_vanish_exactly_at_their_scale() {
    // No detail, no noise: what is left is the up-sampled render, constant on the
    // blocks NPR at 1/factor removes — exactly, after 8-bit rounding.
    let recipe = Recipe::new(32, 0.0, 0.0, None);
    for (i, fam) in [Family::NearestX2, Family::NearestX4, Family::NearestX8]
        .into_iter()
        .enumerate()
    {
        let mut rng = derived_rng(1, fam.name());
        let fake = recipe
            .render(CLASSES[i], Kind::Fake(fam), &mut rng)
            .unwrap();
        let real = recipe.render(CLASSES[i], Kind::Real, &mut rng).unwrap();
        let s = fam.npr_scale();
        assert_eq!(
            calibration::mean_abs_npr(&calibration::to_planes(&fake), s),
            0.0,
            "{}",
            fam.name()
        );
        assert!(calibration::mean_abs_npr(&calibration::to_planes(&real), s) > 1e-3);
    }
}

/// Every family (bicubic ×4/3 excepted, see below) separates from reals at its own
/// NPR scale better than at each scale it was not designed for, on 32-px images.
///
/// Two measures (see `calibration`): the effect size `d` of the grid-alignment ratio
/// (the part of |NPR_s| locked to the grid with the scale's own period — the trace
/// proper, free of blur), and the raw paired change of mean |NPR_s| (what the branch's
/// input energy shows, blur included). The designed scale must win on the first
/// against every other scale, or — where a nearest family nests (a ×4 or ×8 block
/// image is also a ×2 block image, so the 0.5 grid sees it as well) — on the second.
#[test]
fn each_family_leaves_its_trace_at_its_scale() {
    let recipe = Recipe::new(32, DETAIL_WEIGHT, NOISE_SIGMA, None);
    let rows = calibration::measure(&recipe, 11, 96);
    let table = calibration::markdown(&rows);
    for row in &rows {
        let fam = row.family;
        let k = SCALES
            .iter()
            .position(|&s| s == fam.npr_scale())
            .expect("every family's scale is measured");
        if fam == Family::BicubicX4by3 {
            // By construction no grid-locked trace at 0.75: ×4/3 resampling has period
            // 4 but no pixel pattern NPR_0.75 cancels (DATASET_DETAILS.md). Keep the
            // documentation honest: it stays weak at every scale.
            for j in 0..SCALES.len() {
                assert!(
                    row.auc[j] < 0.75 && row.change[j].abs() < 0.15,
                    "bicubic_x4_3 now shows a trace; update DATASET_DETAILS.md\n{table}"
                );
            }
            continue;
        }
        assert!(
            row.auc[k] >= 0.6 && row.d[k] >= 0.4,
            "{}: weak trace at its own scale\n{table}",
            fam.name()
        );
        for j in (0..SCALES.len()).filter(|&j| j != k) {
            let grid_wins = row.d[k].abs() > row.d[j].abs();
            let energy_wins = row.change[k] < row.change[j];
            assert!(
                grid_wins || energy_wins,
                "{}: scale {} separates no better than {}\n{table}",
                fam.name(),
                SCALES[k],
                SCALES[j]
            );
        }
    }
}

/// Prints the calibration tables of DATASET_DETAILS.md (64 px, 400 pairs per family,
/// default knobs, then without the high-pass detail):
/// `cargo test synth::tests::calibration_table -- --ignored --nocapture`.
#[test]
#[ignore = "calibration measurement (prints the DATASET_DETAILS.md tables), ~15 s"]
fn calibration_table() {
    for (title, detail) in [("default knobs", DETAIL_WEIGHT), ("detail_weight 0", 0.0)] {
        let recipe = Recipe::new(64, detail, NOISE_SIGMA, None);
        let rows = calibration::measure(&recipe, 0, 400);
        println!(
            "### {title} (detail_weight {detail}, noise_sigma {NOISE_SIGMA})\n\n{}",
            calibration::markdown(&rows)
        );
    }
}
