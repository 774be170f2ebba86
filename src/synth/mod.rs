//! `npr synth`: a small synthetic benchmark whose fakes carry up-sampling traces at
//! known NPR scales (families, layout and calibration in DATASET_DETAILS.md).
//!
//! - A *real* image is a procedural scene (`content.rs`) rendered at full resolution,
//!   plus Gaussian sensor noise ([`NOISE_SIGMA`]).
//! - A *fake* is a scene of the same distribution rendered at the family's reduced
//!   resolution, brought to full size by the family's up-sampler (`family.rs`), plus
//!   fresh full-resolution high-pass detail ([`DETAIL_WEIGHT`]) — as a generator's later
//!   layers add texture — plus the same sensor noise.
//! - Layout (ForenSynths): `train/{class}/{0_real,1_fake}/*.png`, the same for `val`,
//!   and `test/{family}/{0_real,1_fake}/*.png` with fresh reals per family; `synth.json`
//!   ([`Manifest`]) records everything.
//! - Deterministic: every image has its own RNG, seeded from (seed, split, class or
//!   family, label, index), so files are byte-identical whatever the thread count.

mod content;
mod family;
mod manifest;
pub mod photos;

#[cfg(test)]
mod calibration;
#[cfg(test)]
mod tests;

use std::fs;
use std::path::PathBuf;

use anyhow::Context;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder, RgbImage};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::progress::Progress;

use content::{gauss, ContentClass, NoiseField, Planes, Scene, CLASSES};
pub use family::Family;
use family::TconvKernel;
pub use manifest::{
    read_manifest, FamilyRecord, FolderRecord, Manifest, Split, SplitCounts, MANIFEST_FILE,
};

/// Weight of the fresh full-resolution high-pass detail added to every fake after
/// up-sampling. Without it the fakes lack the top of the spectrum and are separable
/// from the spectrum alone (100 % on every family, DATASET_DETAILS.md, Calibration); 0.7 gave a useful
/// spread of accuracies in the calibration experiment. The detail fills exactly the
/// band the low-resolution render lacks, with the scene's own texture statistics, so
/// at weight 1 the fakes' power spectrum matches the reals' for the texture part.
pub const DETAIL_WEIGHT: f64 = 0.7;

/// Standard deviation of the Gaussian sensor noise added to reals and fakes alike, in
/// grey levels of 255 (σ = 4/255, DATASET_DETAILS.md, Calibration). It masks the faintest traces.
pub const NOISE_SIGMA: f64 = 4.0;

/// Names of the families in train and val by default: the two GAN-like ×2 ones.
pub const DEFAULT_SEEN: [&str; 2] = ["nearest_x2", "tconv_x2"];

/// Seen families of the `multiscale` preset: traces at two NPR scales (nearest ×2 → 0.5,
/// nearest ×4 → 0.25), so training rewards an attention that picks the right one. The
/// bilinear ×2/×4 families (same scales, another up-sampler) stay unseen.
pub const MULTISCALE_SEEN: [&str; 2] = ["nearest_x2", "nearest_x4"];

/// Name of the label folders.
const LABEL_DIRS: [&str; 2] = ["0_real", "1_fake"];

/// Options of `npr synth`.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthOptions {
    /// Output folder (created if missing).
    pub out: PathBuf,
    /// Master seed.
    pub seed: u64,
    /// Image side in pixels; a multiple of 8, at least 16 (so every family's
    /// low-resolution side is a whole number of pixels).
    pub size: u32,
    /// Reals, and fakes, per content class in train.
    pub train_per_class: usize,
    /// Reals, and fakes, per content class in val.
    pub val_per_class: usize,
    /// Reals, and fakes, per family in test.
    pub test_per_family: usize,
    /// Content classes to write, 1 to 4 (landscape, objects, textures, clouds).
    pub classes: usize,
    /// Families in train and val (their fakes alternate by index); the test split
    /// holds every family.
    pub seen: Vec<String>,
    /// Worker threads; 0 = one per core.
    pub threads: usize,
    /// Weight of the fakes' fresh high-pass detail ([`DETAIL_WEIGHT`]).
    pub detail_weight: f64,
    /// Sensor noise σ in grey levels of 255 ([`NOISE_SIGMA`]).
    pub noise_sigma: f64,
    /// Optional mild JPEG round trip (quality 1–100) applied to every image, real and
    /// fake, before it is saved as PNG; `None` (the default) for none.
    pub jpeg_quality: Option<u8>,
    /// Replace an existing benchmark in `out` (its `train`, `val`, `test` and
    /// `synth.json`; nothing else is touched). Without it an existing one is an error.
    pub overwrite: bool,
}

impl Default for SynthOptions {
    /// 64 px; 300 reals + 300 fakes per class in train (2,400 images, what the
    /// calibration experiment trained on), 50 + 50 per class in val, 200 + 200 per
    /// family in test: 5,600 PNGs, about 50 MB (the sensor noise does not compress),
    /// about 4 s to write on 2 cores (release build).
    fn default() -> Self {
        SynthOptions {
            out: PathBuf::from("synth"),
            seed: 0,
            size: 64,
            train_per_class: 300,
            val_per_class: 50,
            test_per_family: 200,
            classes: 4,
            seen: DEFAULT_SEEN.iter().map(|s| s.to_string()).collect(),
            threads: 0,
            detail_weight: DETAIL_WEIGHT,
            noise_sigma: NOISE_SIGMA,
            jpeg_quality: None,
            overwrite: false,
        }
    }
}

/// Bad options or an occupied output folder: a usage error (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// An option is out of range.
    #[error("invalid synth option `{option}`: {message}")]
    InvalidOption {
        /// Option name.
        option: &'static str,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// `seen` (or, with `--reals`, `families`) names a family that does not exist.
    #[error("unknown family `{name}` in `{option}`; the families are: {valid}")]
    UnknownFamily {
        /// The option that named it.
        option: &'static str,
        /// The name given.
        name: String,
        /// Comma-separated valid names.
        valid: String,
    },
    /// `out` already holds a benchmark and `overwrite` is off.
    #[error("{} already holds `{found}`; choose another folder or overwrite it (--force)", out.display())]
    OutputExists {
        /// The output folder.
        out: PathBuf,
        /// The entry found.
        found: String,
    },
}

/// How every image is made: the part of the options that decides pixel values.
pub(crate) struct Recipe {
    pub size: usize,
    pub detail_weight: f32,
    /// Sensor noise σ in `[0, 1]` intensity units.
    pub noise_sigma: f32,
    pub jpeg_quality: Option<u8>,
    pub kernel: TconvKernel,
}

/// Real, or fake of a family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Real,
    Fake(Family),
}

/// One file to write.
struct FileJob {
    split: Split,
    group: String,
    label: u8,
    index: usize,
    class: ContentClass,
    kind: Kind,
    /// Relative path, `/`-separated.
    path: String,
}

impl Recipe {
    /// `noise_sigma` in grey levels, as in [`SynthOptions`].
    pub(crate) fn new(
        size: usize,
        detail_weight: f64,
        noise_sigma: f64,
        jpeg_quality: Option<u8>,
    ) -> Recipe {
        let kernel = family::family_tconv_kernel();
        Recipe {
            size,
            detail_weight: detail_weight as f32,
            noise_sigma: (noise_sigma / 255.0) as f32,
            jpeg_quality,
            kernel,
        }
    }

    /// Renders one image from its own RNG.
    pub(crate) fn render(
        &self,
        class: ContentClass,
        kind: Kind,
        rng: &mut ChaCha8Rng,
    ) -> anyhow::Result<RgbImage> {
        let n = self.size;
        let scene = Scene::sample(rng, class, n);
        let mut img = match kind {
            Kind::Real => scene.render(n),
            Kind::Fake(fam) => {
                let low_n = fam.low_res(n);
                let low = scene.render(low_n);
                let mut img = family::upsample(fam, &low, n, &self.kernel);
                // Fresh detail in exactly the band the low-resolution render lacks
                // (energy-complementary to its anti-aliasing roll-off).
                let detail = NoiseField::sample(rng, scene.detail_spec(), n as f32 / 2.0);
                let w = self.detail_weight;
                detail.add_to(&mut img, |f| {
                    let low_gain = content::band_gain(f, low_n);
                    w * (1.0 - low_gain * low_gain).sqrt() * content::band_gain(f, n)
                });
                img
            }
        };
        for v in img.data.iter_mut() {
            *v += self.noise_sigma * gauss(rng);
        }
        let rgb = quantize(&img);
        match self.jpeg_quality {
            None => Ok(rgb),
            Some(q) => jpeg_round_trip(&rgb, q),
        }
    }
}

/// Rounds `[0, 1]` planes to interleaved RGB8.
fn quantize(img: &Planes) -> RgbImage {
    let n = img.n;
    let nn = n * n;
    let mut raw = vec![0u8; 3 * nn];
    for i in 0..nn {
        for c in 0..3 {
            raw[3 * i + c] = (img.data[c * nn + i].clamp(0.0, 1.0) * 255.0).round() as u8;
        }
    }
    RgbImage::from_raw(n as u32, n as u32, raw).expect("3·n·n bytes")
}

fn jpeg_round_trip(img: &RgbImage, quality: u8) -> anyhow::Result<RgbImage> {
    let mut buf = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, quality)
        .encode(
            img.as_raw(),
            img.width(),
            img.height(),
            ExtendedColorType::Rgb8,
        )
        .context("JPEG-encoding a synthetic image")?;
    Ok(
        image::load_from_memory_with_format(&buf, image::ImageFormat::Jpeg)
            .context("decoding a synthetic JPEG")?
            .to_rgb8(),
    )
}

/// PNG bytes of `img` (fixed settings: the encoding is deterministic).
fn encode_png(img: &RgbImage) -> anyhow::Result<Vec<u8>> {
    let mut buf = Vec::new();
    PngEncoder::new_with_quality(&mut buf, CompressionType::Default, FilterType::Adaptive)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            ExtendedColorType::Rgb8,
        )
        .context("PNG-encoding a synthetic image")?;
    Ok(buf)
}

/// SplitMix64 step (Steele et al. 2014): a bijective mixer for seed derivation.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// An RNG determined by the master seed and a key string (FNV-1a of the key mixed
/// into the seed with SplitMix64, expanded to ChaCha8's 256-bit seed).
pub(crate) fn derived_rng(seed: u64, key: &str) -> ChaCha8Rng {
    let mut h: u64 = 0xCBF2_9CE4_8422_2325;
    for b in key.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    let mut state = seed;
    let mut state = splitmix64(&mut state) ^ h;
    let mut bytes = [0u8; 32];
    for chunk in bytes.chunks_exact_mut(8) {
        chunk.copy_from_slice(&splitmix64(&mut state).to_le_bytes());
    }
    ChaCha8Rng::from_seed(bytes)
}

/// The RNG of one image: key `split/group/label/index`.
fn image_rng(seed: u64, split: Split, group: &str, label: u8, index: usize) -> ChaCha8Rng {
    derived_rng(
        seed,
        &format!("{}/{}/{}/{}", split.name(), group, label, index),
    )
}

/// Checks the options; returns the seen families in the given order.
fn check_options(opts: &SynthOptions) -> Result<Vec<Family>, SynthError> {
    let bad = |option, message: String| Err(SynthError::InvalidOption { option, message });
    if opts.size < 16 || !opts.size.is_multiple_of(8) {
        return bad(
            "size",
            format!(
                "{} px; use a multiple of 8, at least 16 (e.g. 64)",
                opts.size
            ),
        );
    }
    if opts.size > 4096 {
        return bad("size", format!("{} px; at most 4096", opts.size));
    }
    if !(1..=CLASSES.len()).contains(&opts.classes) {
        return bad(
            "classes",
            format!("{}; use 1 to {}", opts.classes, CLASSES.len()),
        );
    }
    for (option, v) in [
        ("train_per_class", opts.train_per_class),
        ("val_per_class", opts.val_per_class),
        ("test_per_family", opts.test_per_family),
    ] {
        if v == 0 {
            return bad(
                option,
                "0; every split needs at least one image per folder".into(),
            );
        }
    }
    if !(0.0..=4.0).contains(&opts.detail_weight) {
        return bad(
            "detail_weight",
            format!(
                "{}; use 0 to 4 (default {DETAIL_WEIGHT})",
                opts.detail_weight
            ),
        );
    }
    if !(0.0..=64.0).contains(&opts.noise_sigma) {
        return bad(
            "noise_sigma",
            format!(
                "{}; use 0 to 64 grey levels (default {NOISE_SIGMA})",
                opts.noise_sigma
            ),
        );
    }
    if let Some(q) = opts.jpeg_quality {
        if !(1..=100).contains(&q) {
            return bad("jpeg_quality", format!("{q}; use 1 to 100"));
        }
    }
    if opts.seen.is_empty() {
        return bad(
            "seen",
            "empty; name at least one family for train and val".into(),
        );
    }
    let mut seen = Vec::new();
    for name in &opts.seen {
        let fam = Family::from_name(name).ok_or_else(|| SynthError::UnknownFamily {
            option: "seen",
            name: name.clone(),
            valid: Family::ALL.map(|f| f.name()).join(", "),
        })?;
        if seen.contains(&fam) {
            return bad("seen", format!("`{name}` is listed twice"));
        }
        seen.push(fam);
    }
    Ok(seen)
}

/// Every file of the benchmark, in a fixed order.
fn plan(opts: &SynthOptions, seen: &[Family]) -> Vec<FileJob> {
    let classes = &CLASSES[..opts.classes];
    let mut jobs = Vec::new();
    for (split, per) in [
        (Split::Train, opts.train_per_class),
        (Split::Val, opts.val_per_class),
    ] {
        for &class in classes {
            for label in 0..2u8 {
                for index in 0..per {
                    let (kind, file) = if label == 0 {
                        (Kind::Real, format!("{index:05}.png"))
                    } else {
                        let fam = seen[index % seen.len()];
                        (Kind::Fake(fam), format!("{index:05}_{}.png", fam.name()))
                    };
                    jobs.push(FileJob {
                        split,
                        group: class.name().to_string(),
                        label,
                        index,
                        class,
                        kind,
                        path: format!(
                            "{}/{}/{}/{file}",
                            split.name(),
                            class.name(),
                            LABEL_DIRS[label as usize]
                        ),
                    });
                }
            }
        }
    }
    for fam in Family::ALL {
        for label in 0..2u8 {
            for index in 0..opts.test_per_family {
                let class = classes[index % classes.len()];
                let kind = if label == 0 {
                    Kind::Real
                } else {
                    Kind::Fake(fam)
                };
                jobs.push(FileJob {
                    split: Split::Test,
                    group: fam.name().to_string(),
                    label,
                    index,
                    class,
                    kind,
                    path: format!(
                        "test/{}/{}/{index:05}_{}.png",
                        fam.name(),
                        LABEL_DIRS[label as usize],
                        class.name()
                    ),
                });
            }
        }
    }
    jobs
}

/// Refuses to mix with an existing benchmark, or clears it when `overwrite` is set.
fn prepare_out(out: &std::path::Path, overwrite: bool) -> anyhow::Result<()> {
    for entry in [
        "train",
        "val",
        "test",
        MANIFEST_FILE,
        crate::data::SOURCES_FILE,
    ] {
        let p = out.join(entry);
        if p.symlink_metadata().is_err() {
            continue;
        }
        if !overwrite {
            return Err(SynthError::OutputExists {
                out: out.to_path_buf(),
                found: entry.to_string(),
            }
            .into());
        }
        if p.is_dir() {
            fs::remove_dir_all(&p).with_context(|| format!("removing {}", p.display()))?;
        } else {
            fs::remove_file(&p).with_context(|| format!("removing {}", p.display()))?;
        }
    }
    // A path under a file, a read-only or full disk: exit 2 before any image is drawn.
    crate::atomic::check_writable(out).context("--out")
}

/// Writes the benchmark described by `opts` and returns its manifest (also written to
/// `out/synth.json`, last).
pub fn generate(opts: &SynthOptions) -> anyhow::Result<Manifest> {
    let seen = check_options(opts)?;
    prepare_out(&opts.out, opts.overwrite)?;
    let recipe = Recipe::new(
        opts.size as usize,
        opts.detail_weight,
        opts.noise_sigma,
        opts.jpeg_quality,
    );
    let jobs = plan(opts, &seen);

    // Folders first (sequential), then the images (parallel, each from its own RNG).
    let folders = create_folders(
        &opts.out,
        jobs.iter()
            .map(|j| (j.split, j.group.as_str(), j.label, j.path.as_str())),
    )?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads)
        .build()
        .context("starting the synth worker threads")?;
    let progress = Progress::new(
        format!("synth {}", opts.out.display()),
        jobs.len() as u64,
        "images",
    );
    pool.install(|| {
        jobs.par_iter().try_for_each(|job| -> anyhow::Result<()> {
            let mut rng = image_rng(opts.seed, job.split, &job.group, job.label, job.index);
            let img = recipe.render(job.class, job.kind, &mut rng)?;
            let path = opts.out.join(&job.path);
            fs::write(&path, encode_png(&img)?)
                .with_context(|| format!("writing {}", path.display()))?;
            progress.inc(1);
            Ok(())
        })
    })?;
    drop(progress); // `npr synth` says how many images it wrote

    let manifest = build_manifest(opts, &seen, &recipe, &jobs, folders);
    manifest::write_manifest(&opts.out, &manifest)?;
    Ok(manifest)
}

/// Creates the folder of each file, `(split, group, label, relative path)` in folder order,
/// and counts the files per folder.
fn create_folders<'a>(
    out: &std::path::Path,
    files: impl Iterator<Item = (Split, &'a str, u8, &'a str)>,
) -> anyhow::Result<Vec<FolderRecord>> {
    let mut folders: Vec<FolderRecord> = Vec::new();
    for (split, group, label, path) in files {
        let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        match folders.last_mut() {
            Some(f) if f.path == dir => f.count += 1,
            _ => {
                fs::create_dir_all(out.join(dir))
                    .with_context(|| format!("creating {}", out.join(dir).display()))?;
                folders.push(FolderRecord {
                    path: dir.to_string(),
                    split,
                    group: group.to_string(),
                    label,
                    count: 1,
                });
            }
        }
    }
    Ok(folders)
}

/// The transposed-convolution kernels as the manifest records them.
fn kernel_record(kernel: &TconvKernel) -> Vec<Vec<Vec<f64>>> {
    kernel
        .iter()
        .map(|kc| {
            kc.iter()
                .map(|row| row.iter().map(|&w| w as f64).collect())
                .collect()
        })
        .collect()
}

fn build_manifest(
    opts: &SynthOptions,
    seen: &[Family],
    recipe: &Recipe,
    jobs: &[FileJob],
    folders: Vec<FolderRecord>,
) -> Manifest {
    let families = Family::ALL
        .into_iter()
        .map(|fam| {
            let mut fakes = SplitCounts::default();
            for job in jobs.iter().filter(|j| j.kind == Kind::Fake(fam)) {
                match job.split {
                    Split::Train => fakes.train += 1,
                    Split::Val => fakes.val += 1,
                    Split::Test => fakes.test += 1,
                }
            }
            let (num, den) = fam.factor();
            FamilyRecord {
                name: fam.name().to_string(),
                upsampler: fam.upsampler(),
                network: None,
                factor: num as f64 / den as f64,
                low_res: fam.low_res(opts.size as usize) as u32,
                npr_scale: fam.npr_scale(),
                seen: seen.contains(&fam),
                fakes,
            }
        })
        .collect();
    Manifest {
        format: manifest::MANIFEST_FORMAT,
        seed: opts.seed,
        size: opts.size,
        classes: CLASSES[..opts.classes]
            .iter()
            .map(|c| c.name().to_string())
            .collect(),
        detail_weight: opts.detail_weight,
        noise_sigma: opts.noise_sigma,
        jpeg_quality: opts.jpeg_quality,
        families,
        folders,
        tconv_kernel: kernel_record(&recipe.kernel),
        photos: None,
    }
}
