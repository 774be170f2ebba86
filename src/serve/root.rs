//! Folder mode (`npr serve --root DIR`): the images below one folder, and nothing else.
//!
//! A requested path is relative to the root, made only of plain names (no `..`, no `.`
//! games, no absolute path, no drive prefix), and must still lie below the root after
//! every symlink is resolved — a link inside the root that points outside is refused, in
//! the listing as well as on request.
use std::path::{Component, Path, PathBuf};

use anyhow::Result;
use serde::Serialize;

use crate::data::{images_under, label_of_folder};

/// Why a path was refused; each carries its message.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathRefused {
    /// Not a relative path of plain names (403).
    #[error("{0}")]
    NotBelowRoot(String),
    /// Below the root by name, but resolves outside it (a symlink; 403).
    #[error("{0}")]
    Escapes(String),
    /// Nothing readable there (404).
    #[error("{0}")]
    NotFound(String),
}

/// One listed image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listed {
    /// Relative to the root, with `/` separators (what [`FolderRoot::resolve`] takes).
    pub path: String,
    /// `real`/`fake` when a folder on the way says so (`0_real`, `1_fake`, `real`, …).
    pub label: Option<&'static str>,
}

/// The root of folder mode, canonical.
#[derive(Debug, Clone)]
pub struct FolderRoot {
    root: PathBuf,
}

impl FolderRoot {
    pub fn new(dir: &Path) -> Result<Self> {
        let root = dir.canonicalize().map_err(|e| {
            crate::usage!(
                "--root {}: cannot be opened ({e}); expected an existing folder",
                dir.display()
            )
        })?;
        if !root.is_dir() {
            return Err(crate::usage!("--root {}: not a folder", dir.display()));
        }
        Ok(FolderRoot { root })
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    /// The file `rel` names below the root, or why not.
    pub fn resolve(&self, rel: &str) -> Result<PathBuf, PathRefused> {
        check_relative(rel)?;
        let joined = self.root.join(rel);
        let real = joined
            .canonicalize()
            .map_err(|e| PathRefused::NotFound(format!("{rel}: {e}")))?;
        if !real.starts_with(&self.root) {
            return Err(PathRefused::Escapes(format!(
                "{rel}: leads outside the served folder (a symlink)"
            )));
        }
        if !real.is_file() {
            return Err(PathRefused::NotFound(format!("{rel}: not a file")));
        }
        Ok(real)
    }

    /// The images below the root (at most `max`, in sorted order) and how many more there
    /// were; images whose real path lies outside the root are left out.
    pub fn list(&self, max: usize) -> Result<(Vec<Listed>, usize)> {
        let (files, _) = images_under(std::slice::from_ref(&self.root))?;
        let listable: Vec<String> = files
            .iter()
            .filter_map(|file| file.strip_prefix(&self.root).ok())
            .map(|rel| rel.to_string_lossy().replace('\\', "/"))
            .filter(|rel| self.resolve(rel).is_ok())
            .collect();
        let more = listable.len().saturating_sub(max);
        let listed = listable.into_iter().take(max).map(|path| Listed {
            label: label_of(&path),
            path,
        });
        Ok((listed.collect(), more))
    }
}

/// Refuses anything but a non-empty relative path of plain names.
pub fn check_relative(rel: &str) -> Result<(), PathRefused> {
    let refuse = |why: &str| Err(PathRefused::NotBelowRoot(format!("{rel:?}: {why}")));
    if rel.is_empty() {
        return refuse("empty path");
    }
    if rel.contains('\0') {
        return refuse("contains a NUL byte");
    }
    if rel.starts_with('/') || rel.starts_with('\\') {
        return refuse("absolute paths are refused; give a path relative to the served folder");
    }
    for part in Path::new(rel).components() {
        match part {
            Component::Normal(name) if !name.to_string_lossy().contains('\\') => {}
            Component::CurDir => {}
            Component::ParentDir => return refuse("`..` is refused"),
            _ => return refuse("only plain folder and file names are allowed"),
        }
    }
    Ok(())
}

/// The label the nearest label folder on the path gives.
fn label_of(rel: &str) -> Option<&'static str> {
    // The nearest folder first; the last part is the file name.
    let label = rel.rsplit('/').skip(1).find_map(label_of_folder)?;
    Some(["real", "fake"][usize::from(label)]) // REAL = 0, FAKE = 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_pass() {
        // (path, allowed)
        for (rel, ok) in [
            ("a.png", true),
            ("gen/1_fake/a.png", true),
            ("./a.png", true),
            ("", false),
            ("../a.png", false),
            ("gen/../../a.png", false),
            ("gen/..", false),
            ("/etc/passwd", false),
            ("\\\\server\\share", false),
            ("a\\..\\b.png", false),
            ("a\0b", false),
        ] {
            assert_eq!(check_relative(rel).is_ok(), ok, "{rel:?}");
        }
    }

    #[test]
    fn labels_come_from_the_nearest_label_folder() {
        for (rel, want) in [
            ("gen/1_fake/a.png", Some("fake")),
            ("0_real/sub/a.png", Some("real")),
            ("fake/real/a.png", Some("real")),
            ("a.png", None),
            ("1_fake.png", None),
        ] {
            assert_eq!(label_of(rel), want, "{rel}");
        }
    }

    #[test]
    fn symlinks_out_of_the_root_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(root.join("1_fake")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(root.join("1_fake/in.png"), b"x").unwrap();
        std::fs::write(outside.join("secret.png"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.join("secret.png"), root.join("link.png")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("linkdir")).unwrap();
        std::os::unix::fs::symlink(root.join("1_fake/in.png"), root.join("inner.png")).unwrap();
        let r = FolderRoot::new(&root).unwrap();
        assert!(r.resolve("1_fake/in.png").is_ok());
        assert!(
            r.resolve("inner.png").is_ok(),
            "a link that stays inside is fine"
        );
        assert!(matches!(
            r.resolve("link.png"),
            Err(PathRefused::Escapes(_))
        ));
        assert!(matches!(
            r.resolve("linkdir/secret.png"),
            Err(PathRefused::Escapes(_))
        ));
        assert!(matches!(
            r.resolve("missing.png"),
            Err(PathRefused::NotFound(_))
        ));
        assert!(matches!(r.resolve("1_fake"), Err(PathRefused::NotFound(_))));
        let (listed, more) = r.list(100).unwrap();
        let paths: Vec<&str> = listed.iter().map(|l| l.path.as_str()).collect();
        assert_eq!(paths, ["1_fake/in.png", "inner.png"]);
        assert_eq!(listed[0].label, Some("fake"));
        assert_eq!(more, 0);
        let (listed, more) = r.list(1).unwrap();
        assert_eq!((listed.len(), more), (1, 1));
    }
}
