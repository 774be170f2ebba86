//! `npr synth --reals DIR`: a benchmark from a folder of photographs (the set
//! `scripts/get_photos.sh` fetches, or one's own). Reals are crops of the photographs after
//! a ÷2 area down-scale; fakes are the same kind of crop brought back from a lower
//! resolution by each family's up-sampler, classical or neural (`render.rs` says how and
//! why). Splits are by scene (`scenes.rs`); `sources.csv` names every image's photograph,
//! and `npr train`/`npr test` refuse sets that share one (`data::check_photo_sources`).
//! Layout as the procedural benchmark's (one content class, `photo`), so everything that
//! reads `synth.json` — seen flags, true scales, scale supervision — works unchanged.
mod family;
mod render;
mod scenes;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::manifest::{self, FamilyRecord, FolderRecord, Manifest, Split, SplitCounts};
use super::{derived_rng, encode_png, prepare_out, SynthError, LABEL_DIRS};
use crate::data::{SourceRow, SOURCES_FILE};
use crate::progress::Progress;
use crate::upsample::Esrgan;
pub use family::{PhotoFamily, DEFAULT_SEEN};
use render::Halved;
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

/// One image to write.
struct Job {
    split: Split,
    /// `photo` (train, val) or the family (test).
    group: String,
    label: u8,
    family: Option<PhotoFamily>,
    /// Index into the usable photographs.
    photo: usize,
    x: usize,
    y: usize,
    path: String,
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

/// A photograph that gives crops: its record, file and size after the ÷2 down-scale.
/// Its pixels are decoded only when its crops are made, one photograph per worker, so a
/// folder of any size fits in memory.
struct Usable {
    record: usize,
    path: PathBuf,
    width: usize,
    height: usize,
}

impl Usable {
    /// The photograph decoded and halved ([`Halved`]).
    fn halved(&self) -> Result<Halved> {
        let img = crate::data::decode_file(&self.path, &crate::data::DecodeLimits::default())
            .map_err(|e| anyhow::anyhow!("{}: not decodable: {e}", self.path.display()))?;
        let halved = Halved::of(&img);
        anyhow::ensure!(
            (halved.width, halved.height) == (self.width, self.height),
            "{}: changed while the benchmark was written",
            self.path.display()
        );
        Ok(halved)
    }
}

/// Finds the photographs, reads their sizes and deals them to splits; photographs too small
/// for one region, or whose header is unreadable, are recorded as skipped (with why) and
/// give nothing.
fn load_photos(opts: &PhotoOptions) -> Result<(Vec<PhotoRecord>, Vec<Usable>)> {
    if !opts.reals.is_dir() {
        return Err(crate::usage!(
            "--reals {}: not a folder of photographs",
            opts.reals.display()
        ));
    }
    let found = scenes::find(&opts.reals)?;
    let side = opts.size as usize + 2 * MARGIN;
    let mut records = Vec::new();
    let mut usable = Vec::new();
    for f in found {
        let mut rec = f.record;
        let size = image::ImageReader::open(&f.path)
            .and_then(|r| r.with_guessed_format())
            .map_err(image::ImageError::IoError)
            .and_then(|r| r.into_dimensions());
        match size {
            Ok((w, h)) => {
                (rec.width, rec.height) = (w, h);
                let (width, height) = (w as usize / 2, h as usize / 2);
                if width < side || height < side {
                    rec.skipped = Some(format!(
                        "{w}×{h} px: after the ÷2 down-scale smaller than one {side}-px region (crop {} + margin {MARGIN} each side); photographs need at least {} px a side",
                        opts.size,
                        2 * side
                    ));
                } else {
                    usable.push(Usable {
                        record: records.len(),
                        path: f.path.clone(),
                        width,
                        height,
                    });
                }
            }
            Err(e) => rec.skipped = Some(format!("not readable as an image: {e}")),
        }
        if let Some(why) = &rec.skipped {
            eprintln!("note: {}: skipped, {why}", f.path.display());
        }
        records.push(rec);
    }
    let scenes: Vec<String> = usable
        .iter()
        .map(|u| records[u.record].scene.clone())
        .collect();
    let dealt = scenes::deal(&scenes, opts.seed).map_err(|e| {
        crate::usage!(
            "--reals {}: {e:#} ({} photograph(s) found, {} usable)",
            opts.reals.display(),
            records.len(),
            usable.len()
        )
    })?;
    for u in &usable {
        let rec = &mut records[u.record];
        rec.split = Some(dealt[&rec.scene]);
    }
    Ok((records, usable))
}

/// Every image, in a fixed order: train and val (per photograph: reals, then fakes of the
/// seen families in turn), then test (per family, per photograph: reals, then fakes).
fn plan(
    opts: &PhotoOptions,
    records: &[PhotoRecord],
    usable: &[Usable],
    families: &[PhotoFamily],
    seen: &[PhotoFamily],
) -> Vec<Job> {
    let side = opts.size as usize + 2 * MARGIN;
    let in_split = |split: Split| {
        usable
            .iter()
            .enumerate()
            .filter(move |(_, u)| records[u.record].split == Some(split))
    };
    let mut jobs = Vec::new();
    let mut push = |split: Split,
                    group: &str,
                    label: u8,
                    family: Option<PhotoFamily>,
                    photo: usize,
                    k: usize| {
        let u = &usable[photo];
        let mut rng = derived_rng(
            opts.seed,
            &format!(
                "{}/{}/{group}/{label}/{k}",
                records[u.record].file,
                split.name()
            ),
        );
        let x = rng.gen_range(0..=u.width - side);
        let y = rng.gen_range(0..=u.height - side);
        let file = match family {
            Some(f) => format!("{k:05}_{}.png", f.name()),
            None => format!("{k:05}.png"),
        };
        let path = format!(
            "{}/{group}/{}/{file}",
            split.name(),
            LABEL_DIRS[label as usize]
        );
        jobs.push(Job {
            split,
            group: group.to_string(),
            label,
            family,
            photo,
            x,
            y,
            path,
        });
    };
    for (split, per) in [
        (Split::Train, opts.train_per_photo),
        (Split::Val, opts.val_per_photo),
    ] {
        for label in 0..2u8 {
            let mut k = 0;
            for (photo, _) in in_split(split) {
                for _ in 0..per {
                    let family = (label == 1).then(|| seen[k % seen.len()]);
                    push(split, CLASS, label, family, photo, k);
                    k += 1;
                }
            }
        }
    }
    for &fam in families {
        for label in 0..2u8 {
            let mut k = 0;
            for (photo, _) in in_split(Split::Test) {
                for _ in 0..opts.test_per_photo {
                    push(
                        Split::Test,
                        &fam.name(),
                        label,
                        (label == 1).then_some(fam),
                        photo,
                        k,
                    );
                    k += 1;
                }
            }
        }
    }
    jobs
}

/// Writes the photo benchmark described by `opts`; returns its manifest (written last).
pub fn generate_from_photos(opts: &PhotoOptions) -> Result<Manifest> {
    let (families, seen) = check_options(opts)?;
    prepare_out(&opts.out, opts.overwrite)?;
    fs::create_dir_all(&opts.out).with_context(|| format!("creating {}", opts.out.display()))?;
    let (records, usable) = load_photos(opts)?;
    let jobs = plan(opts, &records, &usable, &families, &seen);
    let folders = super::create_folders(
        &opts.out,
        jobs.iter()
            .map(|j| (j.split, j.group.as_str(), j.label, j.path.as_str())),
    )?;

    let side = opts.size as usize + 2 * MARGIN;
    let size = opts.size as usize;
    let kernel = super::Recipe::new(size, 0.0, 0.0, None).kernel;
    let progress = Progress::new(
        format!("synth {}", opts.out.display()),
        jobs.len() as u64,
        "images",
    );
    let write = |job: &Job, img: &image::RgbImage| -> Result<()> {
        let path = opts.out.join(&job.path);
        fs::write(&path, encode_png(img)?)
            .with_context(|| format!("writing {}", path.display()))?;
        progress.inc(1);
        Ok(())
    };
    // One photograph per task: its reals and classical fakes are written, its neural
    // fakes' 8-bit inputs kept for the network's batches.
    let mut by_photo: Vec<Vec<usize>> = vec![Vec::new(); usable.len()];
    for (i, job) in jobs.iter().enumerate() {
        by_photo[job.photo].push(i);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads)
        .build()
        .context("starting the synth worker threads")?;
    let lows: Vec<Vec<(usize, Vec<u8>)>> = pool.install(|| {
        by_photo
            .par_iter()
            .enumerate()
            .map(|(photo, mine)| {
                let halved = usable[photo].halved()?;
                let mut lows = Vec::new();
                for &i in mine {
                    let job = &jobs[i];
                    let r = halved.region(job.x, job.y, side);
                    match job.family {
                        None => write(job, &render::real(&r, size))?,
                        Some(f @ PhotoFamily::Classical(c)) => write(
                            job,
                            &render::classical(c, &render::low_res(&r, f), side, size, &kernel),
                        )?,
                        Some(f @ PhotoFamily::Neural { .. }) => {
                            lows.push((i, render::pack(&render::low_res(&r, f))))
                        }
                    }
                }
                Ok(lows)
            })
            .collect::<Result<_>>()
    })?;
    let mut low_of: BTreeMap<usize, Vec<u8>> = lows.into_iter().flatten().collect();
    // Neural fakes: batches of one network, in job order.
    for &fam in families
        .iter()
        .filter(|f| matches!(f, PhotoFamily::Neural { .. }))
    {
        let PhotoFamily::Neural { capacity, scale } = fam else {
            continue;
        };
        let mine: Vec<usize> = (0..jobs.len())
            .filter(|&i| jobs[i].family == Some(fam))
            .collect();
        if mine.is_empty() {
            continue;
        }
        let net = Esrgan::load(&opts.upsamplers, capacity, scale)?;
        let n = fam.low_res(side);
        for batch in mine.chunks(NEURAL_BATCH) {
            let lows: Vec<_> = batch
                .iter()
                .map(|i| render::unpack(n, &low_of.remove(i).expect("kept in the first pass")))
                .collect();
            let imgs = render::neural(&net, &lows, size)?;
            for (&i, img) in batch.iter().zip(&imgs) {
                write(&jobs[i], img)?;
            }
        }
    }
    drop(progress);

    write_sources(opts, &records, &usable, &jobs, side)?;
    let manifest = build_manifest(opts, &families, &seen, &jobs, folders, records, &kernel);
    manifest::write_manifest(&opts.out, &manifest)?;
    Ok(manifest)
}

/// `sources.csv`: every image's photograph, scene and region.
fn write_sources(
    opts: &PhotoOptions,
    records: &[PhotoRecord],
    usable: &[Usable],
    jobs: &[Job],
    side: usize,
) -> Result<()> {
    let rows = jobs.iter().map(|j| {
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
    });
    crate::table::write(&opts.out.join(SOURCES_FILE), rows)
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

/// Fails when a scene's crops are in two splits of `rows` (the written `sources.csv`):
/// the benchmark's own guarantee, checked on what was written.
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
