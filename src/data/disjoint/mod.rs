//! Training, validation and test sets never share an image: a detector scored on images it
//! was trained on (or whose checkpoint was chosen on them) reports numbers that mean
//! nothing, and nothing in the numbers themselves would show it.
//!
//! Two files are the same image when their resolved paths are equal (the same file reached
//! through a symlink or `..`), or when their bytes are equal (a copy under another name).
//! Content is compared only where it can match: files are grouped by size first, and only
//! sizes that occur in two sets are hashed, then confirmed byte for byte. On real data most
//! sizes occur in two sets, so the hashes are remembered between starts ([`HashCache`]):
//! a start on unchanged data costs one `lstat` per file and reads no image, except the two
//! files of each pair whose hashes are equal (a leak, read to confirm it).
mod content;
mod hash_cache;
mod stamp;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rayon::prelude::*;

use super::{DataError, Sample};
use crate::progress::Progress;
use content::{content_hash, same_bytes, Reads};
pub use hash_cache::HashCache;
use hash_cache::Known;
use stamp::{Resolver, Stamp};

/// How two files were found to be one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameBy {
    /// The same file (equal resolved paths).
    Path,
    /// Different files with identical bytes.
    Content,
}

/// One image found in two sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shared {
    pub first: PathBuf,
    pub second: PathBuf,
    pub by: SameBy,
}

/// Stops with [`DataError::SharedImages`] when two sets share an image, where at least one
/// of the two is among the first `fitted` sets (training and validation: the images a model
/// was fitted or selected on). Two test sets may share images; that leaks nothing. The
/// hashes come from and go to `cache`; what the check cost is one line on stderr.
pub fn check_disjoint(
    sets: &[(&str, &[Sample])],
    fitted: usize,
    cache: &HashCache,
) -> Result<(), DataError> {
    let mut check = Check::new(cache);
    let mut shared = check.shared_images(sets);
    check.save();
    if check.compared > 0 {
        eprintln!("{}", check.summary());
    }
    shared.retain(|(i, _, _)| *i < fitted);
    let Some((i, j, _)) = shared.first() else {
        return Ok(());
    };
    let (i, j) = (*i, *j);
    let pair: Vec<&Shared> = shared
        .iter()
        .filter(|(a, b, _)| (*a, *b) == (i, j))
        .map(|(_, _, s)| s)
        .collect();
    Err(DataError::SharedImages {
        first: sets[i].0.to_string(),
        second: sets[j].0.to_string(),
        count: pair.len(),
        others: shared.len() - pair.len(),
        examples: pair
            .iter()
            .take(3)
            .map(|s| {
                let by = match s.by {
                    SameBy::Path => "same file",
                    SameBy::Content => "identical bytes",
                };
                format!("{} = {} ({by})", s.first.display(), s.second.display())
            })
            .collect(),
    })
}

/// One file of one set, as the check sees it without reading it.
struct Seen<'a> {
    set: usize,
    path: &'a Path,
    resolved: PathBuf,
    /// None when the file cannot be examined: then it is compared by path only.
    stamp: Option<Stamp>,
}

/// An image in two sets: (index of the earlier set, index of the later set, the files).
type Found = (usize, usize, Shared);

/// Hashes read in one go, between two looks at the clock for [`SAVE_EVERY`].
const HASH_BATCH: usize = 4096;
/// A long first start saves the hashes read so far this often, so that a process killed
/// mid-check (a scheduler's time limit) does not lose them.
const SAVE_EVERY: Duration = Duration::from_secs(120);

/// One run of the check: the hashes it knows, when it started, what it read.
struct Check<'c> {
    cache: &'c HashCache,
    known: Known,
    clock: Instant,
    /// Wall clock at the start, ns since the epoch (see [`Known::record`]).
    started_ns: i64,
    reads: Reads,
    files: usize,
    /// Files compared by content (their size occurs in another set), and how many of
    /// those had a remembered hash.
    compared: usize,
    cached: usize,
}

impl<'c> Check<'c> {
    /// A check starting now with the hashes of `cache`.
    fn new(cache: &'c HashCache) -> Check<'c> {
        let clock = Instant::now();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let started_ns = i64::try_from(now.as_nanos()).unwrap_or(i64::MAX);
        Check {
            clock,
            ..Check::started_at(cache, started_ns)
        }
    }

    fn started_at(cache: &'c HashCache, started_ns: i64) -> Check<'c> {
        Check {
            cache,
            known: cache.load(),
            clock: Instant::now(),
            started_ns,
            reads: Reads::default(),
            files: 0,
            compared: 0,
            cached: 0,
        }
    }

    /// Every image that sits in two of the named sets. A file that cannot be read is
    /// compared by path only (discovery has already reported it, and the loader skips it).
    fn shared_images(&mut self, sets: &[(&str, &[Sample])]) -> Vec<Found> {
        let files = survey(sets);
        self.files = files.len();
        let mut found = shared_by_path(&files);
        found.extend(self.shared_by_content(&files));
        found.sort_by(|a, b| {
            (a.0, a.1, &a.2.first, &a.2.second).cmp(&(b.0, b.1, &b.2.first, &b.2.second))
        });
        found
    }

    /// Pairs of files in different sets with equal bytes: grouped by size, then by hash,
    /// then confirmed byte for byte.
    fn shared_by_content(&mut self, files: &[Seen]) -> Vec<Found> {
        let mut by_size: HashMap<u64, Vec<usize>> = HashMap::new();
        for (f, seen) in files.iter().enumerate() {
            if let Some(stamp) = seen.stamp {
                by_size.entry(stamp.size).or_default().push(f);
            }
        }
        let candidates: Vec<usize> = by_size
            .into_values()
            .filter(|group| group.iter().any(|&f| files[f].set != files[group[0]].set))
            .flatten()
            .collect();
        let hashes = self.hashes(files, &candidates);
        let mut by_hash: HashMap<(u64, u64), Vec<usize>> = HashMap::new();
        for (&f, hash) in candidates.iter().zip(hashes) {
            if let (Some(hash), Some(stamp)) = (hash, files[f].stamp) {
                by_hash.entry((stamp.size, hash)).or_default().push(f);
            }
        }
        let mut found = Vec::new();
        for mut group in by_hash.into_values() {
            group.sort_unstable(); // the order of the sets, then of their files
            found.extend(self.confirm(files, &group));
        }
        found
    }

    /// The hash of each candidate: remembered when its stamp is unchanged, else read.
    fn hashes(&mut self, files: &[Seen], candidates: &[usize]) -> Vec<Option<u64>> {
        self.compared = candidates.len();
        let mut hashes = vec![None; candidates.len()];
        let mut misses = Vec::new();
        for (k, &f) in candidates.iter().enumerate() {
            let (resolved, stamp) = (&files[f].resolved, files[f].stamp);
            match stamp.and_then(|s| self.known.hash(resolved, s)) {
                Some(hash) => hashes[k] = Some(hash),
                None => misses.push(&files[f]),
            }
        }
        self.cached = candidates.len() - misses.len();
        let fresh = self.read_hashes(&misses);
        // The slots still empty are the misses, in order.
        let missed = hashes.iter_mut().filter(|h| h.is_none());
        for (slot, hash) in missed.zip(fresh) {
            *slot = hash;
        }
        hashes
    }

    /// Reads the hashes of `files` on every core, remembering each (and saving them every
    /// [`SAVE_EVERY`]); None for a file that cannot be read.
    fn read_hashes(&mut self, files: &[&Seen]) -> Vec<Option<u64>> {
        let progress = Progress::new("split check", files.len() as u64, "files hashed");
        let pool = hashing_pool();
        let mut hashes = Vec::with_capacity(files.len());
        let mut saved = Instant::now();
        for batch in files.chunks(HASH_BATCH) {
            let reads = &self.reads;
            let hash_one = |seen: &&Seen| {
                let hash = content_hash(seen.path, reads);
                progress.inc(1);
                hash
            };
            let fresh: Vec<Option<u64>> = match &pool {
                Some(pool) => pool.install(|| batch.par_iter().map(hash_one).collect()),
                None => batch.iter().map(hash_one).collect(),
            };
            for (seen, &hash) in batch.iter().zip(&fresh) {
                if let (Some(h), Some(stamp)) = (hash, seen.stamp) {
                    self.known.record(&seen.resolved, stamp, h, self.started_ns);
                }
            }
            hashes.extend(fresh);
            if saved.elapsed() >= SAVE_EVERY {
                self.save();
                saved = Instant::now();
            }
        }
        progress.finish();
        hashes
    }

    /// Writes the hashes known so far to the cache (if they changed).
    fn save(&mut self) {
        self.cache.save(&mut self.known);
    }

    /// In one group of equal size and hash, in set order: each file paired with the first
    /// earlier file of another set whose bytes are equal.
    fn confirm(&self, files: &[Seen], group: &[usize]) -> Vec<Found> {
        let mut found = Vec::new();
        for (a, &p) in group.iter().enumerate() {
            let p = &files[p];
            let twin = group[..a].iter().map(|&q| &files[q]).find(|q| {
                q.set != p.set
                    && q.resolved != p.resolved
                    && same_bytes(p.path, q.path, &self.reads)
            });
            if let Some(q) = twin {
                let (first, second) = (q.path.to_path_buf(), p.path.to_path_buf());
                let by = SameBy::Content;
                found.push((q.set, p.set, Shared { first, second, by }));
            }
        }
        found
    }

    /// `split check: 220000 files, 198000 compared by content: 0 read (0.0 MB), 198000
    /// known from DATAROOT/.npr-split-hashes.csv, 1.9 s`.
    fn summary(&self) -> String {
        let from = match self.cache.file() {
            Some(f) => format!("known from {}", f.display()),
            None => "known (no hash cache)".to_string(),
        };
        format!(
            "split check: {} files, {} compared by content: {} read ({}), {} {from}, {:.1} s",
            self.files,
            self.compared,
            self.reads.files(),
            megabytes(self.reads.bytes()),
            self.cached,
            self.clock.elapsed().as_secs_f64()
        )
    }
}

/// Every file of every set, in set order, with its resolved path and stamp.
fn survey<'a>(sets: &[(&str, &'a [Sample])]) -> Vec<Seen<'a>> {
    let total = sets.iter().map(|(_, s)| s.len()).sum::<usize>();
    let progress = Progress::new("split check", total as u64, "files examined");
    let mut resolver = Resolver::default();
    let mut files = Vec::with_capacity(total);
    for (set, (_, samples)) in sets.iter().enumerate() {
        for s in *samples {
            let (resolved, stamp) = resolver.resolve(&s.path);
            files.push(Seen {
                set,
                path: &s.path,
                resolved,
                stamp,
            });
            progress.inc(1);
        }
    }
    progress.finish();
    files
}

/// Files of two sets with one resolved path (a file that cannot be resolved is compared
/// by its path as given; discovery has already reported it if it is unreadable).
fn shared_by_path(files: &[Seen]) -> Vec<Found> {
    let mut found = Vec::new();
    let mut owner: HashMap<&Path, &Seen> = HashMap::new();
    for seen in files {
        match owner.get(seen.resolved.as_path()) {
            Some(first) if first.set != seen.set => {
                let (first_path, second) = (first.path.to_path_buf(), seen.path.to_path_buf());
                let shared = Shared {
                    first: first_path,
                    second,
                    by: SameBy::Path,
                };
                found.push((first.set, seen.set, shared));
            }
            Some(_) => {}
            None => {
                owner.insert(&seen.resolved, seen);
            }
        }
    }
    found
}

/// A pool on the cores this process may use (reads of many small files overlap), or None
/// to hash on this thread.
fn hashing_pool() -> Option<rayon::ThreadPool> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    (cores > 1)
        .then(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(cores)
                .build()
                .ok()
        })
        .flatten()
}

/// Bytes in MB or GB, one decimal.
fn megabytes(bytes: u64) -> String {
    let mb = bytes as f64 / 1e6;
    if mb >= 1000.0 {
        format!("{:.1} GB", mb / 1000.0)
    } else {
        format!("{mb:.1} MB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_print_in_mb_or_gb() {
        assert_eq!(megabytes(2_500_000), "2.5 MB");
        assert_eq!(megabytes(1_234_000_000), "1.2 GB");
    }
    use crate::data::fixtures::{touch_png, Tree};

    fn sample(path: PathBuf) -> Sample {
        Sample {
            path,
            label: 0,
            generator: "g".into(),
            class: String::new(),
        }
    }

    /// The check without a cache.
    fn shared_images(sets: &[(&str, &[Sample])]) -> Vec<Found> {
        Check::new(&HashCache::none()).shared_images(sets)
    }

    #[test]
    fn shared_files_are_found_by_path_and_by_content() {
        let tree = Tree::new();
        touch_png(&tree.path("train/a.png"));
        tree.write("train/b.png", b"bytes of b, unlike a");
        tree.write("val/other.png", b"different bytes, same kind of file");
        // The same file through a symlink, and a copy under another name.
        std::fs::create_dir_all(tree.path("link")).unwrap();
        std::os::unix::fs::symlink(tree.path("train/a.png"), tree.path("link/a.png")).unwrap();
        std::fs::copy(tree.path("train/b.png"), tree.path("val/copy_of_b.png")).unwrap();

        let train = vec![
            sample(tree.path("train/a.png")),
            sample(tree.path("train/b.png")),
        ];
        let val = vec![sample(tree.path("val/other.png"))];
        let linked = vec![sample(tree.path("link/a.png"))];
        let copied = vec![sample(tree.path("val/copy_of_b.png"))];

        struct Case<'a> {
            name: &'a str,
            second: &'a [Sample],
            want: Option<SameBy>,
        }
        let cases = [
            Case {
                name: "disjoint",
                second: &val,
                want: None,
            },
            Case {
                name: "symlink",
                second: &linked,
                want: Some(SameBy::Path),
            },
            Case {
                name: "copy",
                second: &copied,
                want: Some(SameBy::Content),
            },
        ];
        for case in cases {
            let found = shared_images(&[("train", &train), ("val", case.second)]);
            let by: Vec<SameBy> = found.iter().map(|(_, _, s)| s.by).collect();
            match case.want {
                None => assert!(found.is_empty(), "{}: {found:?}", case.name),
                Some(want) => assert_eq!(by, [want], "{}: {found:?}", case.name),
            }
        }
        // Equal bytes inside one set are not an overlap between sets.
        let both = vec![
            sample(tree.path("train/b.png")),
            sample(tree.path("val/copy_of_b.png")),
        ];
        assert!(shared_images(&[("train", &both), ("val", &val)]).is_empty());

        let sets = [("test a", &copied[..]), ("test b", &copied[..])];
        assert!(
            check_disjoint(&sets, 0, &HashCache::none()).is_ok(),
            "test sets may share images"
        );
        let sets = [
            ("training set", &train[..]),
            ("test set synth", &copied[..]),
        ];
        let err = check_disjoint(&sets, 1, &HashCache::none())
            .unwrap_err()
            .to_string();
        for needle in [
            "training set",
            "test set synth",
            "copy_of_b.png",
            "identical bytes",
        ] {
            assert!(err.contains(needle), "{needle:?} not in {err}");
        }
    }

    /// A start of the check at `started_ns` with `cache`: what it found and what it read.
    fn start(
        sets: &[(&str, &[Sample])],
        cache: &HashCache,
        started_ns: i64,
    ) -> (Vec<Found>, u64, usize) {
        let mut check = Check::started_at(cache, started_ns);
        let found = check.shared_images(sets);
        check.save();
        (found, check.reads.files(), check.cached)
    }

    #[test]
    fn a_second_start_on_unchanged_data_reads_no_image_and_a_changed_file_is_hashed() {
        let tree = Tree::new();
        // Equal sizes across the sets, so every file is compared by content.
        let train: Vec<Sample> = (0..4)
            .map(|i| sample(tree.write(&format!("train/{i}.png"), format!("train {i}").as_bytes())))
            .collect();
        let val: Vec<Sample> = (0..3)
            .map(|i| sample(tree.write(&format!("val/{i}.png"), format!("val   {i}").as_bytes())))
            .collect();
        let sets = [("train", &train[..]), ("val", &val[..])];
        let cache = HashCache::at(tree.path("cache/hashes.csv"));
        // Long after the files were written: none of them is racy.
        let later = i64::MAX / 2;

        let (found, read, cached) = start(&sets, &cache, later);
        assert_eq!((found.len(), read, cached), (0, 7, 0));
        let (found, read, cached) = start(&sets, &cache, later);
        assert_eq!(
            (found.len(), read, cached),
            (0, 0, 7),
            "nothing read when nothing changed"
        );

        // Same size, new bytes (a copy of a training image), new mtime: hashed and caught.
        std::fs::write(&val[1].path, b"train 2").unwrap();
        let old = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        std::fs::File::options()
            .write(true)
            .open(&val[1].path)
            .unwrap()
            .set_modified(old)
            .unwrap();
        let (found, read, cached) = start(&sets, &cache, later);
        assert_eq!(
            (read, cached),
            (1 + 2, 6),
            "the changed file, then the pair confirmed"
        );
        let want = (
            0,
            1,
            Shared {
                first: train[2].path.clone(),
                second: val[1].path.clone(),
                by: SameBy::Content,
            },
        );
        assert_eq!(found, [want]);
        // The leak is still caught from the cache alone: only the pair is read again.
        let (found, read, _) = start(&sets, &cache, later);
        assert_eq!((found.len(), read), (1, 2));
    }
}
