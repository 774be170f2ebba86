//! Which images a photo benchmark holds: the photographs that give crops, and every image
//! with its split, label, family, source photograph and region, in a fixed order.
use std::path::{Path, PathBuf};

use anyhow::Result;
use rand::Rng;
use rayon::prelude::*;

use super::family::PhotoFamily;
use super::render::Halved;
use super::render::{region_side, MARGIN};
use super::scenes::{self, PhotoRecord};
use super::{PhotoOptions, CLASS};
use crate::synth::{derived_rng, Split, LABEL_DIRS};

/// One image to write.
pub(super) struct Job {
    pub(super) split: Split,
    /// `photo` (train, val) or the family (test).
    pub(super) group: String,
    pub(super) label: u8,
    pub(super) family: Option<PhotoFamily>,
    /// Index into the usable photographs.
    pub(super) photo: usize,
    pub(super) x: usize,
    pub(super) y: usize,
    pub(super) path: String,
}

/// A photograph that gives crops: its record, file and size after the ÷2 down-scale.
/// Its pixels are decoded only when its crops are made, one photograph per worker, so a
/// folder of any size fits in memory.
pub(super) struct Usable {
    pub(super) record: usize,
    pub(super) path: PathBuf,
    pub(super) width: usize,
    pub(super) height: usize,
}

impl Usable {
    /// The photograph decoded and halved ([`Halved`]).
    pub(super) fn halved(&self) -> Result<Halved> {
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

/// Finds the photographs, decodes each once (in parallel, within the tool's decode limits;
/// the pixels are dropped again) and deals them to splits. Photographs that are unreadable,
/// undecodable, beyond the limits or too small for one region are recorded as skipped,
/// with why, and give nothing — found here, before anything is written.
pub(super) fn load_photos(
    opts: &PhotoOptions,
    pool: &rayon::ThreadPool,
) -> Result<(Vec<PhotoRecord>, Vec<Usable>)> {
    if !opts.reals.is_dir() {
        return Err(crate::usage!(
            "--reals {}: not a folder of photographs",
            opts.reals.display()
        ));
    }
    if resolved(&opts.out).starts_with(resolved(&opts.reals)) {
        return Err(crate::usage!(
            "--out {} is inside --reals {}: its images would be taken for photographs by the next run; write the benchmark elsewhere",
            opts.out.display(),
            opts.reals.display()
        ));
    }
    let found = scenes::find(&opts.reals)?;
    let limits = crate::data::DecodeLimits::default();
    let sizes: Vec<Option<Result<(u32, u32), String>>> = pool.install(|| {
        found
            .par_iter()
            .map(|f| {
                f.record.skipped.is_none().then(|| {
                    crate::data::decode_file(&f.path, &limits)
                        .map(|img| img.dimensions())
                        .map_err(|e| format!("not decodable: {e}"))
                })
            })
            .collect()
    });
    let side = region_side(opts.size);
    let mut records = Vec::new();
    let mut usable = Vec::new();
    for (f, size) in found.into_iter().zip(sizes) {
        let mut rec = f.record;
        match size {
            None => {}
            Some(Err(why)) => rec.skipped = Some(why),
            Some(Ok((w, h))) => {
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

/// `path` absolute, with symbolic links and `..` resolved as far as it exists.
fn resolved(path: &Path) -> PathBuf {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    loop {
        if let Ok(mut found) = existing.canonicalize() {
            found.extend(rest.iter().rev());
            return found;
        }
        match (existing.file_name(), existing.parent()) {
            (Some(name), Some(parent)) => {
                rest.push(name.to_owned());
                existing = match parent.as_os_str().is_empty() {
                    true => PathBuf::from("."),
                    false => parent.to_path_buf(),
                };
            }
            _ => return path.to_path_buf(),
        }
    }
}

/// Every image, in a fixed order: train, then val (each: the reals of every photograph,
/// then the fakes of every photograph, the seen families taking turns), then test (per
/// family: the reals of every photograph, then its fakes).
pub(super) fn plan(
    opts: &PhotoOptions,
    records: &[PhotoRecord],
    usable: &[Usable],
    families: &[PhotoFamily],
    seen: &[PhotoFamily],
) -> Vec<Job> {
    let side = region_side(opts.size);
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
