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
//!
//! `walk.rs` walks the tree, `layout.rs` holds the layout and split policy (label and split
//! folder names, generator and class names, which split `npr test` scores, the validation
//! split), `summary.rs` the counts.
mod layout;
mod summary;
mod walk;

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::skip::Skip;
use super::DataError;
use crate::progress::Progress;
use layout::{filter_classes, generator_and_class};
use walk::{io_error, subfolders, Walker};

pub use layout::{discover_required_split, discover_test_set, label_of_folder, split_val};
pub use summary::Summary;
pub use walk::{images_under, IMAGE_EXTENSIONS};

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
    let meta = fs::metadata(root).map_err(io_error(root))?;
    if !meta.is_dir() {
        return Err(DataError::NotADirectory { path: root.into() });
    }
    let progress = Progress::counter(format!("listing images under {}", root.display()), "files");
    let mut walker = Walker::new(split);
    walker.progress = Some(&progress);
    let sets = walker.find_sets(root)?;
    if sets.is_empty() {
        return Err(DataError::NoLabelFolders {
            root: root.into(),
            found: subfolders(root).unwrap_or_default(),
        });
    }
    let sets = filter_classes(root, sets, classes)?;
    let mut samples = Vec::new();
    let mut set_names = Vec::new();
    for set in &sets {
        let (generator, class) = generator_and_class(root, &set.rel, split);
        set_names.push(if set.rel.is_empty() {
            ".".to_string()
        } else {
            set.rel.join("/")
        });
        for (label, dir) in &set.labels {
            let files = walker.collect_set(set, dir);
            samples.extend(files.into_iter().map(|path| Sample {
                path,
                label: *label,
                generator: generator.clone(),
                class: class.clone(),
            }));
        }
    }
    let mut skipped = walker.skipped;
    progress.finish();
    samples.sort_by(|a, b| a.path.cmp(&b.path));
    skipped.sort_by(|a, b| a.path.cmp(&b.path));
    if samples.is_empty() {
        return Err(DataError::NoImages {
            root: root.into(),
            sets: set_names,
            skipped: skipped.len(),
        });
    }
    let summary = Summary::of(&samples, skipped.len());
    Ok(Discovered {
        root: root.into(),
        samples,
        summary,
        skipped,
        sets: set_names,
    })
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
