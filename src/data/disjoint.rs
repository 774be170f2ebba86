//! Training, validation and test sets never share an image: a detector scored on images it
//! was trained on (or whose checkpoint was chosen on them) reports numbers that mean
//! nothing, and nothing in the numbers themselves would show it.
//!
//! Two files are the same image when their resolved paths are equal (the same file reached
//! through a symlink or `..`), or when their bytes are equal (a copy under another name).
//! Content is compared only where it can match: files are grouped by size first, and only
//! sizes that occur in two sets are hashed, then confirmed byte for byte. So the cost is one
//! `stat` per file plus reading the few files whose size collides across sets.
use std::collections::HashMap;
use std::fs;
use std::hash::{DefaultHasher, Hasher};
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{DataError, Sample};

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

/// Every image that sits in two of the named sets, as (index of the earlier set, index of
/// the later set, the two files). A file that cannot be read is compared by path only
/// (discovery has already reported it, and the loader skips it).
pub fn shared_images(sets: &[(&str, &[Sample])]) -> Vec<(usize, usize, Shared)> {
    let mut found = Vec::new();
    // Resolved paths: a file that cannot be resolved is compared by its path as given
    // (discovery has already reported it unreadable if it is).
    let mut owner: HashMap<PathBuf, (usize, &Path)> = HashMap::new();
    for (i, (_, samples)) in sets.iter().enumerate() {
        for s in *samples {
            let resolved = fs::canonicalize(&s.path).unwrap_or_else(|_| s.path.clone());
            match owner.get(&resolved) {
                Some(&(j, first)) if j != i => found.push((
                    j,
                    i,
                    Shared {
                        first: first.to_path_buf(),
                        second: s.path.clone(),
                        by: SameBy::Path,
                    },
                )),
                Some(_) => {}
                None => {
                    owner.insert(resolved, (i, &s.path));
                }
            }
        }
    }
    // Content: group by size, hash only sizes present in two sets.
    let mut by_size: HashMap<u64, Vec<(usize, &Path)>> = HashMap::new();
    for (i, (_, samples)) in sets.iter().enumerate() {
        for s in *samples {
            if let Ok(m) = fs::metadata(&s.path) {
                by_size.entry(m.len()).or_default().push((i, &s.path));
            }
        }
    }
    for (_, files) in by_size {
        if files.iter().all(|(i, _)| *i == files[0].0) {
            continue;
        }
        let mut by_hash: HashMap<u64, Vec<(usize, &Path)>> = HashMap::new();
        for (i, p) in files {
            if let Some(h) = content_hash(p) {
                by_hash.entry(h).or_default().push((i, p));
            }
        }
        for (_, group) in by_hash {
            for (a, &(i, p)) in group.iter().enumerate() {
                // The first earlier member of another set with equal bytes, if any.
                let twin = group[..a].iter().find(|(j, q)| {
                    *j != i && !same_file(p, q) && fs::read(p).ok() == fs::read(q).ok()
                });
                if let Some(&(j, q)) = twin {
                    found.push((
                        j.min(i),
                        j.max(i),
                        Shared {
                            first: if j < i { q } else { p }.to_path_buf(),
                            second: if j < i { p } else { q }.to_path_buf(),
                            by: SameBy::Content,
                        },
                    ));
                }
            }
        }
    }
    found.sort_by(|a, b| (a.0, a.1, &a.2.first).cmp(&(b.0, b.1, &b.2.first)));
    found
}

/// Stops with [`DataError::SharedImages`] when two sets share an image, where at least one
/// of the two is among the first `fitted` sets (training and validation: the images a model
/// was fitted or selected on). Two test sets may share images; that leaks nothing.
pub fn check_disjoint(sets: &[(&str, &[Sample])], fitted: usize) -> Result<(), DataError> {
    let mut shared = shared_images(sets);
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

fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

/// A fixed-key SipHash of the file's bytes (equal within one run; confirmed byte for byte).
fn content_hash(path: &Path) -> Option<u64> {
    let mut file = fs::File::open(path).ok()?;
    let mut hasher = DefaultHasher::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).ok()?;
        if n == 0 {
            return Some(hasher.finish());
        }
        hasher.write(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::{touch_png, Tree};
    use super::*;

    fn sample(path: PathBuf) -> Sample {
        Sample {
            path,
            label: 0,
            generator: "g".into(),
            class: String::new(),
        }
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
            check_disjoint(&sets, 0).is_ok(),
            "test sets may share images"
        );
        let err = check_disjoint(&[("training set", &train), ("test set synth", &copied)], 1)
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
}
