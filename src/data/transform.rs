//! Image transforms as pure functions of (image, settings, seeded RNG).
//!
//! Training follows the official NPR / CNNDetection pipeline on PIL images:
//! `Resize((load, load))` (bilinear, antialiased — [`super::resize`]), then CNNDetection's
//! `data_augment` (Gaussian blur with probability p and σ ~ U[lo, hi] with scipy's
//! semantics — [`super::blur`]; JPEG re-encoding with probability p and quality ~ U{lo..hi}
//! through libjpeg-turbo, byte-identical to PIL — [`super::jpeg`]), then `RandomCrop` and
//! `RandomHorizontalFlip`. Normalisation is left to the device.
//!
//! Testing: optional perturbations (robustness studies), then the set's policy: resize or
//! not, and a [`Crop`] ([`TestTransform`]). An image smaller than a crop is resized up and
//! reported through [`Applied::upscaled`], which the loader counts as a warning.

use image::imageops;
use image::RgbImage;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::blur::gaussian_blur;
use super::jpeg::reencode;
use super::resize::{resize_bilinear, shorter_side_size};
use super::skip::{Rejected, SkipReason};
use super::DataError;

/// How a resize to `n` treats the aspect ratio.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ResizeMode {
    /// `n × n`, aspect ratio not kept: the official NPR (`transforms.Resize((n, n))`).
    #[default]
    Square,
    /// Shorter side `n`, aspect ratio kept: CNNDetection (`TF.resize(img, n)`).
    ShorterSide,
}

/// CNNDetection's blur augmentation: with probability `prob`, σ ~ U[sigma[0], sigma[1]].
/// The one definition: the config's `data.blur` is this type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BlurAug {
    pub prob: f64,
    pub sigma: [f64; 2],
}

impl Default for BlurAug {
    /// Off; when switched on, CNNDetection's σ ∈ [0, 3].
    fn default() -> Self {
        BlurAug {
            prob: 0.0,
            sigma: [0.0, 3.0],
        }
    }
}

/// CNNDetection's JPEG augmentation: with probability `prob`, quality ~ U{q[0] ..= q[1]}.
/// The one definition: the config's `data.jpeg` is this type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JpegAug {
    pub prob: f64,
    pub quality: [u8; 2],
}

impl Default for JpegAug {
    /// Off; when switched on, the study plan's quality 90–100 (CNNDetection used 30–100:
    /// set `quality: [30, 100]` for its recipe).
    fn default() -> Self {
        JpegAug {
            prob: 0.0,
            quality: [90, 100],
        }
    }
}

/// The problems of one augmentation `{key}`: its probability, both ends of its range
/// (`{key}.{range}`, each end checked by `check`) and `lo ≤ hi`.
fn augmentation_problems<T: PartialOrd + Copy + std::fmt::Display>(
    key: &str,
    prob: f64,
    range: &str,
    [lo, hi]: [T; 2],
    check: fn(&str, T) -> Result<(), DataError>,
) -> Vec<DataError> {
    let range_key = format!("{key}.{range}");
    let mut out: Vec<DataError> = [
        check_prob(&format!("{key}.prob"), prob),
        check(&range_key, lo),
        check(&range_key, hi),
    ]
    .into_iter()
    .filter_map(Result::err)
    .collect();
    if lo > hi {
        let detail = format!("[{lo}, {hi}] is not a range (lo ≤ hi)");
        out.push(DataError::invalid(&range_key, detail));
    }
    out
}

/// The training transform (official NPR defaults: load 256, crop 224, flip, no blur/JPEG).
#[derive(Clone, Debug, PartialEq)]
pub struct TrainTransform {
    /// Resize target before cropping; `None` keeps the decoded size.
    pub load_size: Option<u32>,
    pub resize_mode: ResizeMode,
    pub crop_size: u32,
    pub flip: bool,
    pub blur: BlurAug,
    pub jpeg: JpegAug,
}

impl Default for TrainTransform {
    fn default() -> Self {
        TrainTransform {
            load_size: Some(256),
            resize_mode: ResizeMode::Square,
            crop_size: 224,
            flip: true,
            blur: BlurAug::default(),
            jpeg: JpegAug::default(),
        }
    }
}

/// The test-time crop policy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Crop {
    /// Centre crop `n × n` (torchvision `CenterCrop` rounding).
    Center(u32),
    /// Keep the whole image; the loader batches equal sizes together.
    #[default]
    None,
    /// GenImage: repeat an image smaller than `n` until it covers `n × n`, then centre-crop.
    Tile(u32),
}

/// The test transform. Robustness perturbations come first, in the usual degradation
/// order — blur, then `pre_resize`, then JPEG (compression last, as when an image is
/// shared) — then the set's protocol: `resize` to `n × n` (official NPR
/// `Resize((n, n))`) or not, then `crop`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TestTransform {
    pub resize: Option<u32>,
    pub crop: Crop,
    /// Re-encode as JPEG at this quality (PIL-identical bytes).
    pub jpeg_quality: Option<u8>,
    /// Gaussian blur with this σ (scipy `gaussian_filter` per channel).
    pub blur_sigma: Option<f64>,
    /// Resize so that the shorter side is this (bilinear, aspect ratio kept).
    pub pre_resize: Option<u32>,
}

/// Either transform, as the loader takes it.
#[derive(Clone, Debug, PartialEq)]
pub enum Transform {
    Train(TrainTransform),
    Test(TestTransform),
}

/// A transformed image, and whether it had to be resized up to fit the crop.
#[derive(Clone, Debug, PartialEq)]
pub struct Applied {
    pub image: RgbImage,
    pub upscaled: bool,
}

/// `Ok` when `v` lies in `range`, else an error naming `key`: "{what}, got {v}".
fn check_in<T: PartialOrd + std::fmt::Display>(
    key: &str,
    v: T,
    range: std::ops::RangeInclusive<T>,
    what: &str,
) -> Result<(), DataError> {
    if range.contains(&v) {
        return Ok(());
    }
    Err(DataError::invalid(key, format!("{what}, got {v}")))
}

fn check_prob(key: &str, p: f64) -> Result<(), DataError> {
    check_in(key, p, 0.0..=1.0, "must be a probability in [0, 1]")
}

fn check_quality(key: &str, q: u8) -> Result<(), DataError> {
    check_in(key, q, 1..=100, "JPEG quality must be in 1..=100")
}

fn check_sigma(key: &str, s: f64) -> Result<(), DataError> {
    check_in(key, s, 0.0..=50.0, "blur σ must be in [0, 50]")
}

fn check_size(key: &str, n: u32) -> Result<(), DataError> {
    check_in(key, n, 1..=16_384, "must be in 1..=16384 pixels")
}

impl TrainTransform {
    /// Every range problem at once; each names its config key (`data.crop_size`,
    /// `data.blur.sigma`, …). The config's validation reports these too.
    pub fn problems(&self) -> Vec<DataError> {
        let mut out: Vec<DataError> = [check_size("data.crop_size", self.crop_size)]
            .into_iter()
            .chain(self.load_size.map(|n| check_size("data.load_size", n)))
            .filter_map(Result::err)
            .collect();
        if let Some(load) = self.load_size.filter(|&load| self.crop_size > load) {
            let crop = self.crop_size;
            let detail = format!("{crop} is larger than data.load_size {load} (crop ≤ load size)");
            out.push(DataError::invalid("data.crop_size", detail));
        }
        let (b, j) = (&self.blur, &self.jpeg);
        let blur = augmentation_problems("data.blur", b.prob, "sigma", b.sigma, check_sigma);
        let jpeg = augmentation_problems("data.jpeg", j.prob, "quality", j.quality, check_quality);
        out.extend(blur.into_iter().chain(jpeg));
        out
    }

    /// The first of [`Self::problems`], if any.
    pub fn validate(&self) -> Result<(), DataError> {
        self.problems().into_iter().next().map_or(Ok(()), Err)
    }
}

impl TestTransform {
    /// The output size when it is the same for every image; `None` when images keep
    /// their own size (no resize, no crop: the full-size protocol).
    pub fn output_size(&self) -> Option<(u32, u32)> {
        match (self.crop, self.resize) {
            (Crop::Center(n) | Crop::Tile(n), _) => Some((n, n)),
            (Crop::None, Some(n)) => Some((n, n)),
            (Crop::None, None) => None,
        }
    }

    pub fn validate(&self) -> Result<(), DataError> {
        if let Some(n) = self.resize {
            check_size("test.resize", n)?;
        }
        match self.crop {
            Crop::Center(n) | Crop::Tile(n) => check_size("test.crop", n)?,
            Crop::None => {}
        }
        if let Some(q) = self.jpeg_quality {
            check_quality("test.jpeg_quality", q)?;
        }
        if let Some(s) = self.blur_sigma {
            check_sigma("test.blur_sigma", s)?;
        }
        if let Some(n) = self.pre_resize {
            check_size("test.pre_resize", n)?;
        }
        Ok(())
    }
}

impl Transform {
    pub fn validate(&self) -> Result<(), DataError> {
        match self {
            Transform::Train(t) => t.validate(),
            Transform::Test(t) => t.validate(),
        }
    }

    /// Applies the transform; test transforms ignore `rng`.
    pub fn apply(&self, img: RgbImage, rng: &mut impl Rng) -> Result<Applied, Rejected> {
        match self {
            Transform::Train(t) => apply_train(img, t, rng),
            Transform::Test(t) => apply_test(img, t),
        }
    }
}

/// Largest image a resize may produce: a 1×40000 strip brought to a 224-px shorter side
/// would otherwise ask for gigabytes (the decoder's own default pixel limit).
const MAX_RESIZED_PIXELS: u64 = super::DEFAULT_MAX_PIXELS;

fn resize_to(img: RgbImage, n: u32, mode: ResizeMode) -> Result<RgbImage, Rejected> {
    let (w, h) = match mode {
        ResizeMode::Square => (n, n),
        ResizeMode::ShorterSide => shorter_side_size(img.width(), img.height(), n),
    };
    if u64::from(w) * u64::from(h) > MAX_RESIZED_PIXELS {
        let (iw, ih) = img.dimensions();
        let detail = format!("resizing {iw}×{ih} to {w}×{h} exceeds {MAX_RESIZED_PIXELS} pixels");
        return Err(Rejected::new(SkipReason::Oversized, detail));
    }
    Ok(if (w, h) == img.dimensions() {
        img
    } else {
        resize_bilinear(&img, w, h)
    })
}

/// Resizes up (shorter side = `crop`) when either side is smaller than `crop`.
fn ensure_covers(img: RgbImage, crop: u32) -> Result<(RgbImage, bool), Rejected> {
    if img.width() >= crop && img.height() >= crop {
        Ok((img, false))
    } else {
        Ok((resize_to(img, crop, ResizeMode::ShorterSide)?, true))
    }
}

/// torchvision `CenterCrop` offset: `int(round((size − crop) / 2))`, Python's
/// round-half-to-even.
fn center_offset(size: u32, crop: u32) -> u32 {
    let d = size - crop;
    let k = d / 2;
    if d.is_multiple_of(2) || k.is_multiple_of(2) {
        k
    } else {
        k + 1
    }
}

pub fn center_crop(img: &RgbImage, n: u32) -> RgbImage {
    let (x, y) = (
        center_offset(img.width(), n),
        center_offset(img.height(), n),
    );
    imageops::crop_imm(img, x, y, n, n).to_image()
}

/// Repeats `img` along each side shorter than `n` (whole copies) until it covers `n`.
pub fn tile_to_cover(img: &RgbImage, n: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    if w >= n && h >= n {
        return img.clone();
    }
    let tw = if w < n { w * n.div_ceil(w) } else { w };
    let th = if h < n { h * n.div_ceil(h) } else { h };
    RgbImage::from_fn(tw, th, |x, y| *img.get_pixel(x % w, y % h))
}

/// The training transform (see the module docs). RNG draws, in order: blur coin and σ,
/// JPEG coin and quality, crop offsets (top, left), flip coin.
pub fn apply_train(
    img: RgbImage,
    t: &TrainTransform,
    rng: &mut impl Rng,
) -> Result<Applied, Rejected> {
    let mut img = match t.load_size {
        Some(n) => resize_to(img, n, t.resize_mode)?,
        None => img,
    };
    // `validate` rejects reversed ranges; sorting here keeps an unvalidated one harmless.
    if t.blur.prob > 0.0 && rng.gen::<f64>() < t.blur.prob {
        let [a, b] = t.blur.sigma;
        let (lo, hi) = (a.min(b), a.max(b));
        let sigma = lo + rng.gen::<f64>() * (hi - lo);
        img = gaussian_blur(&img, sigma);
    }
    if t.jpeg.prob > 0.0 && rng.gen::<f64>() < t.jpeg.prob {
        let [a, b] = t.jpeg.quality;
        img = reencode(&img, rng.gen_range(a.min(b)..=a.max(b)).clamp(1, 100))?;
    }
    let c = t.crop_size.max(1);
    let (img, upscaled) = ensure_covers(img, c)?;
    let top = rng.gen_range(0..=img.height() - c);
    let left = rng.gen_range(0..=img.width() - c);
    let mut image = imageops::crop_imm(&img, left, top, c, c).to_image();
    if t.flip && rng.gen_bool(0.5) {
        imageops::flip_horizontal_in_place(&mut image);
    }
    Ok(Applied { image, upscaled })
}

/// The test transform: blur, pre-resize, JPEG (each if set), resize, crop policy.
pub fn apply_test(mut img: RgbImage, t: &TestTransform) -> Result<Applied, Rejected> {
    if let Some(sigma) = t.blur_sigma {
        img = gaussian_blur(&img, sigma);
    }
    if let Some(n) = t.pre_resize {
        img = resize_to(img, n, ResizeMode::ShorterSide)?;
    }
    if let Some(q) = t.jpeg_quality {
        img = reencode(&img, q.clamp(1, 100))?;
    }
    if let Some(n) = t.resize {
        img = resize_to(img, n, ResizeMode::Square)?;
    }
    let (image, upscaled) = match t.crop {
        Crop::None => (img, false),
        Crop::Center(n) => {
            let (img, upscaled) = ensure_covers(img, n)?;
            (center_crop(&img, n), upscaled)
        }
        Crop::Tile(n) => (center_crop(&tile_to_cover(&img, n), n), false),
    };
    Ok(Applied { image, upscaled })
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::natural;
    use super::super::seed::rng_for;
    use super::*;

    impl Transform {
        /// The output size when it is the same for every image (then no bucketing is needed).
        fn output_size(&self) -> Option<(u32, u32)> {
            match self {
                Transform::Train(t) => Some((t.crop_size, t.crop_size)),
                Transform::Test(t) => t.output_size(),
            }
        }
    }

    #[test]
    fn a_thin_strip_is_rejected_instead_of_resized_to_gigabytes() {
        // 2×4000 → shorter side 224 would be 224×448000 ≈ 100 M pixels of work per image.
        let strip = RgbImage::new(2, 4000);
        let t = TestTransform {
            crop: Crop::Center(224),
            ..Default::default()
        };
        let err = apply_test(strip, &t).unwrap_err();
        assert_eq!(err.reason, SkipReason::Oversized);
    }

    fn numbered(w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]))
    }

    #[test]
    fn center_offset_rounds_half_to_even_like_python() {
        // int(round(d / 2.0)) for d = 0..8
        let want = [0, 0, 1, 2, 2, 2, 3, 4, 4];
        for (d, &w) in want.iter().enumerate() {
            assert_eq!(center_offset(10 + d as u32, 10), w, "d = {d}");
        }
    }

    #[test]
    fn test_policies() {
        struct Case {
            name: &'static str,
            input: (u32, u32),
            t: TestTransform,
            size: (u32, u32),
            upscaled: bool,
            /// (x, y) of the source pixel that lands at output (0, 0), when no resize.
            origin: Option<(u8, u8)>,
        }
        let t = |resize, crop| TestTransform {
            resize,
            crop,
            ..TestTransform::default()
        };
        let cases = [
            Case {
                name: "none keeps size",
                input: (20, 13),
                t: t(None, Crop::None),
                size: (20, 13),
                upscaled: false,
                origin: Some((0, 0)),
            },
            Case {
                name: "resize square",
                input: (20, 13),
                t: t(Some(16), Crop::None),
                size: (16, 16),
                upscaled: false,
                origin: None,
            },
            Case {
                name: "center crop",
                input: (20, 13),
                t: t(None, Crop::Center(8)),
                size: (8, 8),
                upscaled: false,
                origin: Some((6, 2)),
            },
            Case {
                name: "center crop upscales a small image",
                input: (6, 4),
                t: t(None, Crop::Center(8)),
                size: (8, 8),
                upscaled: true,
                origin: None,
            },
            Case {
                name: "tile covers a small image",
                input: (5, 3),
                t: t(None, Crop::Tile(8)),
                size: (8, 8),
                upscaled: false,
                origin: Some((1, 0)),
            },
            Case {
                name: "tile of a large image is a centre crop",
                input: (20, 13),
                t: t(None, Crop::Tile(8)),
                size: (8, 8),
                upscaled: false,
                origin: Some((6, 2)),
            },
            Case {
                name: "1×1 image",
                input: (1, 1),
                t: t(None, Crop::Center(4)),
                size: (4, 4),
                upscaled: true,
                origin: Some((0, 0)),
            },
        ];
        for c in cases {
            let out = apply_test(numbered(c.input.0, c.input.1), &c.t).unwrap();
            assert_eq!(out.image.dimensions(), c.size, "{}", c.name);
            assert_eq!(out.upscaled, c.upscaled, "{}", c.name);
            if let Some((x, y)) = c.origin {
                assert_eq!(&out.image.get_pixel(0, 0).0[..2], &[x, y], "{}", c.name);
            }
        }
        // Tiling repeats whole copies: 5×3 → 10×9, then the centre crop starts at (1, 0).
        let tiled = tile_to_cover(&numbered(5, 3), 8);
        assert_eq!(tiled.dimensions(), (10, 9));
        assert_eq!(tiled.get_pixel(7, 4).0, [2, 1, 7]);
    }

    #[test]
    fn perturbations_come_before_the_policy_in_degradation_order() {
        let src = natural(40, 30, 1);
        let t = TestTransform {
            resize: Some(16),
            crop: Crop::Center(12),
            jpeg_quality: Some(75),
            blur_sigma: Some(1.0),
            pre_resize: Some(20),
        };
        t.validate().unwrap();
        // blur → shorter side 20 (40×30 → 26×20) → JPEG 75 → 16×16 → centre 12
        let blurred = gaussian_blur(&src, 1.0);
        let down = resize_bilinear(&blurred, 26, 20);
        let jpeg = reencode(&down, 75).unwrap();
        let want = center_crop(&resize_bilinear(&jpeg, 16, 16), 12);
        assert_eq!(
            apply_test(src, &t).unwrap(),
            Applied {
                image: want,
                upscaled: false
            }
        );
    }

    #[test]
    fn train_transform_is_a_function_of_the_rng() {
        let t = TrainTransform {
            load_size: Some(24),
            crop_size: 16,
            blur: BlurAug {
                prob: 0.5,
                sigma: [0.0, 2.0],
            },
            jpeg: JpegAug {
                prob: 0.5,
                quality: [60, 95],
            },
            ..TrainTransform::default()
        };
        t.validate().unwrap();
        let img = natural(32, 20, 4);
        let run = |seed| apply_train(img.clone(), &t, &mut rng_for(&[seed])).unwrap();
        assert_eq!(run(1), run(1));
        let outs: Vec<Applied> = (0..8).map(run).collect();
        assert!(outs
            .iter()
            .all(|a| a.image.dimensions() == (16, 16) && !a.upscaled));
        assert!(
            outs.windows(2).any(|w| w[0] != w[1]),
            "different seeds differ"
        );
    }

    #[test]
    fn train_crop_and_flip_select_pixels() {
        let t = TrainTransform {
            load_size: None,
            crop_size: 4,
            flip: true,
            ..TrainTransform::default()
        };
        let img = numbered(10, 10);
        let mut flipped = 0;
        for seed in 0..40 {
            let a = apply_train(img.clone(), &t, &mut rng_for(&[seed])).unwrap();
            let (x0, y0) = (a.image.get_pixel(0, 0)[0], a.image.get_pixel(0, 0)[1]);
            let x3 = a.image.get_pixel(3, 0)[0];
            assert!(x0 <= 9 && y0 <= 6 && (x3 + 3 == x0 || x0 + 3 == x3));
            flipped += usize::from(x3 + 3 == x0);
        }
        assert!((8..=32).contains(&flipped), "flip p = 0.5: {flipped}/40");
        // smaller than the crop: resized up and flagged
        let a = apply_train(numbered(3, 2), &t, &mut rng_for(&[0])).unwrap();
        assert!(a.upscaled && a.image.dimensions() == (4, 4));
    }

    #[test]
    fn validation_names_the_key() {
        let cases: Vec<(TrainTransform, &str)> = vec![
            (
                TrainTransform {
                    crop_size: 300,
                    ..Default::default()
                },
                "data.crop_size: 300 is larger than data.load_size 256",
            ),
            (
                TrainTransform {
                    blur: BlurAug {
                        prob: 1.5,
                        sigma: [0.0, 1.0],
                    },
                    ..Default::default()
                },
                "data.blur.prob",
            ),
            (
                TrainTransform {
                    blur: BlurAug {
                        prob: 0.1,
                        sigma: [2.0, 1.0],
                    },
                    ..Default::default()
                },
                "data.blur.sigma",
            ),
            (
                TrainTransform {
                    jpeg: JpegAug {
                        prob: 0.1,
                        quality: [0, 90],
                    },
                    ..Default::default()
                },
                "data.jpeg.quality",
            ),
        ];
        for (t, want) in cases {
            let err = t.validate().unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        }
        let bad = TestTransform {
            jpeg_quality: Some(101),
            ..Default::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("test.jpeg_quality"));
    }

    #[test]
    fn output_size_is_fixed_unless_full_size() {
        let fixed = Transform::Test(TestTransform {
            resize: Some(256),
            ..Default::default()
        });
        assert_eq!(fixed.output_size(), Some((256, 256)));
        assert_eq!(
            Transform::Test(TestTransform::default()).output_size(),
            None
        );
    }
}
