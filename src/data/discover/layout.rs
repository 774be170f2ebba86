//! Layout and split policy: which folder names are labels and splits, how a set's folders
//! name its generator and class, which split a command reads, and the validation split.
use std::collections::BTreeSet;
use std::path::Path;

use rand::seq::SliceRandom;

use super::walk::{io_error, subfolders, SetDir};
use super::{discover, discover_split, Discovered, Sample, Summary, FAKE, REAL};
use crate::data::seed::{rng_for, stream};
use crate::data::DataError;

/// The label a folder name stands for, if it is a label folder.
pub fn label_of_folder(name: &str) -> Option<u8> {
    match name.to_ascii_lowercase().as_str() {
        "0_real" | "real" | "nature" => Some(REAL),
        "1_fake" | "fake" | "ai" => Some(FAKE),
        _ => None,
    }
}

/// Folder names that mean a split; [`discover_split`] keeps only the one asked for.
pub const SPLIT_NAMES: [&str; 5] = ["train", "val", "valid", "validation", "test"];

pub(super) fn is_split_name(name: &str) -> bool {
    SPLIT_NAMES.iter().any(|s| s.eq_ignore_ascii_case(name))
}

/// The generator and class a set's folders name: the first folder below the root (the
/// root's own name for the root itself) and the rest `/`-joined, `split` left out.
pub(super) fn generator_and_class(
    root: &Path,
    rel: &[String],
    split: Option<&str>,
) -> (String, String) {
    let mut names = rel
        .iter()
        .filter(|c| !split.is_some_and(|s| s.eq_ignore_ascii_case(c)));
    let generator = match names.next() {
        Some(g) => g.clone(),
        None => root.file_name().map_or_else(
            || root.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        ),
    };
    let class = names.map(String::as_str).collect::<Vec<_>>().join("/");
    (generator, class)
}

/// One split of a dataset, never a silent stand-in: `root/split` when that folder exists
/// (ForenSynths, the synthetic benchmark), else the `split` folders inside each generator
/// (GenImage `{generator}/{train,val}/{ai,nature}`). A root with no such folder, or with
/// sets outside one, is [`DataError::MissingSplit`] carrying `hint` (what to pass instead):
/// using all of it would make validation reuse the training images.
pub fn discover_required_split(
    root: &Path,
    split: &str,
    classes: Option<&[String]>,
    hint: &str,
) -> Result<Discovered, DataError> {
    let folder = root.join(split);
    if split == "." || folder.is_dir() {
        return discover(&folder, classes);
    }
    let missing = |outside: Vec<String>| DataError::MissingSplit {
        root: root.into(),
        split: split.into(),
        found: subfolders(root).unwrap_or_default(),
        outside,
        hint: hint.into(),
    };
    let found = match discover_split(root, classes, Some(split)) {
        Err(DataError::NoLabelFolders { .. }) => return Err(missing(Vec::new())),
        found => found?,
    };
    let outside: Vec<String> = found
        .sets
        .iter()
        .filter(|s| !in_split(s, split))
        .cloned()
        .collect();
    if !outside.is_empty() {
        let none_inside = outside.len() == found.sets.len();
        return Err(missing(if none_inside { Vec::new() } else { outside }));
    }
    Ok(found)
}

/// Whether a set (its folders `/`-joined) lies inside a folder named `split`.
fn in_split(set: &str, split: &str) -> bool {
    set.split('/').any(|c| c.eq_ignore_ascii_case(split))
}

/// The sets with one of `classes` among their folders; a class that matches none is an
/// error.
pub(super) fn filter_classes(
    root: &Path,
    sets: Vec<SetDir>,
    classes: Option<&[String]>,
) -> Result<Vec<SetDir>, DataError> {
    let Some(wanted) = classes.filter(|c| !c.is_empty()) else {
        return Ok(sets);
    };
    let matches = |set: &SetDir, class: &str| set.rel.iter().any(|c| c.eq_ignore_ascii_case(class));
    let missing: Vec<String> = wanted
        .iter()
        .filter(|w| !sets.iter().any(|s| matches(s, w)))
        .cloned()
        .collect();
    if !missing.is_empty() {
        let found: BTreeSet<String> = sets.iter().flat_map(|s| s.rel.iter().cloned()).collect();
        return Err(DataError::UnknownClass {
            root: root.into(),
            wanted: wanted.to_vec(),
            missing,
            found: found.into_iter().collect(),
        });
    }
    Ok(sets
        .into_iter()
        .filter(|s| wanted.iter().any(|w| matches(s, w)))
        .collect())
}

/// What `npr test` scores under a root, and a line saying so when a split was chosen:
///
/// - `split` given: exactly that split ([`discover_required_split`]);
/// - a dataset root holding `test/` (with `train/`, `val/`): `test/`;
/// - split folders inside generators: each generator's `test` folder, else its `val` folder
///   (GenImage, whose evaluation protocol is its val split);
/// - a root holding top-level `train/`/`val/` but no `test/`: an error, because those are
///   the images that trained the model or chose its checkpoint;
/// - otherwise every set (a test root: one folder per generator).
///
/// A top-level `train`/`val` split keeps the training layout `{class}/{label}`: its folders
/// are content classes, so the generator column holds the split's name, never a class.
pub fn discover_test_set(
    root: &Path,
    split: Option<&str>,
) -> Result<(Discovered, Option<String>), DataError> {
    let at = |s: &str| format!("{}/{s}", root.display());
    if let Some(split) = split {
        let hint = format!(
            "pass --split with one of the split folders of {}",
            root.display()
        );
        let mut found = discover_required_split(root, split, None, &hint)?;
        if root.join(split).is_dir() && !split.eq_ignore_ascii_case("test") {
            for s in &mut found.samples {
                s.class = std::mem::replace(&mut s.generator, split.to_string());
            }
            found.summary = Summary::of(&found.samples, found.skipped.len());
        }
        return Ok((
            found,
            Some(format!(
                "testing the `{split}` split, as asked: {}",
                at(split)
            )),
        ));
    }
    let top = subfolders(root).map_err(io_error(root))?;
    if let Some(test) = top.iter().find(|n| n.eq_ignore_ascii_case("test")) {
        let note = format!(
            "{} holds split folders: testing {}",
            root.display(),
            at(test)
        );
        return Ok((discover(&root.join(test), None)?, Some(note)));
    }
    let top_split: Vec<String> = top.iter().filter(|n| is_split_name(n)).cloned().collect();
    if !top_split.is_empty() {
        return Err(DataError::MissingSplit {
            root: root.into(),
            split: "test".into(),
            found: top,
            outside: Vec::new(),
            hint: format!(
                "Its {} split(s) trained or selected a model; to score one anyway, name it: --split {}",
                top_split.join("/"),
                top_split[0]
            ),
        });
    }
    for split in ["test", "val"] {
        match discover_split(root, None, Some(split)) {
            Ok(found) if found.sets.iter().any(|s| in_split(s, split)) => {
                let note = format!(
                    "{}: split folders inside the generators; testing each generator's `{split}` folder{}",
                    root.display(),
                    if split == "val" { " (the GenImage evaluation protocol)" } else { "" }
                );
                return Ok((found, Some(note)));
            }
            Ok(_) | Err(DataError::NoLabelFolders { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok((discover(root, None)?, None))
}

/// Splits off a validation set: `fraction` of each label (rounded), chosen with a seeded
/// shuffle. Both halves keep the input order. `fraction` is clamped to `[0, 1]`.
pub fn split_val(samples: Vec<Sample>, fraction: f64, seed: u64) -> (Vec<Sample>, Vec<Sample>) {
    let fraction = if fraction.is_nan() {
        0.0
    } else {
        fraction.clamp(0.0, 1.0)
    };
    let mut in_val = vec![false; samples.len()];
    let labels: BTreeSet<u8> = samples.iter().map(|s| s.label).collect();
    for label in labels {
        let mut idx: Vec<usize> = (0..samples.len())
            .filter(|&i| samples[i].label == label)
            .collect();
        let n_val = (fraction * idx.len() as f64).round() as usize;
        idx.shuffle(&mut rng_for(&[seed, stream::SPLIT_VAL, u64::from(label)]));
        for &i in &idx[..n_val] {
            in_val[i] = true;
        }
    }
    let (val, train): (Vec<_>, Vec<_>) = samples.into_iter().zip(in_val).partition(|&(_, v)| v);
    let strip = |pairs: Vec<(Sample, bool)>| pairs.into_iter().map(|(s, _)| s).collect();
    (strip(train), strip(val))
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use crate::data::discover::*;
    use crate::data::fixtures::{touch_png, Tree};

    /// (generator, class, label, file name) of every sample, in order.
    fn names(d: &Discovered) -> Vec<(String, String, u8, String)> {
        d.samples
            .iter()
            .map(|s| {
                let f = s.path.file_name().unwrap().to_string_lossy().into_owned();
                (s.generator.clone(), s.class.clone(), s.label, f)
            })
            .collect()
    }

    fn row(g: &str, c: &str, l: u8, f: &str) -> (String, String, u8, String) {
        (g.into(), c.into(), l, f.into())
    }

    #[test]
    fn layouts() {
        struct Case {
            name: &'static str,
            files: &'static [&'static str],
            split: Option<&'static str>,
            classes: Option<&'static [&'static str]>,
            want: Vec<(String, String, u8, String)>,
        }
        let cases = vec![
            Case {
                name: "plain root",
                files: &["0_real/a.png", "1_fake/b.png"],
                split: None,
                classes: None,
                want: vec![row("ROOT", "", 0, "a.png"), row("ROOT", "", 1, "b.png")],
            },
            Case {
                name: "ForenSynths train with class filter",
                files: &[
                    "car/0_real/a.png",
                    "car/1_fake/b.jpg",
                    "cat/0_real/c.png",
                    "dog/1_fake/d.png",
                ],
                split: None,
                classes: Some(&["car", "cat"]),
                want: vec![
                    row("car", "", 0, "a.png"),
                    row("car", "", 1, "b.jpg"),
                    row("cat", "", 0, "c.png"),
                ],
            },
            Case {
                name: "test root, generators with and without classes",
                files: &[
                    "progan/car/0_real/a.png",
                    "progan/car/1_fake/b.png",
                    "stylegan/1_fake/c.png",
                    "stylegan/0_real/d.png",
                ],
                split: None,
                classes: None,
                want: vec![
                    row("progan", "car", 0, "a.png"),
                    row("progan", "car", 1, "b.png"),
                    row("stylegan", "", 0, "d.png"),
                    row("stylegan", "", 1, "c.png"),
                ],
            },
            Case {
                name: "GenImage val split, upper-case label folders",
                files: &[
                    "adm/train/ai/a.png",
                    "adm/val/ai/b.PNG",
                    "adm/val/nature/c.JPEG",
                    "biggan/val/Nature/d.png",
                ],
                split: Some("val"),
                classes: None,
                want: vec![
                    row("adm", "", 1, "b.PNG"),
                    row("adm", "", 0, "c.JPEG"),
                    row("biggan", "", 0, "d.png"),
                ],
            },
            Case {
                name: "GenImage without a split keeps the split as class",
                files: &["adm/train/ai/a.png", "adm/val/nature/b.png"],
                split: None,
                classes: None,
                want: vec![
                    row("adm", "train", 1, "a.png"),
                    row("adm", "val", 0, "b.png"),
                ],
            },
            Case {
                name: "ForenSynths train_val root with split, real/fake names, nested files",
                files: &[
                    "train/horse/real/x/a.png",
                    "train/horse/fake/b.png",
                    "val/horse/real/c.png",
                ],
                split: Some("train"),
                classes: Some(&["horse"]),
                want: vec![row("horse", "", 1, "b.png"), row("horse", "", 0, "a.png")],
            },
        ];
        for case in cases {
            let tree = Tree::new();
            for f in case.files {
                touch_png(&tree.path(f));
            }
            let root = tree.root().join("ROOT");
            std::fs::create_dir_all(&root).unwrap();
            for entry in std::fs::read_dir(tree.root()).unwrap() {
                let p = entry.unwrap().path();
                if p != root {
                    std::fs::rename(&p, root.join(p.file_name().unwrap())).unwrap();
                }
            }
            let classes: Option<Vec<String>> = case
                .classes
                .map(|c| c.iter().map(|s| s.to_string()).collect());
            let d = discover_split(&root, classes.as_deref(), case.split)
                .unwrap_or_else(|e| panic!("{}: {e}", case.name));
            assert_eq!(names(&d), case.want, "{}", case.name);
            assert!(d.skipped.is_empty(), "{}: {:?}", case.name, d.skipped);
        }
    }

    #[test]
    fn wrong_layouts_say_what_was_found() {
        struct Case {
            files: &'static [&'static str],
            classes: Option<&'static [&'static str]>,
            expect: &'static [&'static str],
        }
        let cases = [
            Case {
                files: &["images/a.png", "masks/b.png", "other/c.png"],
                classes: None,
                expect: &[
                    "no label folders",
                    "found sub-folders: images, masks, other",
                    "ROOT/{class}/{0_real,1_fake}",
                ],
            },
            Case {
                files: &[],
                classes: None,
                expect: &["sub-folders: none"],
            },
            Case {
                files: &["car/0_real/notes.txt", "car/1_fake/x.gif"],
                classes: None,
                expect: &[
                    "no usable images",
                    "1 label folder(s) found (car)",
                    "2 file(s) skipped",
                ],
            },
            Case {
                files: &["car/0_real/a.png", "cat/1_fake/b.png"],
                classes: Some(&["car", "hrose"]),
                expect: &["matched nothing", "hrose", "found: car, cat"],
            },
        ];
        for case in cases {
            let tree = Tree::new();
            std::fs::create_dir_all(tree.root()).unwrap();
            for f in case.files {
                tree.write(f, b"not an image");
            }
            let classes: Option<Vec<String>> = case
                .classes
                .map(|c| c.iter().map(|s| s.to_string()).collect());
            let err = discover(tree.root(), classes.as_deref())
                .unwrap_err()
                .to_string();
            for e in case.expect {
                assert!(err.contains(e), "expected {e:?} in:\n{err}");
            }
        }
        let err = discover(Path::new("/nonexistent/npr-data"), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/npr-data"), "{err}");
    }

    #[test]
    fn split_val_is_stratified_and_deterministic() {
        let samples: Vec<Sample> = (0..30)
            .map(|i| Sample {
                path: PathBuf::from(format!("{i:02}.png")),
                label: u8::from(i % 3 == 0),
                generator: "g".into(),
                class: String::new(),
            })
            .collect();
        let (train, val) = split_val(samples.clone(), 0.2, 7);
        assert_eq!(train.len() + val.len(), 30);
        assert_eq!(val.iter().filter(|s| s.label == 1).count(), 2); // 20 % of 10
        assert_eq!(val.iter().filter(|s| s.label == 0).count(), 4); // 20 % of 20
        assert_eq!(
            split_val(samples.clone(), 0.2, 7),
            (train.clone(), val.clone())
        );
        assert_ne!(split_val(samples.clone(), 0.2, 8).1, val);
        assert!(
            train.windows(2).all(|w| w[0].path < w[1].path),
            "input order kept"
        );
        assert_eq!(split_val(samples.clone(), 0.0, 1).1.len(), 0);
        assert_eq!(split_val(samples.clone(), f64::NAN, 1).1.len(), 0);
    }
}
