//! The training and validation sets of a run, found on disk and checked before any work:
//! both split folders exist (or validation is an explicit hold-out share), both labels are
//! present in training, and training, validation and the named test sets share no image.
use std::path::PathBuf;

use super::discover::{discover_required_split, discover_test_set, split_val, Sample, Summary};
use super::disjoint::{check_disjoint, HashCache};
use super::photo_sources::check_photo_sources;
use super::skip::SkipLog;
use super::{fingerprint, DataError, FAKE, REAL};

/// Where validation comes from.
#[derive(Clone, Debug, PartialEq)]
pub enum ValFrom {
    /// A split folder beside the training split (`val`).
    Folder(String),
    /// A stratified, seeded share of the training set.
    Fraction(f64),
}

/// What to look for: the `data.*` keys of the config, and the test sets to keep apart.
#[derive(Clone, Debug)]
pub struct SplitSpec {
    pub root: PathBuf,
    pub train_split: String,
    pub val: ValFrom,
    /// Content classes to keep (empty: all).
    pub classes: Vec<String>,
    /// Seeds the hold-out share.
    pub seed: u64,
    /// `(name, root)` of test sets that must not share an image with training or validation
    /// (those that do not exist on this machine are left out).
    pub tests: Vec<(String, PathBuf)>,
}

/// The training and validation samples, with what meta.json and the checkpoints record.
pub struct Splits {
    pub train: Vec<Sample>,
    pub val: Vec<Sample>,
    /// Per-split summaries, counts and the sets checked for disjointness (meta.json).
    pub summary: serde_json::Value,
    /// [`fingerprint`] of each list, stored in every checkpoint.
    pub train_fingerprint: String,
    pub val_fingerprint: String,
}

impl SplitSpec {
    fn classes(&self) -> Option<&[String]> {
        (!self.classes.is_empty()).then_some(self.classes.as_slice())
    }

    /// The training and validation samples and their summary. A root without the split
    /// folders is an error that shows the `--set` fixing it; `Fraction` is the explicit
    /// way to carve validation out of the training data.
    pub fn discover(
        &self,
        skips: &SkipLog,
    ) -> Result<(Vec<Sample>, Vec<Sample>, serde_json::Value), DataError> {
        let root = self.root.display();
        let train_hint = format!(
            "Point data.dataroot at the folder that holds `{t}/` (and the validation split), or \
             train on {root} itself and hold out a share of it for validation: \
             --set data.train_split=. --set data.val_fraction=0.2",
            t = self.train_split
        );
        let found =
            discover_required_split(&self.root, &self.train_split, self.classes(), &train_hint)?;
        skips.extend(found.skipped.iter().cloned());
        let (train, val, val_summary) = match &self.val {
            ValFrom::Fraction(f) => {
                let (t, v) = split_val(found.samples.clone(), *f, self.seed);
                (t, v, serde_json::json!({ "val_fraction": f }))
            }
            ValFrom::Folder(split) => {
                let hint = "Validation never reuses the training images: hold out a share of the \
                            training set instead with --set data.val_fraction=0.2, or name the \
                            validation folder with --set data.val_split=NAME";
                let v = discover_required_split(&self.root, split, self.classes(), hint)?;
                skips.extend(v.skipped.iter().cloned());
                let summary = serde_json::to_value(&v.summary).unwrap_or_default();
                (found.samples.clone(), v.samples, summary)
            }
        };
        let summary = serde_json::json!({
            "train": serde_json::to_value(&found.summary).unwrap_or_default(),
            "val": val_summary,
            "n_train": train.len(),
            "n_val": val.len(),
        });
        Ok((train, val, summary))
    }

    /// [`Self::discover`], then the checks a run needs before it starts: both sets
    /// non-empty, both labels in training, and no image shared with validation or a test set.
    pub fn load(&self, skips: &SkipLog) -> Result<Splits, DataError> {
        let (train, val, mut summary) = self.discover(skips)?;
        eprintln!(
            "training set ({}):\n{}",
            self.root.display(),
            Summary::of(&train, 0)
        );
        let usable = |message: String| DataError::invalid("data.dataroot", message);
        if train.is_empty() || val.is_empty() {
            return Err(usable(format!(
                "empty training ({}) or validation ({}) set: check data.dataroot, data.train_split and data.val_split/val_fraction",
                train.len(),
                val.len()
            )));
        }
        // A detector needs both classes: a misnamed label folder must not train a one-class model.
        let count = |v: &[Sample], label: u8| v.iter().filter(|s| s.label == label).count();
        let (real, fake) = (count(&train, REAL), count(&train, FAKE));
        if real == 0 || fake == 0 {
            return Err(usable(format!(
                "the training set has {real} real and {fake} fake images: both label folders are needed (0_real/1_fake, real/fake or nature/ai); check data.dataroot and data.train_split"
            )));
        }
        if count(&val, REAL) == 0 || count(&val, FAKE) == 0 {
            eprintln!(
                "warning: the validation set holds only one class; AP is n/a and accuracy is one-sided"
            );
        }
        // Disjoint by construction: the test sets that exist are checked too.
        let mut tests: Vec<(String, Vec<Sample>)> = Vec::new();
        for (name, root) in self.tests.iter().filter(|(_, r)| r.is_dir()) {
            let (found, _) = discover_test_set(root, None)?;
            tests.push((
                format!("test set {name:?} ({})", root.display()),
                found.samples,
            ));
        }
        let mut named: Vec<(&str, &[Sample])> =
            vec![("training set", &train[..]), ("validation set", &val[..])];
        named.extend(tests.iter().map(|(n, s)| (n.as_str(), &s[..])));
        check_disjoint(&named, 2, &HashCache::for_data(&self.root))?;
        check_photo_sources(&self.root, &named, 2)?;
        summary["checked_disjoint_from"] =
            serde_json::json!(named[1..].iter().map(|(n, _)| *n).collect::<Vec<_>>());
        Ok(Splits {
            train_fingerprint: fingerprint(&train, &self.root),
            val_fingerprint: fingerprint(&val, &self.root),
            train,
            val,
            summary,
        })
    }
}
