//! `synth.json`: what a synthetic benchmark holds and how it was made.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::family::Upsampler;

/// Manifest file name inside the benchmark folder.
pub const MANIFEST_FILE: &str = "synth.json";

/// Version of the manifest layout; bumped when a field changes meaning.
pub const MANIFEST_FORMAT: u32 = 1;

/// The benchmark's description, written last (its presence means the set is complete).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`] of the writer.
    pub format: u32,
    /// Master seed: every image follows from it (see `synth::image_seed`).
    pub seed: u64,
    /// Image side in pixels (square images).
    pub size: u32,
    /// Content classes, in order; train and val have one folder each.
    pub classes: Vec<String>,
    /// Weight of the fresh full-resolution high-pass detail added to fakes.
    pub detail_weight: f64,
    /// Standard deviation of the Gaussian sensor noise, in grey levels of 255.
    pub noise_sigma: f64,
    /// Quality of the JPEG round trip applied to every image before it is saved as PNG;
    /// `null` when none.
    pub jpeg_quality: Option<u8>,
    /// Every family, seen or not, with its counts.
    pub families: Vec<FamilyRecord>,
    /// Every image folder with its count; paths relative to the benchmark folder.
    pub folders: Vec<FolderRecord>,
    /// The transposed-convolution family's kernels, `[channel][ky][kx]` (multiples of
    /// 1/4096, so they print and parse exactly).
    pub tconv_kernel: Vec<Vec<Vec<f64>>>,
    /// A photo benchmark's photographs (`npr synth --reals`); absent for procedural scenes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub photos: Option<super::photos::PhotoSet>,
}

/// One fake family.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FamilyRecord {
    /// Name; also the test folder name.
    pub name: String,
    pub upsampler: Upsampler,
    /// The network, for a neural family (package, version, scale).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// Up-sampling factor (4/3 for the bicubic family).
    pub factor: f64,
    /// Side of the low-resolution render, pixels.
    pub low_res: u32,
    /// NPR scale at which the family's trace lives (1/factor).
    pub npr_scale: f64,
    /// Whether train and val contain this family.
    pub seen: bool,
    /// Number of fakes of this family per split.
    pub fakes: SplitCounts,
}

/// Image counts per split.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitCounts {
    pub train: usize,
    pub val: usize,
    pub test: usize,
}

/// A split of the benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// `train/{class}/…`
    Train,
    /// `val/{class}/…`
    Val,
    /// `test/{family}/…`
    Test,
}

impl Split {
    /// Folder name.
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
            Split::Test => "test",
        }
    }
}

/// One label folder of PNGs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FolderRecord {
    /// Path relative to the benchmark folder, `/`-separated, e.g. `train/clouds/1_fake`.
    pub path: String,
    pub split: Split,
    /// Content class (train, val) or family (test).
    pub group: String,
    /// 0 real, 1 fake.
    pub label: u8,
    /// Number of PNG files.
    pub count: usize,
}

/// Reads `dir/synth.json`.
pub fn read_manifest(dir: &Path) -> anyhow::Result<Manifest> {
    let path = dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {} (is {} a benchmark written by `npr synth`?)",
            path.display(),
            dir.display()
        )
    })?;
    let manifest: Manifest =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    anyhow::ensure!(
        manifest.format == MANIFEST_FORMAT,
        "{} has manifest format {}, this npr reads format {}; regenerate it with `npr synth`",
        path.display(),
        manifest.format,
        MANIFEST_FORMAT
    );
    Ok(manifest)
}

/// Writes `dir/synth.json` atomically (temporary file, then rename).
pub(crate) fn write_manifest(dir: &Path, manifest: &Manifest) -> anyhow::Result<()> {
    let path = dir.join(MANIFEST_FILE);
    let tmp = dir.join(format!(".{MANIFEST_FILE}.tmp"));
    let mut text = serde_json::to_string_pretty(manifest).context("serialising the manifest")?;
    text.push('\n');
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path)
        .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}
