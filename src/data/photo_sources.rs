//! Splits by source photograph. Crops of one photograph are different files with different
//! bytes, so the path-and-content check (`disjoint`) cannot see that a training crop and a
//! test crop show the same scene; yet a detector scored on crops of photographs it trained
//! on measures memory of those scenes. A benchmark written by `npr synth --reals` lists
//! each image's source in `DATAROOT/sources.csv` ([`SOURCES_FILE`]); this check refuses a
//! run whose training or validation set shares a scene (photographs of one scene: stereo
//! pairs, consecutive frames, byte-identical copies) with another set.
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{DataError, Sample};

/// The per-image source list, in the benchmark folder (DATASET_DETAILS.md, photo benchmark).
pub const SOURCES_FILE: &str = "sources.csv";

/// One image of a photo benchmark and where it comes from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceRow {
    /// Image path relative to the benchmark folder, `/`-separated.
    pub path: String,
    /// `train`, `val` or `test`.
    pub split: String,
    /// 0 real, 1 fake.
    pub label: u8,
    /// The fake's family; empty for a real.
    pub family: String,
    /// The source photograph, relative to the folder of photographs.
    pub photo: String,
    /// SHA-256 of the photograph's file.
    pub photo_sha256: String,
    /// Photographs of one scene share it (and byte-identical photographs share one).
    pub scene: String,
    /// Top-left corner and side of the crop's region in the photograph after its ÷2
    /// area down-scale (the region includes the fake's context margin).
    pub x: u32,
    pub y: u32,
    pub side: u32,
}

/// Stops with [`DataError::SharedScenes`] when a scene gives images to two sets, where
/// at least one of the two is among the first `fitted` (training, validation). Does
/// nothing when `root` holds no [`SOURCES_FILE`]; images the list does not name (added
/// by hand) are not checked, and their number is said.
pub fn check_photo_sources(
    root: &Path,
    sets: &[(&str, &[Sample])],
    fitted: usize,
) -> Result<(), DataError> {
    let file = root.join(SOURCES_FILE);
    if !file.is_file() {
        return Ok(());
    }
    let rows: Vec<SourceRow> = crate::table::read(&file).map_err(|e| {
        DataError::invalid(
            "data.dataroot",
            format!("{} is unreadable: {e:#}", file.display()),
        )
    })?;
    let base = canonical(root);
    let scene_of: HashMap<PathBuf, &SourceRow> =
        rows.iter().map(|r| (base.join(&r.path), r)).collect();
    // Per set: scene → (images, an example photograph).
    let mut unlisted = 0usize;
    let per_set: Vec<BTreeMap<&str, (usize, &str)>> = sets
        .iter()
        .map(|(_, samples)| {
            let mut scenes: BTreeMap<&str, (usize, &str)> = BTreeMap::new();
            for s in samples.iter() {
                match scene_of.get(&canonical(&s.path)) {
                    Some(r) => {
                        let e = scenes.entry(r.scene.as_str()).or_insert((0, &r.photo));
                        e.0 += 1;
                    }
                    None => unlisted += 1,
                }
            }
            scenes
        })
        .collect();
    if unlisted > 0 {
        eprintln!(
            "note: {unlisted} image(s) are not in {}: their source photographs are not checked",
            file.display()
        );
    }
    for i in 0..sets.len().min(fitted) {
        for j in (i + 1)..sets.len() {
            let shared: Vec<String> = per_set[i]
                .iter()
                .filter_map(|(scene, (n, photo))| {
                    let (m, _) = per_set[j].get(scene)?;
                    Some(format!("scene `{scene}` ({photo}): {n} and {m} images"))
                })
                .collect();
            if !shared.is_empty() {
                return Err(DataError::SharedScenes {
                    first: sets[i].0.to_string(),
                    second: sets[j].0.to_string(),
                    sources: file,
                    examples: shared.iter().take(3).cloned().collect(),
                    count: shared.len(),
                });
            }
        }
    }
    Ok(())
}

/// The resolved path where it exists (a symlink or `..` names the same file), else as given.
fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(path: &str, split: &str, scene: &str) -> SourceRow {
        SourceRow {
            path: path.into(),
            split: split.into(),
            label: 0,
            family: String::new(),
            photo: format!("{scene}.png"),
            photo_sha256: "0".repeat(64),
            scene: scene.into(),
            x: 0,
            y: 0,
            side: 96,
        }
    }

    fn sample(root: &Path, rel: &str) -> Sample {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, rel).unwrap();
        Sample {
            path,
            label: 0,
            generator: String::new(),
            class: String::new(),
        }
    }

    #[test]
    fn a_scene_in_training_and_test_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let rows = [
            row("train/a.png", "train", "cat"),
            row("val/b.png", "val", "dog"),
            row("test/c.png", "test", "boat"),
            row("test/d.png", "test", "cat"),
        ];
        crate::table::write(&root.join(SOURCES_FILE), rows.iter()).unwrap();
        let train = [sample(root, "train/a.png")];
        let val = [sample(root, "val/b.png")];
        let clean = [sample(root, "test/c.png")];
        let leaky = [sample(root, "test/c.png"), sample(root, "test/d.png")];
        let sets = |test: &[Sample]| {
            check_photo_sources(
                root,
                &[
                    ("training set", &train),
                    ("validation set", &val),
                    ("test set", test),
                ],
                2,
            )
        };
        sets(&clean).unwrap();
        let err = sets(&leaky).unwrap_err().to_string();
        assert!(
            err.contains("training set") && err.contains("test set"),
            "{err}"
        );
        assert!(
            err.contains("scene `cat` (cat.png): 1 and 1 images"),
            "{err}"
        );
        // Two test sets may share a scene: nothing was fitted on either.
        check_photo_sources(
            root,
            &[("test set", &leaky), ("another test set", &leaky)],
            0,
        )
        .unwrap();
    }

    #[test]
    fn a_folder_without_a_source_list_is_not_checked() {
        let dir = tempfile::tempdir().unwrap();
        let a = [sample(dir.path(), "train/a.png")];
        check_photo_sources(
            dir.path(),
            &[("training set", &a[..]), ("test set", &a[..])],
            2,
        )
        .unwrap();
    }
}
