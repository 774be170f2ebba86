//! The super-resolution networks of UpscalerJS (npm `@upscalerjs/esrgan-slim`, `-medium`,
//! `-thick` 1.0.0, MIT, Kevin Scott), run from the packages' own TF.js files
//! (`models/x{2,3,4,8}/model.json` + shards, fetched by `scripts/get_photos.sh` into
//! `datasets/upsamplers/esrgan-<capacity>/x<scale>/`).
//!
//! - slim and medium are RDNs (Zhang et al., "Residual Dense Network for Image
//!   Super-Resolution", CVPR 2018, as trained by idealo's ISR on DIV2K): shallow features,
//!   2 (slim, growth 4) or 10 (medium, growth 64) residual dense blocks of one conv each,
//!   global fusion, then conv 5×5 → conv → conv to 3·s² channels → nearest ×s
//!   up-sampling → conv 3×3 to RGB. 0.23 M (slim ×4) and 0.70 M (medium ×4) parameters.
//! - thick is an RRDN (ESRGAN's residual-in-residual dense blocks, Wang et al., ECCV 2018
//!   workshops): 10 blocks of 3 dense blocks of 4 convs with residual scaling β = 0.2, then
//!   depth-to-space by s (sub-pixel convolution). 7.26 M parameters (×4).
//!
//! Input range. The packages' model definition (`packages/shared/src/esrgan/esrgan.ts`)
//! declares `inputRange: [0, 255]` for architecture `rdn` (slim, medium) and `[0, 1]` for
//! the others (thick). Checked against the packages' own sample outputs (`assets/fixture.png`
//! → `assets/samples/{2,3,4}x/result.png`): with those ranges the rounded output reproduces
//! the sample at ≈ 94–98 dB PSNR (at most one grey level off, on a few pixels); with the
//! other range it is 40–50 dB (up to 22 levels off). `tests/it/upsample.rs` repeats that check
//! on every capacity that is fetched.
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use image::RgbImage;
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::tfjs::TfjsModel;

/// Where `scripts/get_photos.sh` puts the models, relative to the repository.
pub const DEFAULT_ROOT: &str = "datasets/upsamplers";

/// The scales each package ships.
pub const SCALES: [i64; 4] = [2, 3, 4, 8];

/// One of the three packages, by network size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Capacity {
    Slim,
    Medium,
    Thick,
}

/// The pixel range a network was trained on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputRange {
    /// 0–255
    Byte,
    /// 0–1
    Unit,
}

impl InputRange {
    /// The value that stands for white.
    pub fn white(self) -> f64 {
        match self {
            InputRange::Byte => 255.0,
            InputRange::Unit => 1.0,
        }
    }
}

impl Capacity {
    pub const ALL: [Capacity; 3] = [Capacity::Slim, Capacity::Medium, Capacity::Thick];

    /// `slim`, `medium`, `thick`.
    pub fn name(self) -> &'static str {
        match self {
            Capacity::Slim => "slim",
            Capacity::Medium => "medium",
            Capacity::Thick => "thick",
        }
    }

    /// The npm package.
    pub fn package(self) -> String {
        format!("@upscalerjs/esrgan-{}", self.name())
    }

    /// The range the package's model definition declares (see the module doc).
    pub fn input_range(self) -> InputRange {
        match self {
            Capacity::Slim | Capacity::Medium => InputRange::Byte, // architecture "rdn"
            Capacity::Thick => InputRange::Unit,                   // architecture "rrdn"
        }
    }

    /// `ROOT/esrgan-<capacity>/x<scale>`: the folder holding `model.json` and its shards.
    pub fn model_dir(self, root: &Path, scale: i64) -> PathBuf {
        root.join(format!("esrgan-{}", self.name()))
            .join(format!("x{scale}"))
    }
}

impl std::fmt::Display for Capacity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "esrgan-{}", self.name())
    }
}

/// One network of one package at one scale.
#[derive(Debug)]
pub struct Esrgan {
    capacity: Capacity,
    scale: i64,
    model: TfjsModel,
}

impl Esrgan {
    /// Loads `ROOT/esrgan-<capacity>/x<scale>/model.json`; `ROOT` is usually [`DEFAULT_ROOT`].
    pub fn load(root: &Path, capacity: Capacity, scale: i64) -> Result<Self> {
        ensure!(
            SCALES.contains(&scale),
            "{capacity} ships scales {SCALES:?}, not {scale}"
        );
        let dir = capacity.model_dir(root, scale);
        let model = TfjsModel::load(&dir).with_context(|| format!("{capacity} x{scale}"))?;
        let factor = model.upscale_factor();
        ensure!(
            factor == (scale, scale),
            "{}: the graph up-samples by {factor:?}, not by {scale} as its folder says",
            dir.display()
        );
        Ok(Esrgan {
            capacity,
            scale,
            model,
        })
    }

    pub fn capacity(&self) -> Capacity {
        self.capacity
    }

    pub fn scale(&self) -> i64 {
        self.scale
    }

    /// `x`: [b, 3, h, w] in 0–255 → [b, 3, h·s, w·s] in 0–255, neither clamped nor rounded.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_as(x, self.capacity.input_range())
    }

    /// As [`Esrgan::forward`], but feeding the network `range` instead of the one its
    /// package declares (for the check that settles the range; wrong ranges give worse images).
    pub fn forward_as(&self, x: &Tensor, range: InputRange) -> Result<Tensor> {
        let gain = range.white() / 255.0;
        let (_, _, h, w) = x.size4().context("the input must be [b, 3, h, w]")?;
        let y = self.model.forward(&(x.to_kind(Kind::Float) * gain))? / gain;
        let (_, c, oh, ow) = y.size4()?;
        ensure!(
            (c, oh, ow) == (3, h * self.scale, w * self.scale),
            "{} x{} turned {h}×{w} into {c} channels of {oh}×{ow}",
            self.capacity,
            self.scale
        );
        Ok(y)
    }

    /// Up-samples an image by the network's scale: the output rounded to the nearest grey
    /// level and clamped to 0–255 (as UpscalerJS clips to its output range).
    pub fn upsample(&self, img: &RgbImage) -> Result<RgbImage> {
        let (w, h) = (img.width() as i64, img.height() as i64);
        let x = Tensor::from_slice(img.as_raw())
            .view([1, h, w, 3])
            .permute([0, 3, 1, 2]);
        let y = tch::no_grad(|| self.forward(&x))?;
        let bytes: Vec<u8> = y
            .round()
            .clamp(0.0, 255.0)
            .to_kind(Kind::Uint8)
            .squeeze_dim(0)
            .permute([1, 2, 0]) // [h·s, w·s, 3]
            .reshape([-1])
            .try_into()?;
        let s = self.scale as u32;
        Ok(RgbImage::from_raw(img.width() * s, img.height() * s, bytes)
            .expect("h·s × w·s × 3 bytes"))
    }
}
