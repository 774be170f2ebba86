//! The content hashes of earlier starts. Without them every `npr train`, every `--resume`
//! (every Slurm requeue) and every `npr test` against a checkpoint's training data reads
//! every file whose size it shares with a file of another set: on real data most of
//! them (up to ≈ 72 GB for ForenSynths' 720k training images).
//!
//! One file per training data root, found again by every command that checks that data,
//! by every user and on every machine that sees the folder: `DATAROOT/.npr-split-hashes.csv`,
//! or, where the root is not writable, `$XDG_CACHE_HOME/npr/` (`~/.cache/npr/`);
//! `NPR_SPLIT_CACHE` names the file outright.
//!
//! Safe to lose, to share and to find damaged: a row is (resolved path, [`Stamp`], hash),
//! and a hash is used only while the file's stamp is unchanged, so a changed file is hashed
//! again. A file whose stamp is less than [`RACY_NS`] older than the check's start is not
//! recorded: it may be written again within the same timestamp tick (git's "racy" files).
//! The cache is written whole (`crate::atomic`) with a checksum of its rows in its first
//! line, so a torn, corrupt, edited or older-format file is ignored with a one-line notice,
//! as is one that cannot be read or written: the check never fails because of its cache.
//! Concurrent writers (the cells of an ablation) each write a whole file; the last one
//! wins, and what it lacks is hashed again at the next start.
use std::collections::HashMap;
use std::ffi::CString;
use std::fs::File;
use std::hash::Hasher;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use siphasher::sip::SipHasher13;

use super::stamp::Stamp;

/// Names the cache file (any path), replacing the default location.
pub const ENV: &str = "NPR_SPLIT_CACHE";
/// The cache file's name inside a writable data root.
pub const NAME: &str = ".npr-split-hashes.csv";
/// Files changed this recently when the check starts are hashed but not recorded (2 s:
/// coarser than the timestamps of any common Linux file system).
pub const RACY_NS: i64 = 2_000_000_000;
/// The first line, before the checksum (16 hex digits) of every line after it. A new
/// format gets a new version: an old file is then ignored, never misread.
const MAGIC: &str = "# npr split hashes v1; SipHash-1-3 of the rows: ";

/// Where the hashes of one data root are kept (nowhere for [`HashCache::none`]).
#[derive(Debug)]
pub struct HashCache {
    file: Option<PathBuf>,
    /// A save failed: said once, not tried again by this process.
    failed: AtomicBool,
}

/// One remembered hash: a line of the file.
#[derive(Debug, Serialize, Deserialize)]
struct Row {
    path: String,
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    inode: u64,
    hash: u64,
}

impl Row {
    fn stamp(&self) -> Stamp {
        let (size, mtime_ns, ctime_ns, inode) =
            (self.size, self.mtime_ns, self.ctime_ns, self.inode);
        Stamp {
            size,
            mtime_ns,
            ctime_ns,
            inode,
        }
    }
}

/// The hashes known to one check: loaded, used, added to, saved.
#[derive(Debug, Default)]
pub struct Known {
    entries: HashMap<PathBuf, Entry>,
    /// Something was added or replaced: worth writing.
    changed: bool,
}

#[derive(Debug)]
struct Entry {
    stamp: Stamp,
    hash: u64,
    /// Looked up by this check (unused entries are kept only while still valid).
    used: bool,
}

impl Known {
    /// The remembered hash of the file at `resolved`, if its stamp is unchanged.
    pub fn hash(&mut self, resolved: &Path, stamp: Stamp) -> Option<u64> {
        let entry = self.entries.get_mut(resolved)?;
        entry.used = true;
        (entry.stamp == stamp).then_some(entry.hash)
    }

    /// Remembers `hash` for the file at `resolved`, unless its stamp is racy (see the
    /// module docs) for a check that started at `started_ns`.
    pub fn record(&mut self, resolved: &Path, stamp: Stamp, hash: u64, started_ns: i64) {
        if stamp.newest_ns() > started_ns.saturating_sub(RACY_NS) {
            self.changed |= self.entries.remove(resolved).is_some();
            return;
        }
        self.changed = true;
        let used = true;
        self.entries
            .insert(resolved.to_path_buf(), Entry { stamp, hash, used });
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

impl HashCache {
    /// The cache of the data under `root` (see the module docs).
    pub fn for_data(root: &Path) -> HashCache {
        if let Some(file) = std::env::var_os(ENV).filter(|v| !v.is_empty()) {
            return HashCache::at(file.into());
        }
        if writable(root) {
            return HashCache::at(root.join(NAME));
        }
        let canonical = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        let mut key = SipHasher13::new();
        key.write(canonical.as_os_str().as_bytes());
        let name = format!("split-hashes-{:016x}.csv", key.finish());
        HashCache::in_file(user_cache_dir().map(|d| d.join("npr").join(name)))
    }

    /// A cache in `file`.
    pub fn at(file: PathBuf) -> HashCache {
        HashCache::in_file(Some(file))
    }

    /// No cache: every start hashes.
    pub fn none() -> HashCache {
        HashCache::in_file(None)
    }

    fn in_file(file: Option<PathBuf>) -> HashCache {
        let failed = AtomicBool::new(false);
        HashCache { file, failed }
    }

    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The remembered hashes; none (after a one-line notice) when the file is damaged.
    pub fn load(&self) -> Known {
        let (known, notice) = self.loaded();
        if let Some(notice) = notice {
            eprintln!("{notice}");
        }
        known
    }

    /// [`Self::load`], with the notice to print.
    fn loaded(&self) -> (Known, Option<String>) {
        let Some(file) = &self.file else {
            return (Known::default(), None);
        };
        match read(file) {
            Ok(entries) => {
                let changed = false;
                (Known { entries, changed }, None)
            }
            Err(why) => {
                let notice = format!(
                    "note: ignoring the split hash cache {} ({why}): its files are hashed again",
                    file.display()
                );
                (Known::default(), Some(notice))
            }
        }
    }

    /// Writes `known` when it changed since it was loaded or last saved, without the
    /// entries no lookup used whose file has changed or gone. A failure is a one-line
    /// notice, once.
    pub fn save(&self, known: &mut Known) {
        let Some(file) = &self.file else {
            return;
        };
        if !known.changed || self.failed.load(Ordering::Relaxed) {
            return;
        }
        known
            .entries
            .retain(|path, e| e.used || Stamp::now(path) == Some(e.stamp));
        known.changed = false;
        if let Err(e) = write(file, &known.entries) {
            self.failed.store(true, Ordering::Relaxed);
            eprintln!(
                "note: the split hash cache was not saved ({e:#}): the next start hashes these files again"
            );
        }
    }
}

/// The rows of `file`; an empty map when there is none yet, the reason when it is damaged.
fn read(file: &Path) -> Result<HashMap<PathBuf, Entry>, String> {
    let f = match File::open(file) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(e.to_string()),
    };
    let mut reader = BufReader::new(f);
    let mut first = String::new();
    reader.read_line(&mut first).map_err(|e| e.to_string())?;
    let want = (first.strip_prefix(MAGIC))
        .and_then(|hex| u64::from_str_radix(hex.trim_end(), 16).ok())
        .ok_or("not a cache of this version of npr")?;
    let mut body = Checksummed {
        inner: reader,
        sum: SipHasher13::new(),
    };
    let mut entries = HashMap::new();
    for row in csv::Reader::from_reader(&mut body).deserialize::<Row>() {
        let row = row.map_err(|e| e.to_string())?;
        let (stamp, hash, used) = (row.stamp(), row.hash, false);
        entries.insert(PathBuf::from(row.path), Entry { stamp, hash, used });
    }
    if body.sum.finish() != want {
        return Err("its checksum does not match: a torn or edited file".into());
    }
    Ok(entries)
}

/// `entries` as the file [`read`] reads, sorted by path, written atomically. Paths that
/// are not UTF-8 are left out (hashed at every start).
fn write(file: &Path, entries: &HashMap<PathBuf, Entry>) -> anyhow::Result<()> {
    let mut rows: Vec<Row> = entries
        .iter()
        .filter_map(|(path, e)| {
            let path = path.to_str()?.to_string();
            let Stamp {
                size,
                mtime_ns,
                ctime_ns,
                inode,
            } = e.stamp;
            let hash = e.hash;
            Some(Row {
                path,
                size,
                mtime_ns,
                ctime_ns,
                inode,
                hash,
            })
        })
        .collect();
    rows.sort_by(|a, b| a.path.cmp(&b.path));
    let head = format!("{MAGIC}{:016x}\n", 0);
    let mut w = csv::Writer::from_writer(head.clone().into_bytes());
    for row in rows {
        w.serialize(row)?;
    }
    let mut bytes = w.into_inner()?;
    let mut sum = SipHasher13::new();
    sum.write(&bytes[head.len()..]);
    let digits = MAGIC.len()..head.len() - 1;
    bytes[digits].copy_from_slice(format!("{:016x}", sum.finish()).as_bytes());
    if let Some(folder) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)?;
    }
    crate::atomic::write(file, &bytes)
}

/// A reader that hashes what passes through it.
struct Checksummed<R> {
    inner: R,
    sum: SipHasher13,
}

impl<R: Read> Read for Checksummed<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sum.write(&buf[..n]);
        Ok(n)
    }
}

/// Whether this process may create files in `dir` (`access(2)`, so a read-only mount or
/// a shared data set owned by someone else counts as not writable).
fn writable(dir: &Path) -> bool {
    let Ok(c) = CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

/// `$XDG_CACHE_HOME`, else `$HOME/.cache`.
fn user_cache_dir() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from);
    xdg.filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::fixtures::Tree;

    fn stamp(size: u64) -> Stamp {
        Stamp {
            size,
            mtime_ns: 1_000,
            ctime_ns: 2_000,
            inode: 7,
        }
    }

    #[test]
    fn hashes_round_trip_and_a_damaged_file_is_ignored_with_a_notice() {
        let tree = Tree::new();
        let cache = HashCache::at(tree.root().join("sub/hashes.csv"));
        let mut known = cache.load();
        let odd = [
            "plain.png",
            "a,b.png",
            "say \"x\".png",
            "two\nlines.png",
            "é.png",
        ];
        for (i, name) in odd.iter().enumerate() {
            known.record(
                &tree.root().join(name),
                stamp(i as u64),
                u64::MAX - i as u64,
                i64::MAX,
            );
        }
        cache.save(&mut known);
        let (mut again, notice) = cache.loaded();
        assert_eq!((again.len(), notice), (odd.len(), None));
        for (i, name) in odd.iter().enumerate() {
            let path = tree.root().join(name);
            assert_eq!(
                again.hash(&path, stamp(i as u64)),
                Some(u64::MAX - i as u64),
                "{name}"
            );
            assert_eq!(again.hash(&path, stamp(99)), None, "{name}: another stamp");
        }

        let file = cache.file().unwrap();
        let text = std::fs::read_to_string(file).unwrap();
        let damaged = [
            ("garbage", "garbage\n".to_string()),
            ("empty", String::new()),
            (
                "older format",
                "# npr split hashes v0; …\npath\n".to_string(),
            ),
            ("torn", text[..text.len() - 5].to_string()),
            (
                "edited",
                text.replacen("18446744073709551615", "18446744073709551614", 1),
            ),
        ];
        for (name, content) in damaged {
            std::fs::write(file, content).unwrap();
            let (known, notice) = cache.loaded();
            assert_eq!(known.len(), 0, "{name}");
            let notice = notice.unwrap_or_default();
            assert!(
                notice.starts_with("note: ignoring the split hash cache"),
                "{name}: {notice}"
            );
        }
        // A cache that cannot be written is a notice too, never an error.
        let blocked = HashCache::at(file.join("below_a_file.csv"));
        let mut known = blocked.load();
        known.record(&tree.root().join("x"), stamp(1), 1, i64::MAX);
        blocked.save(&mut known);
    }

    #[test]
    fn files_changed_just_before_the_start_are_not_remembered() {
        let mut known = Known::default();
        let started = 10 * RACY_NS;
        let (old, recent) = (Path::new("old"), Path::new("recent"));
        let at = |ns: i64| Stamp {
            size: 1,
            mtime_ns: ns - 5,
            ctime_ns: ns,
            inode: 1,
        };
        known.record(old, at(started - RACY_NS - 1), 1, started);
        known.record(recent, at(started - RACY_NS + 1), 2, started);
        assert_eq!(known.hash(old, at(started - RACY_NS - 1)), Some(1));
        assert_eq!(known.hash(recent, at(started - RACY_NS + 1)), None);
        assert_eq!(known.len(), 1);
    }
}
