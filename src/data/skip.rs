//! Bad input never stops a run and is never silent (ARCHITECTURE.md, Data): every file that cannot
//! be used becomes a [`Skip`] with a [`SkipReason`], collected in a thread-safe
//! [`SkipLog`] that prints a summary and writes `skipped.tsv` into the run folder.
//! Images smaller than the crop are used (resized up) and counted as a warning.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

/// Why a file was not used. The serde/TSV names are the snake_case variant names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// Zero bytes.
    Empty,
    /// Starts like a PNG or JPEG but is truncated or damaged.
    Corrupt,
    /// Not an image at all (unknown signature, e.g. a text file named `.jpg`).
    NotImage,
    /// An image format this build cannot decode (BMP, WebP, GIF, TIFF, 12-bit JPEG, …).
    UnsupportedFormat,
    /// Zero width or height, or smaller than the configured minimum side.
    TooSmall,
    /// More pixels than the configured maximum (100 MP by default).
    Oversized,
    /// The file system refused: permission, dangling symlink, symlink loop, I/O error.
    Unreadable,
    /// A directory, FIFO or socket where an image file was expected.
    NotAFile,
}

impl SkipReason {
    /// (the name written to `skipped.tsv`, same as serde's; the words of summaries).
    fn names(self) -> (&'static str, &'static str) {
        match self {
            SkipReason::Empty => ("empty", "empty file"),
            SkipReason::Corrupt => ("corrupt", "truncated or corrupt"),
            SkipReason::NotImage => ("not_image", "not an image"),
            SkipReason::UnsupportedFormat => ("unsupported_format", "unsupported format"),
            SkipReason::TooSmall => ("too_small", "zero-size or too small"),
            SkipReason::Oversized => ("oversized", "oversized"),
            SkipReason::Unreadable => ("unreadable", "unreadable"),
            SkipReason::NotAFile => ("not_a_file", "not a file"),
        }
    }

    /// The name written to `skipped.tsv` (same as serde's).
    pub fn name(self) -> &'static str {
        self.names().0
    }
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.names().1)
    }
}

/// A decoder's or a transform's refusal, before it is tied to a path.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct Rejected {
    pub reason: SkipReason,
    pub detail: String,
}

impl Rejected {
    pub fn new(reason: SkipReason, detail: impl Into<String>) -> Self {
        Rejected {
            reason,
            detail: detail.into(),
        }
    }

    pub fn at(self, path: &Path) -> Skip {
        Skip::new(path, self.reason, self.detail)
    }
}

/// One skipped file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skip {
    pub path: PathBuf,
    pub reason: SkipReason,
    pub detail: String,
}

impl Skip {
    pub fn new(path: &Path, reason: SkipReason, detail: impl Into<String>) -> Self {
        Skip {
            path: path.to_path_buf(),
            reason,
            detail: detail.into(),
        }
    }
}

#[derive(Default)]
struct Inner {
    /// One entry per path: a file that fails every epoch is counted once.
    skipped: BTreeMap<PathBuf, (SkipReason, String)>,
    upscaled: BTreeSet<PathBuf>,
}

/// Thread-safe collection of skipped files and warnings, shared by loader workers.
#[derive(Default)]
pub struct SkipLog {
    inner: Mutex<Inner>,
}

/// Counts by reason, for logs and the run folder.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SkipSummary {
    pub by_reason: BTreeMap<SkipReason, usize>,
    pub skipped: usize,
    pub upscaled: usize,
}

impl SkipLog {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic elsewhere while holding the lock leaves plain data behind: keep going.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn record(&self, skip: Skip) {
        self.extend([skip]);
    }

    pub fn extend(&self, skips: impl IntoIterator<Item = Skip>) {
        let mut inner = self.lock();
        for s in skips {
            inner.skipped.entry(s.path).or_insert((s.reason, s.detail));
        }
    }

    /// Warning, not a skip: the image was smaller than the crop and was resized up.
    pub fn record_upscaled(&self, path: &Path) {
        self.lock().upscaled.insert(path.to_path_buf());
    }

    pub fn len(&self) -> usize {
        self.lock().skipped.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn upscaled(&self) -> usize {
        self.lock().upscaled.len()
    }

    /// Skipped files sorted by path.
    pub fn skips(&self) -> Vec<Skip> {
        self.lock()
            .skipped
            .iter()
            .map(|(p, (r, d))| Skip::new(p, *r, d.clone()))
            .collect()
    }

    pub fn summary(&self) -> SkipSummary {
        let inner = self.lock();
        let mut by_reason = BTreeMap::new();
        for (reason, _) in inner.skipped.values() {
            *by_reason.entry(*reason).or_insert(0) += 1;
        }
        SkipSummary {
            by_reason,
            skipped: inner.skipped.len(),
            upscaled: inner.upscaled.len(),
        }
    }

    /// The skip list as `skipped.tsv` text: a header, then path, reason and detail per
    /// file (tabs and newlines escaped). Callers write it atomically.
    pub fn to_tsv(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::from("path\treason\tdetail\n");
        for s in self.skips() {
            let (path, detail) = (tsv_field(&s.path.to_string_lossy()), tsv_field(&s.detail));
            let _ = writeln!(out, "{path}\t{}\t{detail}", s.reason.name());
        }
        out
    }
}

fn tsv_field(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

impl fmt::Display for SkipSummary {
    /// One line: `skipped 3 files (empty 1, corrupt 2); 4 images resized up to the crop`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.skipped == 0 {
            write!(f, "skipped no files")?;
        } else {
            let parts: Vec<String> = self
                .by_reason
                .iter()
                .map(|(r, n)| format!("{r} {n}"))
                .collect();
            write!(f, "skipped {} file(s) ({})", self.skipped, parts.join(", "))?;
        }
        if self.upscaled > 0 {
            write!(
                f,
                "; {} image(s) smaller than the crop were resized up",
                self.upscaled
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl SkipReason {
        const ALL: [SkipReason; 8] = [
            SkipReason::Empty,
            SkipReason::Corrupt,
            SkipReason::NotImage,
            SkipReason::UnsupportedFormat,
            SkipReason::TooSmall,
            SkipReason::Oversized,
            SkipReason::Unreadable,
            SkipReason::NotAFile,
        ];
    }

    #[test]
    fn log_counts_each_path_once_and_writes_tsv() {
        let log = SkipLog::new();
        log.record(Skip::new(
            Path::new("b.png"),
            SkipReason::Corrupt,
            "truncated",
        ));
        log.record(Skip::new(
            Path::new("b.png"),
            SkipReason::Corrupt,
            "truncated",
        ));
        log.extend([
            Skip::new(
                Path::new("a\tx.jpg"),
                SkipReason::NotImage,
                "unknown signature",
            ),
            Skip::new(Path::new("c.png"), SkipReason::Empty, "0 bytes"),
        ]);
        log.record_upscaled(Path::new("d.png"));
        log.record_upscaled(Path::new("d.png"));
        let s = log.summary();
        assert_eq!((s.skipped, s.upscaled), (3, 1));
        assert_eq!(s.by_reason[&SkipReason::Corrupt], 1);
        assert_eq!(
            s.to_string(),
            "skipped 3 file(s) (empty file 1, truncated or corrupt 1, not an image 1); \
             1 image(s) smaller than the crop were resized up"
        );
        assert_eq!(
            log.to_tsv(),
            "path\treason\tdetail\na\\tx.jpg\tnot_image\tunknown signature\n\
             b.png\tcorrupt\ttruncated\nc.png\tempty\t0 bytes\n"
        );
    }

    #[test]
    fn reason_names_match_serde() {
        for r in SkipReason::ALL {
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.name())
            );
        }
    }
}
