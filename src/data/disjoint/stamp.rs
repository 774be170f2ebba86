//! What the check learns of a file without reading it: its resolved path (two names of one
//! file are one image) and its [`Stamp`], by which a remembered content hash is known to
//! still describe the file.
use std::collections::HashMap;
use std::fs::{self, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Size, modification and status-change times (ns) and inode. Writing a file moves its
/// mtime and ctime; `touch -d`, `cp -p` or `rsync -t` can set the mtime back, but not the
/// ctime, and replacing a file by another (a rename) changes the inode: so an equal stamp
/// means unchanged bytes, as for git's index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub inode: u64,
}

impl Stamp {
    pub fn of(m: &Metadata) -> Stamp {
        let ns = |secs: i64, nsec: i64| secs.saturating_mul(1_000_000_000).saturating_add(nsec);
        Stamp {
            size: m.len(),
            mtime_ns: ns(m.mtime(), m.mtime_nsec()),
            ctime_ns: ns(m.ctime(), m.ctime_nsec()),
            inode: m.ino(),
        }
    }

    /// The stamp of the file at `path` now (symlinks followed), if it can be read.
    pub fn now(path: &Path) -> Option<Stamp> {
        fs::metadata(path).ok().map(|m| Stamp::of(&m))
    }

    /// The later of the two times, ns since the epoch.
    pub fn newest_ns(&self) -> i64 {
        self.mtime_ns.max(self.ctime_ns)
    }
}

/// Resolves paths as `fs::canonicalize` does, with one `lstat` per file: the folder of each
/// file is canonicalised once, so a file that is not a symlink costs one system call
/// instead of one per path component (the whole cost of a start whose hashes are cached).
#[derive(Default)]
pub struct Resolver {
    folders: HashMap<PathBuf, Option<PathBuf>>,
}

impl Resolver {
    /// The resolved path (the path as given when it cannot be resolved) and the stamp
    /// (None when the file cannot be examined).
    pub fn resolve(&mut self, path: &Path) -> (PathBuf, Option<Stamp>) {
        match fs::symlink_metadata(path) {
            Ok(m) if !m.file_type().is_symlink() => {
                let in_folder = match (path.parent(), path.file_name()) {
                    (Some(folder), Some(name)) => self.folder(folder).map(|f| f.join(name)),
                    _ => None,
                };
                let resolved = in_folder.unwrap_or_else(|| canonical_or_given(path));
                (resolved, Some(Stamp::of(&m)))
            }
            _ => (canonical_or_given(path), Stamp::now(path)),
        }
    }

    fn folder(&mut self, folder: &Path) -> Option<&PathBuf> {
        if !self.folders.contains_key(folder) {
            let canonical = fs::canonicalize(folder).ok();
            self.folders.insert(folder.to_path_buf(), canonical);
        }
        self.folders[folder].as_ref()
    }
}

fn canonical_or_given(path: &Path) -> PathBuf {
    fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::fixtures::Tree;

    #[test]
    fn paths_resolve_as_canonicalize_does() {
        let tree = Tree::new();
        let a = tree.write("real/a.png", b"a");
        std::os::unix::fs::symlink(tree.path("real"), tree.path("linked")).unwrap();
        std::os::unix::fs::symlink(&a, tree.path("other/b.png")).unwrap();
        let mut r = Resolver::default();
        for p in [
            a.clone(),
            tree.path("linked/a.png"),
            tree.path("other/../real/a.png"),
            tree.path("other/b.png"),
        ] {
            let (resolved, stamp) = r.resolve(&p);
            assert_eq!(resolved, fs::canonicalize(&a).unwrap(), "{}", p.display());
            assert_eq!(stamp, Stamp::now(&a), "{}", p.display());
        }
        let missing = tree.root().join("nowhere/c.png");
        assert_eq!(r.resolve(&missing), (missing.clone(), None));
    }
}
