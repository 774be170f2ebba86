//! Finding labelled images on disk (ARCHITECTURE.md, Data), following the CNNDetection convention:
//! a folder that holds label folders (`0_real`/`real`/`nature` → 0, `1_fake`/`fake`/`ai`
//! → 1, case-insensitive) is one set; otherwise each sub-folder is searched the same way.
//! That covers
//!
//! - `root/{0_real,1_fake}` — one set, named after `root`;
//! - `root/{class}/{0_real,1_fake}` — ForenSynths train/val (generator = the class);
//! - `root/{generator}/{0_real,1_fake}` and `root/{generator}/{class}/{0_real,1_fake}` —
//!   test roots (generator = first folder, class = the rest);
//! - `root/{generator}/{train,val}/{ai,nature}` — GenImage: [`discover_split`] keeps one
//!   split and drops it from the names; plain [`discover`] keeps both, with the split as
//!   the class.
//!
//! Inside a label folder, files are taken recursively (as torchvision's `ImageFolder`
//! does). Files named `.png`, `.jpg` or `.jpeg` (any case) become samples; the decoder
//! later checks the real format by its magic bytes. Everything else in a label folder is
//! reported as skipped: other image formats as unsupported, other files as not images,
//! directories named like images as not files, dangling symlinks and loops as unreadable.
//! The order is sorted and deterministic.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::decode::{read_error, sniff};
use super::seed::{rng_for, stream};
use super::skip::{Skip, SkipReason};
use super::DataError;

pub const REAL: u8 = 0;
pub const FAKE: u8 = 1;

/// One labelled image.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Sample {
    pub path: PathBuf,
    /// 0 = real, 1 = fake.
    pub label: u8,
    /// First folder below the root (a class for ForenSynths train roots, a generator for
    /// test roots); the root's own name for a root that is itself one set.
    pub generator: String,
    /// The folders between the generator and the label folder, `/`-joined ("" if none).
    pub class: String,
}

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

fn is_split_name(name: &str) -> bool {
    SPLIT_NAMES.iter().any(|s| s.eq_ignore_ascii_case(name))
}

/// Extensions that become samples.
pub const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];
/// Image extensions this build cannot decode: reported as unsupported, unless the file is
/// really a PNG or JPEG inside.
pub const UNSUPPORTED_EXTENSIONS: [&str; 10] = [
    "bmp", "webp", "gif", "tif", "tiff", "heic", "heif", "avif", "jxl", "jp2",
];

fn extension(name: &str) -> Option<String> {
    Path::new(name)
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
}

fn looks_like_image(name: &str) -> bool {
    extension(name).is_some_and(|e| {
        IMAGE_EXTENSIONS.contains(&e.as_str()) || UNSUPPORTED_EXTENSIONS.contains(&e.as_str())
    })
}

/// Counts per generator and label.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub rows: Vec<SummaryRow>,
    pub real: usize,
    pub fake: usize,
    pub skipped: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SummaryRow {
    pub generator: String,
    pub real: usize,
    pub fake: usize,
}

impl Summary {
    pub fn of(samples: &[Sample], skipped: usize) -> Self {
        let mut counts: BTreeMap<&str, [usize; 2]> = BTreeMap::new();
        for s in samples {
            counts.entry(&s.generator).or_default()[usize::from(s.label.min(1))] += 1;
        }
        let rows: Vec<SummaryRow> = counts
            .into_iter()
            .map(|(g, [r, f])| SummaryRow {
                generator: g.to_string(),
                real: r,
                fake: f,
            })
            .collect();
        let real = rows.iter().map(|r| r.real).sum();
        let fake = rows.iter().map(|r| r.fake).sum();
        Summary {
            rows,
            real,
            fake,
            skipped,
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .rows
            .iter()
            .map(|r| r.generator.chars().count())
            .max()
            .unwrap_or(0)
            .max(9);
        writeln!(
            f,
            "{:<width$} {:>8} {:>8} {:>8}",
            "generator", "real", "fake", "total"
        )?;
        for r in &self.rows {
            writeln!(
                f,
                "{:<width$} {:>8} {:>8} {:>8}",
                r.generator,
                r.real,
                r.fake,
                r.real + r.fake
            )?;
        }
        write!(
            f,
            "{:<width$} {:>8} {:>8} {:>8}",
            "all",
            self.real,
            self.fake,
            self.real + self.fake
        )?;
        if self.skipped > 0 {
            write!(f, "\n({} file(s) skipped during discovery)", self.skipped)?;
        }
        Ok(())
    }
}

/// The result of [`discover`]: samples in sorted order, counts, and skipped files.
#[derive(Clone, Debug, Serialize)]
pub struct Discovered {
    pub root: PathBuf,
    pub samples: Vec<Sample>,
    pub summary: Summary,
    pub skipped: Vec<Skip>,
    /// The folders that held label folders, relative to the root (`/`-joined, `.` for the
    /// root itself), split folders included.
    pub sets: Vec<String>,
}

/// Finds the labelled images under `root` (see the module docs). `classes` keeps only
/// sets that have one of these names among their folders (e.g. `car`, `cat` for
/// ForenSynths); a class that matches nothing is an error.
pub fn discover(root: &Path, classes: Option<&[String]>) -> Result<Discovered, DataError> {
    discover_split(root, classes, None)
}

/// Like [`discover`], but where split folders (`train`, `val`, `test`, …) appear, only
/// `split` is searched and its name is left out of the generator/class names: GenImage's
/// `root/{generator}/{train,val}/{ai,nature}` gives generator = `{generator}`.
pub fn discover_split(
    root: &Path,
    classes: Option<&[String]>,
    split: Option<&str>,
) -> Result<Discovered, DataError> {
    let meta = fs::metadata(root).map_err(|source| DataError::Io {
        path: root.into(),
        source,
    })?;
    if !meta.is_dir() {
        return Err(DataError::NotADirectory { path: root.into() });
    }
    let mut walker = Walker {
        split,
        sets: Vec::new(),
        skipped: Vec::new(),
        ancestors: Vec::new(),
    };
    let top = list_dir(root).map_err(|source| DataError::Io {
        path: root.into(),
        source,
    })?;
    walker
        .ancestors
        .push(fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf()));
    walker.visit(&[], top);

    if walker.sets.is_empty() {
        let found = list_dir(root)
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.kind == Kind::Dir)
            .map(|e| e.name)
            .collect();
        return Err(DataError::NoLabelFolders {
            root: root.into(),
            found,
        });
    }
    let sets = filter_classes(root, std::mem::take(&mut walker.sets), classes)?;

    let root_name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| root.display().to_string());
    let mut samples = Vec::new();
    let mut set_names = Vec::new();
    for set in &sets {
        let names: Vec<&String> = set
            .rel
            .iter()
            .filter(|c| !split.is_some_and(|s| s.eq_ignore_ascii_case(c)))
            .collect();
        let generator = names.first().map_or(root_name.clone(), |g| (*g).clone());
        let class = names
            .iter()
            .skip(1)
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("/");
        set_names.push(if set.rel.is_empty() {
            ".".to_string()
        } else {
            set.rel.join("/")
        });
        for (label, dir) in &set.labels {
            walker.ancestors.clone_from(&set.ancestors);
            let mut files = Vec::new();
            walker.collect(dir, &mut files);
            samples.extend(files.into_iter().map(|path| Sample {
                path,
                label: *label,
                generator: generator.clone(),
                class: class.clone(),
            }));
        }
    }
    samples.sort_by(|a, b| a.path.cmp(&b.path));
    walker.skipped.sort_by(|a, b| a.path.cmp(&b.path));
    if samples.is_empty() {
        return Err(DataError::NoImages {
            root: root.into(),
            sets: set_names,
            skipped: walker.skipped.len(),
        });
    }
    let summary = Summary::of(&samples, walker.skipped.len());
    Ok(Discovered {
        root: root.into(),
        samples,
        summary,
        skipped: walker.skipped,
        sets: set_names,
    })
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
        found: list_dir(root)
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.kind == Kind::Dir)
            .map(|e| e.name)
            .collect(),
        outside,
        hint: hint.into(),
    };
    let found = match discover_split(root, classes, Some(split)) {
        Ok(found) => found,
        Err(DataError::NoLabelFolders { .. }) => return Err(missing(Vec::new())),
        Err(e) => return Err(e),
    };
    let in_split = |set: &String| set.split('/').any(|c| c.eq_ignore_ascii_case(split));
    let outside: Vec<String> = found
        .sets
        .iter()
        .filter(|s| !in_split(s))
        .cloned()
        .collect();
    if !outside.is_empty() {
        let none_inside = outside.len() == found.sets.len();
        return Err(missing(if none_inside { Vec::new() } else { outside }));
    }
    Ok(found)
}

fn filter_classes(
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

/// A folder holding label folders; `rel` is its path below the root, `ancestors` the
/// canonical folders from the root down to it (for loop detection below it).
struct SetDir {
    rel: Vec<String>,
    labels: Vec<(u8, PathBuf)>,
    ancestors: Vec<PathBuf>,
}

#[derive(Debug, PartialEq, Eq)]
enum Kind {
    Dir,
    File,
    /// FIFO, socket, device.
    Other,
    /// `metadata` failed: dangling symlink, loop, permission.
    Broken(String),
}

struct Entry {
    name: String,
    path: PathBuf,
    kind: Kind,
}

/// The entries of `dir`, sorted by name, with symlinks followed.
fn list_dir(dir: &Path) -> std::io::Result<Vec<Entry>> {
    let mut entries = Vec::new();
    for e in fs::read_dir(dir)? {
        let e = e?;
        let path = e.path();
        // The entry's own type costs no system call; only symlinks need a `stat`.
        let own = e.file_type()?;
        let kind = if !own.is_symlink() {
            if own.is_dir() {
                Kind::Dir
            } else if own.is_file() {
                Kind::File
            } else {
                Kind::Other
            }
        } else {
            match fs::metadata(&path) {
                Ok(m) if m.is_dir() => Kind::Dir,
                Ok(m) if m.is_file() => Kind::File,
                Ok(_) => Kind::Other,
                Err(err) => Kind::Broken(read_error(&path, &err).detail),
            }
        };
        entries.push(Entry {
            name: e.file_name().to_string_lossy().into_owned(),
            path,
            kind,
        });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(entries)
}

struct Walker<'a> {
    split: Option<&'a str>,
    sets: Vec<SetDir>,
    skipped: Vec<Skip>,
    /// Canonical paths of the folders being visited, to stop at symlink loops.
    ancestors: Vec<PathBuf>,
}

impl Walker<'_> {
    fn skip(&mut self, path: &Path, reason: SkipReason, detail: impl Into<String>) {
        self.skipped.push(Skip::new(path, reason, detail));
    }

    /// Lists `dir` unless it leads back to a folder being visited.
    fn enter(&mut self, dir: &Path) -> Option<Vec<Entry>> {
        let canonical = match fs::canonicalize(dir) {
            Ok(c) => c,
            Err(e) => {
                self.skip(dir, SkipReason::Unreadable, read_error(dir, &e).detail);
                return None;
            }
        };
        if let Some(a) = self.ancestors.iter().find(|a| **a == canonical) {
            let detail = format!("symlink loop: leads back to {}", a.display());
            self.skip(dir, SkipReason::Unreadable, detail);
            return None;
        }
        match list_dir(dir) {
            Ok(entries) => {
                self.ancestors.push(canonical);
                Some(entries)
            }
            Err(e) => {
                self.skip(dir, SkipReason::Unreadable, read_error(dir, &e).detail);
                None
            }
        }
    }

    fn visit(&mut self, rel: &[String], entries: Vec<Entry>) {
        let labels: Vec<(u8, PathBuf)> = entries
            .iter()
            .filter(|e| e.kind == Kind::Dir)
            .filter_map(|e| label_of_folder(&e.name).map(|l| (l, e.path.clone())))
            .collect();
        if !labels.is_empty() {
            // A label folder that cannot be read (dangling link, loop) is never silent.
            for e in &entries {
                if let Kind::Broken(detail) = &e.kind {
                    self.skip(&e.path, SkipReason::Unreadable, detail.clone());
                }
            }
            self.sets.push(SetDir {
                rel: rel.to_vec(),
                labels,
                ancestors: self.ancestors.clone(),
            });
            return;
        }
        for e in entries {
            match e.kind {
                Kind::Dir => {
                    let pruned = self
                        .split
                        .is_some_and(|s| is_split_name(&e.name) && !e.name.eq_ignore_ascii_case(s));
                    if pruned {
                        continue;
                    }
                    if let Some(sub) = self.enter(&e.path) {
                        let mut rel = rel.to_vec();
                        rel.push(e.name.clone());
                        self.visit(&rel, sub);
                        self.ancestors.pop();
                    }
                }
                // A dangling link above the label folders may be a whole missing set.
                Kind::Broken(detail) => self.skip(&e.path, SkipReason::Unreadable, detail),
                Kind::File | Kind::Other => {}
            }
        }
    }

    /// Image files under a label folder, recursively, in sorted order.
    fn collect(&mut self, dir: &Path, out: &mut Vec<PathBuf>) {
        let Some(entries) = self.enter(dir) else {
            return;
        };
        for e in entries {
            match e.kind {
                Kind::Broken(detail) => self.skip(&e.path, SkipReason::Unreadable, detail),
                Kind::Other => self.skip(&e.path, SkipReason::NotAFile, "not a regular file"),
                Kind::Dir if looks_like_image(&e.name) => self.skip(
                    &e.path,
                    SkipReason::NotAFile,
                    "a directory named like an image",
                ),
                Kind::Dir => self.collect(&e.path, out),
                Kind::File => match extension(&e.name) {
                    Some(ext) if IMAGE_EXTENSIONS.contains(&ext.as_str()) => out.push(e.path),
                    Some(ext) if UNSUPPORTED_EXTENSIONS.contains(&ext.as_str()) => {
                        if head_is_supported(&e.path) {
                            out.push(e.path);
                        } else {
                            let detail =
                                format!(".{ext} files are not supported (PNG and JPEG are)");
                            self.skip(&e.path, SkipReason::UnsupportedFormat, detail);
                        }
                    }
                    ext => {
                        let detail = match ext {
                            Some(ext) => format!("extension .{ext} is not an image extension"),
                            None => "no image extension".to_string(),
                        };
                        self.skip(&e.path, SkipReason::NotImage, detail);
                    }
                },
            }
        }
        self.ancestors.pop();
    }
}

/// The images named by `paths`, for scoring without labels (`npr predict`): a file is
/// itself; a folder gives its images recursively in sorted order, walked exactly as
/// dataset folders are (symlinks followed, loops stopped). Files that are not images and
/// folders that cannot be listed come back as skips, never passed over.
pub fn images_under(paths: &[PathBuf]) -> Result<(Vec<PathBuf>, Vec<Skip>), DataError> {
    let mut walker = Walker {
        split: None,
        sets: Vec::new(),
        skipped: Vec::new(),
        ancestors: Vec::new(),
    };
    let mut images = Vec::new();
    for path in paths {
        if path.is_dir() {
            walker.collect(path, &mut images);
        } else if path.exists() {
            images.push(path.clone());
        } else {
            return Err(DataError::Io {
                path: path.clone(),
                source: std::io::ErrorKind::NotFound.into(),
            });
        }
    }
    Ok((images, walker.skipped))
}

/// Whether a file with an unsupported extension is really a PNG or JPEG.
fn head_is_supported(path: &Path) -> bool {
    use std::io::Read as _;
    let mut head = [0u8; 16];
    let n = fs::File::open(path)
        .and_then(|mut f| f.read(&mut head))
        .unwrap_or(0);
    sniff(&head[..n]).is_some_and(|f| f.is_supported())
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
    let top: Vec<String> = list_dir(root)
        .map_err(|source| DataError::Io {
            path: root.into(),
            source,
        })?
        .into_iter()
        .filter(|e| e.kind == Kind::Dir)
        .map(|e| e.name)
        .collect();
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
    let has = |d: &Discovered, split: &str| {
        d.sets
            .iter()
            .any(|s| s.split('/').any(|c| c.eq_ignore_ascii_case(split)))
    };
    for split in ["test", "val"] {
        match discover_split(root, None, Some(split)) {
            Ok(found) if has(&found, split) => {
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

/// A stable identity of a file list: `n:` and the first 16 hex digits of SHA-256 over
/// `label<TAB>path` lines, paths relative to `root`, so the same data set gives the same
/// fingerprint from any working directory. Checkpoints store it; `--resume` compares it.
pub fn fingerprint(samples: &[Sample], root: &Path) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    for s in samples {
        let rel = s.path.strip_prefix(root).unwrap_or(&s.path);
        hash.update([s.label, b'\t']);
        hash.update(rel.as_os_str().as_encoded_bytes());
        hash.update(b"\n");
    }
    let digest = hash.finalize();
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{}:{hex}", samples.len())
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
    let (mut train, mut val) = (Vec::new(), Vec::new());
    for (s, v) in samples.into_iter().zip(in_val) {
        if v {
            val.push(s)
        } else {
            train.push(s)
        }
    }
    (train, val)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{touch_png, Tree};
    use super::*;

    #[test]
    fn a_broken_label_folder_beside_a_good_one_is_reported() {
        let tree = Tree::new();
        touch_png(&tree.path("0_real/a.png"));
        std::os::unix::fs::symlink(tree.root().join("missing"), tree.path("1_fake")).unwrap();
        let found = discover(tree.root(), None).unwrap();
        assert_eq!(found.samples.len(), 1);
        assert_eq!(found.skipped.len(), 1, "{:?}", found.skipped);
        assert_eq!(found.skipped[0].reason, SkipReason::Unreadable);
    }

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
    fn summary_counts_and_prints_a_table() {
        let tree = Tree::new();
        for f in [
            "car/0_real/a.png",
            "car/0_real/b.png",
            "car/1_fake/c.png",
            "cat/1_fake/d.png",
        ] {
            touch_png(&tree.path(f));
        }
        let d = discover(tree.root(), None).unwrap();
        assert_eq!((d.summary.real, d.summary.fake), (2, 2));
        assert_eq!(
            d.summary.to_string(),
            "generator     real     fake    total\n\
             car              2        1        3\n\
             cat              0        1        1\n\
             all              2        2        4"
        );
        let json = serde_json::to_value(&d.summary).unwrap();
        assert_eq!(json["rows"][0]["generator"], "car");
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
