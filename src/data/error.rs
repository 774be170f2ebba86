//! Errors a caller of the data layer branches on: a dataset that cannot be used at all
//! (exit code 2 in the CLI), or an option that is out of range. A single bad image is
//! never one of these: it becomes a [`super::Skip`] and the run goes on.

use std::path::PathBuf;

/// The layouts `discover` understands, quoted in every "nothing found" message.
pub const EXPECTED_LAYOUTS: &str = "expected one of:
  ROOT/{0_real,1_fake}/*.png                  (one set; also real/fake or nature/ai)
  ROOT/{class}/{0_real,1_fake}/*.png          (CNNDetection / ForenSynths train and val)
  ROOT/{generator}/{class}/{0_real,1_fake}/*  (test roots, classes optional)
  ROOT/{generator}/{train,val}/{nature,ai}/*  (GenImage; pick the split)";

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{} is not a directory: expected a dataset root folder", path.display())]
    NotADirectory { path: PathBuf },

    #[error(
        "no label folders (0_real/1_fake, real/fake, nature/ai) under {}; {}\n{EXPECTED_LAYOUTS}",
        root.display(), found_list("found sub-folders", found)
    )]
    NoLabelFolders { root: PathBuf, found: Vec<String> },

    #[error(
        "no usable images under {}: {} label folder(s) found ({}), {skipped} file(s) skipped; \
         supported images are PNG and JPEG (.png, .jpg, .jpeg)",
        root.display(), sets.len(), short_list(sets)
    )]
    NoImages {
        root: PathBuf,
        sets: Vec<String>,
        skipped: usize,
    },

    #[error(
        "class filter {} matched nothing under {} for: {}; {}",
        short_list(wanted), root.display(), missing.join(", "), found_list("found", found)
    )]
    UnknownClass {
        root: PathBuf,
        wanted: Vec<String>,
        missing: Vec<String>,
        found: Vec<String>,
    },

    #[error(
        "{count} image(s) of the {first} are also in the {second}{}: {}{}. Sets must be disjoint, \
         or the numbers measure memory, not detection; remove the shared files or point the \
         sets at separate folders",
        if *others > 0 { format!(" (and {others} more shared between other sets)") } else { String::new() },
        examples.join("; "),
        if *count > examples.len() { ", …" } else { "" }
    )]
    SharedImages {
        first: String,
        second: String,
        count: usize,
        others: usize,
        examples: Vec<String>,
    },

    #[error(
        "the {first} and the {second} hold crops of the same photographs ({count} scene(s): {}{}; \
         source list {}). A photograph's crops are correlated: splits must be by photograph, or \
         the numbers measure memory of the scenes; rebuild the benchmark with `npr synth --reals`",
        examples.join("; "),
        if *count > examples.len() { ", …" } else { "" },
        sources.display()
    )]
    SharedScenes {
        first: String,
        second: String,
        sources: PathBuf,
        count: usize,
        examples: Vec<String>,
    },

    #[error(
        "{} has no `{split}` split folder: looked for {}/{split}/ and {}/{{generator}}/{split}/ \
         (GenImage); {}.{}\n{hint}",
        root.display(), root.display(), root.display(), found_list("found sub-folders", found),
        if outside.is_empty() { String::new() } else {
            format!(" Sets outside any `{split}` folder: {}.", short_list(outside))
        }
    )]
    MissingSplit {
        root: PathBuf,
        split: String,
        found: Vec<String>,
        /// Label-folder sets found outside the split (they would be used for every split).
        outside: Vec<String>,
        /// What to pass instead, e.g. the `--set` that fixes it.
        hint: String,
    },

    #[error("{key}: {message}")]
    Invalid { key: String, message: String },
}

impl DataError {
    pub(crate) fn invalid(key: &str, message: impl Into<String>) -> Self {
        DataError::Invalid {
            key: key.to_string(),
            message: message.into(),
        }
    }
}

fn short_list(items: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut s = items[..items.len().min(SHOWN)].join(", ");
    if items.len() > SHOWN {
        s.push_str(&format!(", … ({} more)", items.len() - SHOWN));
    }
    s
}

fn found_list(what: &str, found: &[String]) -> String {
    if found.is_empty() {
        format!("{what}: none")
    } else {
        format!("{what}: {}", short_list(found))
    }
}
