//! The neural up-samplers (src/upsample) against an independent NumPy forward pass
//! (tests/parity/reference_esrgan.py) and against the packages' own sample outputs.
//!
//! The weights are fetched by `scripts/get_photos.sh`, never committed: where they are absent
//! these tests print "skipped: run scripts/get_photos.sh" on stderr and return, unless
//! `NPR_REQUIRE_UPSAMPLERS` is set (CI sets it, after `scripts/get_photos.sh --small`), in
//! which case a missing esrgan-slim fails. esrgan-medium and -thick are tested when present.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use image::RgbImage;
use npr::synth::photos::MARGIN;
use npr::upsample::esrgan::{DEFAULT_ROOT, SCALES};
use npr::upsample::{Capacity, Esrgan, InputRange};
use tch::Tensor;

use crate::common::run_python;

/// |Rust − NumPy| per pixel, in 0–255 units: one grey level, i.e. 1/255 of the range.
const GOLDEN_TOL: f64 = 1.0;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(DEFAULT_ROOT)
}

/// Says so on the test's stderr (not captured by the harness) and returns false when a
/// capacity's files are absent; panics instead for esrgan-slim when CI requires it.
fn present(capacity: Capacity) -> bool {
    let found = SCALES
        .iter()
        .all(|&s| capacity.model_dir(&root(), s).join("model.json").is_file());
    if !found {
        let flag = if capacity == Capacity::Thick {
            " --thick"
        } else {
            ""
        };
        let msg = format!(
            "skipped: run scripts/get_photos.sh{flag} ({capacity} is not in {})",
            root().display()
        );
        if capacity == Capacity::Slim && std::env::var_os("NPR_REQUIRE_UPSAMPLERS").is_some() {
            panic!(
                "{capacity} is not in {}: run scripts/get_photos.sh --small \
                 (NPR_REQUIRE_UPSAMPLERS is set, so this fails instead of skipping)",
                root().display()
            );
        }
        let _ = writeln!(std::io::stderr(), "{msg}");
    }
    found
}

/// A fixed 20×24 RGB image: a gradient, a hard diagonal edge and seeded texture (an LCG),
/// so that every layer sees structure at several frequencies; non-square to catch a
/// transposed height and width.
fn fixed_input(h: u32, w: u32) -> RgbImage {
    let mut state: u32 = 12345;
    RgbImage::from_fn(w, h, |x, y| {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
        let noise = (state >> 16) % 48;
        let edge = if x * h > y * w { 90 } else { 0 };
        let level = |v: u32| v.min(255) as u8;
        image::Rgb([
            level(x * 127 / w + edge + noise),
            level(y * 127 / h + noise / 2),
            level(100 - edge / 2 + (x + y) * 100 / (w + h) + noise),
        ])
    })
}

fn to_tensor(img: &RgbImage) -> Tensor {
    let (w, h) = (img.width() as i64, img.height() as i64);
    Tensor::from_slice(img.as_raw())
        .view([1, h, w, 3])
        .permute([0, 3, 1, 2])
}

#[test]
fn esrgan_matches_an_independent_numpy_forward_pass() {
    let dir = tempfile::tempdir().unwrap();
    let mut cases = Vec::new();
    let mut labels = Vec::new();
    for capacity in Capacity::ALL {
        if !present(capacity) {
            continue;
        }
        // thick's 154 convolutions are slow in NumPy: a smaller input keeps the test short.
        let (h, w) = if capacity == Capacity::Thick {
            (10, 12)
        } else {
            (20, 24)
        };
        let img = fixed_input(h, w);
        let input = format!("{capacity}_in.u8");
        std::fs::write(dir.path().join(&input), img.as_raw()).unwrap();
        for scale in SCALES {
            let net = Esrgan::load(&root(), capacity, scale).unwrap();
            let y = tch::no_grad(|| net.forward(&to_tensor(&img))).unwrap();
            let values: Vec<f32> = y.flatten(0, -1).try_into().unwrap();
            let output = format!("{capacity}_x{scale}.f32");
            let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
            std::fs::write(dir.path().join(&output), bytes).unwrap();
            cases.push(serde_json::json!({
                "model_dir": capacity.model_dir(&root(), scale),
                "white": capacity.input_range().white(),
                "h": h, "w": w, "input": input, "output": output,
            }));
            labels.push(format!("{capacity} x{scale}"));
        }
    }
    if cases.is_empty() {
        return;
    }
    let cases_path = dir.path().join("cases.json");
    std::fs::write(&cases_path, serde_json::to_string(&cases).unwrap()).unwrap();
    let out = run_python(
        "tests/parity/reference_esrgan.py",
        &[cases_path.to_str().unwrap()],
    );
    let results: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(results.len(), labels.len(), "{out}");
    for (label, r) in labels.iter().zip(&results) {
        let max_abs = r["max_abs"].as_f64().unwrap();
        eprintln!("{label}: max |Rust - NumPy| = {max_abs:.2e} grey levels");
        assert!(
            (0.0..=GOLDEN_TOL).contains(&max_abs),
            "{label}: max |Rust - NumPy| = {max_abs} grey levels (tolerance {GOLDEN_TOL})"
        );
    }
}

fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    assert_eq!(a.dimensions(), b.dimensions());
    let mse = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum::<f64>()
        / a.as_raw().len() as f64;
    10.0 * (255.0f64.powi(2) / mse.max(1e-12)).log10()
}

fn other(range: InputRange) -> InputRange {
    match range {
        InputRange::Byte => InputRange::Unit,
        InputRange::Unit => InputRange::Byte,
    }
}

fn rounded(y: &Tensor) -> RgbImage {
    let (_, _, h, w) = y.size4().unwrap();
    let bytes: Vec<u8> = y
        .round()
        .clamp(0.0, 255.0)
        .to_kind(tch::Kind::Uint8)
        .squeeze_dim(0)
        .permute([1, 2, 0])
        .reshape([-1])
        .try_into()
        .unwrap();
    RgbImage::from_raw(w as u32, h as u32, bytes).unwrap()
}

/// Settles the input range: the package's fixture through our forward pass must give the
/// package's own sample output (UpscalerJS in the browser) to within rounding, with the
/// range its model definition declares, and clearly not with the other range.
#[test]
fn esrgan_reproduces_the_packages_own_samples() {
    for capacity in Capacity::ALL {
        if !present(capacity) {
            continue;
        }
        let folder = root().join(format!("esrgan-{}", capacity.name()));
        let fixture = image::open(folder.join("fixture.png")).unwrap().to_rgb8();
        // thick at 128 px takes tens of seconds a pass on a CPU: x2 only.
        let scales: &[i64] = if capacity == Capacity::Thick {
            &[2]
        } else {
            &[2, 3, 4]
        };
        for &scale in scales {
            let sample = image::open(folder.join(format!("sample_x{scale}.png")))
                .unwrap()
                .to_rgb8();
            let net = Esrgan::load(&root(), capacity, scale).unwrap();
            let ours = net.upsample(&fixture).unwrap();
            let declared = psnr(&ours, &sample);
            let x = to_tensor(&fixture);
            let wrong_range = other(capacity.input_range());
            let wrong = psnr(
                &rounded(&tch::no_grad(|| net.forward_as(&x, wrong_range)).unwrap()),
                &sample,
            );
            eprintln!(
                "{capacity} x{scale}: PSNR against the package's sample {declared:.1} dB with \
                 {:?}, {wrong:.1} dB with {wrong_range:?}",
                capacity.input_range()
            );
            assert!(declared > 60.0, "{capacity} x{scale}: {declared:.1} dB");
            assert!(
                wrong < declared - 20.0,
                "{capacity} x{scale}: {wrong:.1} vs {declared:.1} dB"
            );
        }
    }
}

/// Forward speed of a 64-px crop to 256 px (x4) on one CPU thread (BENCHMARKS.md):
/// `cargo test --release --test it upsample_speed -- --ignored --nocapture`.
#[test]
#[ignore = "a measurement, run alone: it sets libtorch to one thread for the whole process"]
fn upsample_speed_64_to_256_on_one_thread() {
    tch::set_num_threads(1);
    let img = fixed_input(64, 64);
    for capacity in Capacity::ALL {
        if !present(capacity) {
            continue;
        }
        let net = Esrgan::load(&root(), capacity, 4).unwrap();
        net.upsample(&img).unwrap(); // warm-up
        let runs = if capacity == Capacity::Thick { 3 } else { 10 };
        let mut times: Vec<f64> = (0..runs)
            .map(|_| {
                let t = Instant::now();
                let out = net.upsample(&img).unwrap();
                assert_eq!(out.dimensions(), (256, 256));
                t.elapsed().as_secs_f64()
            })
            .collect();
        times.sort_by(f64::total_cmp);
        eprintln!(
            "{capacity} x4, 64 px → 256 px, 1 thread: median {:.0} ms (min {:.0}, max {:.0}, {runs} runs)",
            times[runs / 2] * 1e3,
            times[0] * 1e3,
            times[runs - 1] * 1e3
        );
    }
}

/// How deep a network's zero padding reaches into its output, in input pixels: the output
/// on a crop of a larger image against the same pixels of the output on the whole image;
/// depth = the farthest output pixel from the crop's border that differs by half a grey
/// level or more (enough to change the saved 8-bit value). The photo benchmark keeps
/// `MARGIN` pixels of context around each crop, `MARGIN / f` input pixels at factor f: the
/// border effects must stay inside it. (Measured 2026-12-05, in input pixels: slim 7 / 7 /
/// 8 and medium 8 / 8 / 9 at ×2 / ×3 / ×4; a 24-px margin, 6 input pixels at ×4, was too
/// little.)
#[test]
fn esrgan_border_effects_stay_inside_the_margin() {
    let inner = 48i64;
    for capacity in [Capacity::Slim, Capacity::Medium] {
        if !present(capacity) {
            continue;
        }
        for scale in [2, 3, 4] {
            let net = Esrgan::load(&root(), capacity, scale).unwrap();
            let side = inner as u32 * 2;
            let whole = to_tensor(&fixed_input(side, side));
            let crop = whole
                .narrow(2, inner / 2, inner)
                .narrow(3, inner / 2, inner);
            let (yw, yc) = tch::no_grad(|| (net.forward(&whole), net.forward(&crop)));
            let same = yw
                .unwrap()
                .narrow(2, inner / 2 * scale, inner * scale)
                .narrow(3, inner / 2 * scale, inner * scale);
            let diff = (yc.unwrap() - same).abs().amax([0, 1].as_slice(), false);
            // Rows and columns, in input pixels, of the outputs that changed.
            let changed = diff.ge(0.5).nonzero().floor_divide_scalar(scale);
            let depth = if changed.size()[0] == 0 {
                0
            } else {
                let from_border = changed.minimum(&(inner - 1 - &changed)).amin(1, false);
                from_border.max().int64_value(&[]) + 1
            };
            let margin = MARGIN as i64 / scale;
            eprintln!("{capacity} x{scale}: padding reaches {depth} input px; margin {margin}");
            assert!(
                depth <= margin,
                "{capacity} x{scale}: zero padding changes outputs {depth} input px deep, \
                 beyond the photo benchmark's margin of {margin} input px"
            );
        }
    }
}
