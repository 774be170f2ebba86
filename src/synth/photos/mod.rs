//! `npr synth --reals DIR`: a benchmark from a folder of photographs (the set
//! `scripts/get_photos.sh` fetches, or one's own). Reals are crops of the photographs after
//! a ÷2 area down-scale; fakes are the same kind of crop brought back from a lower
//! resolution by each family's up-sampler, classical or neural (`render.rs` says how and
//! why). Splits are by scene (`scenes.rs`); `sources.csv` names every image's photograph,
//! and `npr train`/`npr test` refuse sets that share one (`data::check_photo_sources`).
//! Layout as the procedural benchmark's (one content class, `photo`), so everything that
//! reads `synth.json` — seen flags, true scales, scale supervision — works unchanged.
mod family;
mod plan;
mod render;
mod scenes;
mod write;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use super::manifest::{self, FamilyRecord, FolderRecord, Manifest, Split, SplitCounts};
use super::{prepare_out, SynthError};
use crate::data::{SourceRow, SOURCES_FILE};
pub use family::{PhotoFamily, DEFAULT_SEEN};
use plan::{load_photos, plan, Job, Usable};
pub use render::MARGIN;
pub use scenes::PhotoRecord;

/// The content class of every train and val image.
pub const CLASS: &str = "photo";

/// Neural fakes per forward pass (fixed, so the batches — and the bytes — do not depend on
/// the thread count).
const NEURAL_BATCH: usize = 32;

/// Options of `npr synth --reals`.
#[derive(Clone, Debug, PartialEq)]
pub struct PhotoOptions {
    /// The folder of photographs (searched recursively).
    pub reals: PathBuf,
    /// Where `esrgan-<capacity>/x<scale>/model.json` are.
    pub upsamplers: PathBuf,
    pub out: PathBuf,
    pub seed: u64,
    /// Crop side, pixels: a multiple of 24 (every family's factor divides it).
    pub size: u32,
    /// Reals, and fakes, per training photograph.
    pub train_per_photo: usize,
    /// Reals, and fakes, per validation photograph.
    pub val_per_photo: usize,
    /// Reals, and fakes, per test photograph and family.
    pub test_per_photo: usize,
    /// Families in train and val (their fakes alternate by index).
    pub seen: Vec<String>,
    /// Families written to test (the seen ones among them); empty: every available one.
    pub families: Vec<String>,
    pub threads: usize,
    pub overwrite: bool,
}

impl Default for PhotoOptions {
    /// 48-px crops; 24 reals + 24 fakes per training or validation photograph, 6 + 6 per
    /// test photograph and family.
    fn default() -> Self {
        PhotoOptions {
            reals: PathBuf::from("datasets/photos"),
            upsamplers: PathBuf::from(crate::upsample::esrgan::DEFAULT_ROOT),
            out: PathBuf::from("datasets/photo_bench"),
            seed: 0,
            size: 48,
            train_per_photo: 24,
            val_per_photo: 24,
            test_per_photo: 6,
            seen: DEFAULT_SEEN.iter().map(|s| s.to_string()).collect(),
            families: Vec::new(),
            threads: 0,
            overwrite: false,
        }
    }
}

/// What the photo benchmark adds to `synth.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhotoSet {
    /// The folder of photographs, as given.
    pub reals: String,
    /// Every photograph found, with its scene, split, or why it gave no crops.
    pub photos: Vec<PhotoRecord>,
    /// Area down-scale applied to each photograph before cropping.
    pub down_scale: u32,
    /// Context around each crop for the fakes, pixels of the down-scaled photograph.
    pub margin: u32,
    /// The per-image list of source photographs (`sources.csv`).
    pub sources: String,
}

/// Checks the options; returns the test families in order and the seen ones.
fn check_options(opts: &PhotoOptions) -> Result<(Vec<PhotoFamily>, Vec<PhotoFamily>), SynthError> {
    let bad = |option, message: String| Err(SynthError::InvalidOption { option, message });
    if opts.size < 24 || !opts.size.is_multiple_of(24) || opts.size > 480 {
        return bad(
            "size",
            format!("{} px; with --reals use a multiple of 24 from 24 to 480 (every family's factor — 2, 3, 4, 8, 4/3 — must divide it), e.g. 48", opts.size),
        );
    }
    for (option, v) in [
        ("train_per_photo", opts.train_per_photo),
        ("val_per_photo", opts.val_per_photo),
        ("test_per_photo", opts.test_per_photo),
    ] {
        if v == 0 {
            return bad(
                option,
                "0; every split needs at least one image per photograph".into(),
            );
        }
    }
    let available = PhotoFamily::available(&opts.upsamplers);
    let valid = || {
        available
            .iter()
            .map(|f| f.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let parse = |names: &[String], option: &'static str| -> Result<Vec<PhotoFamily>, SynthError> {
        let mut out = Vec::new();
        for name in names {
            let fam = PhotoFamily::from_name(name)
                .filter(|f| available.contains(f))
                .ok_or_else(|| SynthError::UnknownFamily {
                    option,
                    name: name.clone(),
                    valid: format!(
                        "{} (neural families need their model files under {}: scripts/get_photos.sh)",
                        valid(),
                        opts.upsamplers.display()
                    ),
                })?;
            if out.contains(&fam) {
                return Err(SynthError::InvalidOption {
                    option,
                    message: format!("`{name}` is listed twice"),
                });
            }
            out.push(fam);
        }
        Ok(out)
    };
    let seen = parse(&opts.seen, "seen")?;
    if seen.is_empty() {
        return bad(
            "seen",
            "empty; name at least one family for train and val".into(),
        );
    }
    let families = match opts.families.is_empty() {
        true => available.clone(),
        false => parse(&opts.families, "families")?,
    };
    if let Some(f) = seen.iter().find(|f| !families.contains(f)) {
        return bad(
            "families",
            format!("the seen family `{}` must be among them", f.name()),
        );
    }
    Ok((families, seen))
}

/// Writes the photo benchmark described by `opts`; returns its manifest (written last).
/// Everything that can be wrong with the input — options, photographs, networks — is
/// found before `--out` is touched, so a failed run leaves an earlier benchmark in place.
pub fn generate_from_photos(opts: &PhotoOptions) -> Result<Manifest> {
    let (families, seen) = check_options(opts)?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads)
        .build()
        .context("starting the synth worker threads")?;
    let (records, usable) = load_photos(opts, &pool)?;
    let nets = write::load_networks(&opts.upsamplers, &families)?;
    let jobs = plan(opts, &records, &usable, &families, &seen);
    let rows = source_rows(opts, &records, &usable, &jobs);
    check_sources(&rows)?;

    prepare_out(&opts.out, opts.overwrite)?;
    fs::create_dir_all(&opts.out).with_context(|| format!("creating {}", opts.out.display()))?;
    let folders = super::create_folders(
        &opts.out,
        jobs.iter()
            .map(|j| (j.split, j.group.as_str(), j.label, j.path.as_str())),
    )?;
    let kernel = super::family::family_tconv_kernel();
    write::images(opts, &jobs, &usable, &nets, &kernel, &pool)?;
    crate::table::write(&opts.out.join(SOURCES_FILE), rows)?;
    let manifest = build_manifest(opts, &families, &seen, &jobs, folders, records, &kernel);
    manifest::write_manifest(&opts.out, &manifest)?;
    Ok(manifest)
}

/// The rows of `sources.csv`: every image's photograph, scene and region.
fn source_rows(
    opts: &PhotoOptions,
    records: &[PhotoRecord],
    usable: &[Usable],
    jobs: &[Job],
) -> Vec<SourceRow> {
    let side = render::region_side(opts.size);
    jobs.iter()
        .map(|j| {
            let rec = &records[usable[j.photo].record];
            SourceRow {
                path: j.path.clone(),
                split: j.split.name().to_string(),
                label: j.label,
                family: j.family.map(|f| f.name()).unwrap_or_default(),
                photo: rec.file.clone(),
                photo_sha256: rec.sha256.clone(),
                scene: rec.scene.clone(),
                x: j.x as u32,
                y: j.y as u32,
                side: side as u32,
            }
        })
        .collect()
}

fn build_manifest(
    opts: &PhotoOptions,
    families: &[PhotoFamily],
    seen: &[PhotoFamily],
    jobs: &[Job],
    folders: Vec<FolderRecord>,
    photos: Vec<PhotoRecord>,
    kernel: &super::family::TconvKernel,
) -> Manifest {
    let mut counts: BTreeMap<String, SplitCounts> = BTreeMap::new();
    for j in jobs {
        if let Some(f) = j.family {
            let c = counts.entry(f.name()).or_default();
            match j.split {
                Split::Train => c.train += 1,
                Split::Val => c.val += 1,
                Split::Test => c.test += 1,
            }
        }
    }
    let families = families
        .iter()
        .map(|&f| {
            let (num, den) = f.factor();
            FamilyRecord {
                name: f.name(),
                upsampler: f.upsampler(),
                network: f.network(),
                factor: num as f64 / den as f64,
                low_res: f.low_res(opts.size as usize) as u32,
                npr_scale: f.npr_scale(),
                seen: seen.contains(&f),
                fakes: counts.get(&f.name()).copied().unwrap_or_default(),
            }
        })
        .collect();
    Manifest {
        format: manifest::MANIFEST_FORMAT,
        seed: opts.seed,
        size: opts.size,
        classes: vec![CLASS.to_string()],
        detail_weight: 0.0,
        noise_sigma: 0.0,
        jpeg_quality: None,
        families,
        folders,
        tconv_kernel: super::kernel_record(kernel),
        photos: Some(PhotoSet {
            reals: opts.reals.display().to_string(),
            photos,
            down_scale: 2,
            margin: MARGIN as u32,
            sources: SOURCES_FILE.to_string(),
        }),
    }
}

/// Fails when a scene's crops are in two splits of `rows` (`sources.csv`): the
/// benchmark's own guarantee, checked on the rows before they are written.
pub fn check_sources(rows: &[SourceRow]) -> Result<()> {
    let mut split_of: BTreeMap<&str, &str> = BTreeMap::new();
    for r in rows {
        let s = split_of.entry(&r.scene).or_insert(&r.split);
        if *s != r.split {
            bail!(
                "scene `{}` ({}) is in both {} and {}",
                r.scene,
                r.photo,
                s,
                r.split
            );
        }
    }
    Ok(())
}
