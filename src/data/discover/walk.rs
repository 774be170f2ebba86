//! Walking the folder tree: the sets (folders holding label folders) and the image files
//! inside their label folders; symlinks followed, loops stopped, and everything else in a
//! label folder reported as skipped.
use std::fs;
use std::path::{Path, PathBuf};

use super::layout::{is_split_name, label_of_folder};
use crate::data::decode::{read_error, sniff};
use crate::data::skip::{Skip, SkipReason};
use crate::data::DataError;
use crate::progress::Progress;

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

/// A folder holding label folders; `rel` is its path below the root, `ancestors` the
/// canonical folders from the root down to it (for loop detection below it).
pub(super) struct SetDir {
    pub(super) rel: Vec<String>,
    pub(super) labels: Vec<(u8, PathBuf)>,
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
        let followed = if own.is_symlink() {
            fs::metadata(&path).map(|m| m.file_type())
        } else {
            Ok(own)
        };
        let kind = match followed {
            Ok(t) if t.is_dir() => Kind::Dir,
            Ok(t) if t.is_file() => Kind::File,
            Ok(_) => Kind::Other,
            Err(err) => Kind::Broken(read_error(&path, &err).detail),
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

#[derive(Default)]
pub(super) struct Walker<'a> {
    split: Option<&'a str>,
    sets: Vec<SetDir>,
    pub(super) skipped: Vec<Skip>,
    /// Canonical paths of the folders being visited, to stop at symlink loops.
    ancestors: Vec<PathBuf>,
    /// Advanced by every image found (a large tree on network storage takes minutes).
    pub(super) progress: Option<&'a Progress>,
}

impl<'a> Walker<'a> {
    /// A walker that, given `split`, prunes the other split folders.
    pub(super) fn new(split: Option<&'a str>) -> Self {
        Walker {
            split,
            ..Walker::default()
        }
    }

    /// The sets (folders holding label folders) under `root`.
    pub(super) fn find_sets(&mut self, root: &Path) -> Result<Vec<SetDir>, DataError> {
        let top = list_dir(root).map_err(io_error(root))?;
        self.ancestors
            .push(fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf()));
        self.visit(&[], top);
        Ok(std::mem::take(&mut self.sets))
    }

    /// The image files of `dir`, one of `set`'s label folders.
    pub(super) fn collect_set(&mut self, set: &SetDir, dir: &Path) -> Vec<PathBuf> {
        self.ancestors.clone_from(&set.ancestors);
        let mut files = Vec::new();
        self.collect(dir, &mut files);
        files
    }

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
                    Some(ext) if IMAGE_EXTENSIONS.contains(&ext.as_str()) => {
                        out.push(e.path);
                        if let Some(p) = self.progress {
                            p.inc(1);
                        }
                    }
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
    let mut walker = Walker::new(None);
    let mut images = Vec::new();
    for path in paths {
        if path.is_dir() {
            walker.collect(path, &mut images);
        } else if path.exists() {
            images.push(path.clone());
        } else {
            return Err(io_error(path)(std::io::ErrorKind::NotFound.into()));
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

/// The names of the folders in `dir`, sorted.
pub(super) fn subfolders(dir: &Path) -> std::io::Result<Vec<String>> {
    let entries = list_dir(dir)?.into_iter();
    Ok(entries
        .filter(|e| e.kind == Kind::Dir)
        .map(|e| e.name)
        .collect())
}

/// Wraps an I/O error about `path`.
pub(super) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> DataError + '_ {
    move |source| DataError::Io {
        path: path.into(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use crate::data::discover::discover;
    use crate::data::fixtures::{touch_png, Tree};
    use crate::data::skip::SkipReason;

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
}
