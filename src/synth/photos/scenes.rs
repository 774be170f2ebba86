//! The photographs of a folder, grouped into scenes and dealt to splits by scene: no
//! photograph, and no two photographs of one scene, give crops to two splits.
//!
//! A photograph's scene is the `scene` column of the folder's `manifest.tsv` where there is
//! one (`scripts/get_photos.sh` writes it: stereo pairs and consecutive frames share a
//! scene), else its own path. Byte-identical files (one photograph under two names) are
//! put in one scene whatever the list says.
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::synth::{derived_rng, Split};

/// Shares of the scenes in validation and test (the rest train), each at least one scene.
pub const VAL_FRACTION: f64 = 0.15;
pub const TEST_FRACTION: f64 = 0.25;

/// One photograph of the folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PhotoRecord {
    /// Path relative to the folder of photographs, `/`-separated.
    pub file: String,
    pub sha256: String,
    pub scene: String,
    /// Licence, from the folder's `manifest.tsv` (`null` when it has none).
    pub licence: Option<String>,
    pub width: u32,
    pub height: u32,
    /// The split its crops went to; `null` when it gave none (see `skipped`).
    pub split: Option<Split>,
    /// Why it gave no crops (too small, undecodable), or `null`.
    pub skipped: Option<String>,
}

/// A photograph found on disk, before decoding.
pub struct Found {
    pub path: PathBuf,
    pub record: PhotoRecord,
}

/// Every image file under `dir` (recursively, sorted), hashed, with its scene and licence.
pub fn find(dir: &Path) -> Result<Vec<Found>> {
    let (paths, skipped) = crate::data::images_under(&[dir.to_path_buf()])
        .with_context(|| format!("listing the photographs in {}", dir.display()))?;
    // Licence texts and lists beside the photographs are expected; say how many, not each.
    let (other, unreadable): (Vec<_>, Vec<_>) = skipped.iter().partition(|s| {
        s.reason == crate::data::SkipReason::NotImage && s.detail.contains("image extension")
    });
    for s in unreadable {
        eprintln!("note: {}: skipped, {}", s.path.display(), s.detail);
    }
    if !other.is_empty() {
        eprintln!(
            "note: {} file(s) without an image extension ignored (e.g. {})",
            other.len(),
            other[0].path.display()
        );
    }
    let listed = read_list(dir)?;
    let mut found = Vec::new();
    for path in paths {
        let rel = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        // An unreadable file is recorded as skipped, with why, and the others go on.
        let (sha256, skipped) = match crate::eval::completion::sha256_file(&path) {
            Ok(sha) => (sha, None),
            Err(e) => (String::new(), Some(format!("not readable: {e:#}"))),
        };
        let (scene, licence) = match listed.get(&rel) {
            Some((scene, licence)) => (scene.clone(), licence.clone()),
            None => (rel.clone(), None),
        };
        found.push(Found {
            path,
            record: PhotoRecord {
                file: rel,
                sha256,
                scene,
                licence,
                width: 0,
                height: 0,
                split: None,
                skipped,
            },
        });
    }
    merge_identical(&mut found);
    Ok(found)
}

/// `name → (scene, licence)` from `dir/manifest.tsv`, when it has `name` and `scene` columns.
fn read_list(dir: &Path) -> Result<HashMap<String, (String, Option<String>)>> {
    let path = dir.join("manifest.tsv");
    if !path.is_file() {
        eprintln!(
            "note: {} has no manifest.tsv: each photograph is its own scene (photographs of \
             one scene — stereo pairs, bursts — can then go to two splits; list them in a \
             manifest.tsv with `name` and `scene` columns)",
            dir.display()
        );
        return Ok(HashMap::new());
    }
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .from_path(&path)
        .with_context(|| format!("reading {}", path.display()))?;
    let header = reader.headers()?.clone();
    let col = |name: &str| header.iter().position(|h| h == name);
    let (Some(name), Some(scene)) = (col("name"), col("scene")) else {
        eprintln!(
            "note: {} has no `name` and `scene` columns: each photograph is its own scene",
            path.display()
        );
        return Ok(HashMap::new());
    };
    let licence = col("licence");
    let mut out = HashMap::new();
    for row in reader.records() {
        let row = row.with_context(|| format!("reading {}", path.display()))?;
        let get = |i: usize| row.get(i).unwrap_or("").trim().to_string();
        // A blank scene cell leaves the photograph its own scene (its path).
        let scene = Some(get(scene))
            .filter(|s| !s.is_empty())
            .unwrap_or(get(name));
        out.insert(get(name), (scene, licence.map(get)));
    }
    Ok(out)
}

/// Byte-identical photographs end in one scene, and so does every photograph of the scenes
/// they join, however the copies cross (union-find over scenes). Each group keeps the name
/// of its scene that comes first in the folder's order.
fn merge_identical(found: &mut [Found]) {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut names: Vec<String> = Vec::new();
    for f in found.iter() {
        index.entry(f.record.scene.clone()).or_insert_with(|| {
            names.push(f.record.scene.clone());
            names.len() - 1
        });
    }
    let mut parent: Vec<usize> = (0..names.len()).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            parent[i] = parent[parent[i]];
            i = parent[i];
        }
        i
    }
    let mut first_of_hash: HashMap<&str, usize> = HashMap::new();
    for f in found.iter().filter(|f| !f.record.sha256.is_empty()) {
        let scene = index[&f.record.scene];
        let first = *first_of_hash.entry(&f.record.sha256).or_insert(scene);
        let (a, b) = (root(&mut parent, first), root(&mut parent, scene));
        // The earlier scene becomes the root, so a group is named by its first scene.
        parent[a.max(b)] = a.min(b);
    }
    let merged: Vec<String> = (0..names.len())
        .map(|i| names[root(&mut parent, i)].clone())
        .collect();
    for f in found.iter_mut() {
        f.record.scene = merged[index[&f.record.scene]].clone();
    }
}

/// Deals the scenes to test, validation and training: scenes in an order drawn from
/// `seed`, the first [`TEST_FRACTION`] (rounded, at least one) to test, the next
/// [`VAL_FRACTION`] to validation, the rest to training.
pub fn deal(scenes: &[String], seed: u64) -> Result<BTreeMap<String, Split>> {
    let mut order: Vec<(u64, &String)> = scenes
        .iter()
        .map(|s| (derived_rng(seed, &format!("scene/{s}")).gen::<u64>(), s))
        .collect();
    order.sort();
    order.dedup_by(|a, b| a.1 == b.1);
    let n = order.len();
    if n < 3 {
        bail!(
            "{n} usable scene(s); a benchmark split by photograph needs at least 3 (one each for train, val and test)"
        );
    }
    let share = |f: f64| ((n as f64 * f).round() as usize).max(1);
    let (test, val) = (share(TEST_FRACTION), share(VAL_FRACTION));
    let test = test.min(n - 2);
    let val = val.min(n - 1 - test);
    Ok(order
        .into_iter()
        .enumerate()
        .map(|(i, (_, s))| {
            let split = if i < test {
                Split::Test
            } else if i < test + val {
                Split::Val
            } else {
                Split::Train
            };
            (s.clone(), split)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(file: &str, sha: &str, scene: &str) -> Found {
        Found {
            path: file.into(),
            record: PhotoRecord {
                file: file.into(),
                sha256: sha.into(),
                scene: scene.into(),
                licence: None,
                width: 0,
                height: 0,
                split: None,
                skipped: None,
            },
        }
    }

    #[test]
    fn identical_files_share_a_scene_with_everything_of_theirs() {
        let mut f = vec![
            found("a.png", "1", "a"),
            found("b_left.png", "2", "b"),
            found("b_right.png", "3", "b"),
            found("copy_of_b.png", "2", "copy_of_b"),
            found("c.png", "4", "c"),
        ];
        merge_identical(&mut f);
        let scenes: Vec<&str> = f.iter().map(|f| f.record.scene.as_str()).collect();
        assert_eq!(scenes, ["a", "b", "b", "b", "c"]);
    }

    #[test]
    fn crossed_copies_join_both_scenes() {
        // a's copy is listed under scene B and b's copy under scene A: one scene in all.
        let mut f = vec![
            found("a.png", "1", "A"),
            found("b.png", "2", "B"),
            found("a_copy.png", "1", "B"),
            found("b_copy.png", "2", "A"),
            found("c.png", "3", "C"),
            found("d.png", "4", "D"),
            found("d_copy.png", "4", "C"),
        ];
        merge_identical(&mut f);
        let scenes: Vec<&str> = f.iter().map(|f| f.record.scene.as_str()).collect();
        assert_eq!(scenes, ["A", "A", "A", "A", "C", "C", "C"]);
    }

    #[test]
    fn every_split_gets_a_scene_and_no_scene_two() {
        for (n, want) in [
            (3, [1, 1, 1]),
            (4, [2, 1, 1]),
            (10, [5, 2, 3]),
            (72, [43, 11, 18]),
        ] {
            let scenes: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
            let dealt = deal(&scenes, 7).unwrap();
            assert_eq!(dealt.len(), n);
            let count = |s: Split| dealt.values().filter(|&&v| v == s).count();
            assert_eq!(
                [count(Split::Train), count(Split::Val), count(Split::Test)],
                want,
                "{n}"
            );
            assert_eq!(deal(&scenes, 7).unwrap(), dealt, "deterministic");
        }
        let err = deal(&["a".into(), "b".into()], 0).unwrap_err().to_string();
        assert!(err.contains("at least 3"), "{err}");
    }
}
