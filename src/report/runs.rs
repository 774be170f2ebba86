//! What `npr report` reads: run folders' own files only (config.yaml, meta.json,
//! train_log.csv, test/metrics.csv, test/predictions.csv, test/summary.json,
//! test/attention_weights.npz), so a report can be re-made anywhere the folders are.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};

use crate::config::Config;
use crate::eval::completion;
use crate::eval::npz::Npz;
use crate::eval::outputs::MetricsLine;
use crate::eval::score::branch_means;
use crate::train::log::LogRow;

/// One row of `test/metrics.csv`, as the report uses it.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow {
    pub perturbation: String,
    pub set: String,
    /// A generator, or `mean` (the set's mean row).
    pub generator: String,
    /// `Some(true)` seen in training, `Some(false)` unseen, `None` unknown / mean row.
    pub seen: Option<bool>,
    pub policy: String,
    pub acc: f64,
    pub ap: Option<f64>,
    pub auc: Option<f64>,
}

/// One row of `test/predictions.csv`.
pub use crate::eval::outputs::Prediction;

/// One epoch row of `train_log.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochRow {
    pub epoch: usize,
    pub train_loss: Option<f64>,
    pub val_loss: f64,
    pub val_acc: f64,
}

/// Per-image branch weights from `attention_weights.npz` (mean over the 3 channels).
#[derive(Debug, Clone, PartialEq)]
pub struct BranchWeights {
    pub scales: Vec<f64>,
    pub generators: Vec<String>,
    /// Per image: generator index, label, one weight per branch.
    pub images: Vec<(usize, u8, Vec<f64>)>,
    /// Pooled backbone features of the first images (for t-SNE): image index, features.
    pub features: Vec<(usize, Vec<f32>)>,
}

/// A tested run, as the report sees it.
#[derive(Debug, Clone)]
pub struct Run {
    pub dir: PathBuf,
    pub variant: String,
    pub seed: u64,
    pub config: Config,
    pub revision: String,
    /// The `npr train` command line that made the run (meta.json).
    pub command: String,
    pub metrics: Vec<MetricRow>,
    pub predictions: Vec<Prediction>,
    /// Test throughput per (perturbation, set), from `summary.json`.
    pub images_per_s: BTreeMap<(String, String), f64>,
    pub epochs: Vec<EpochRow>,
    pub weights: Option<BranchWeights>,
    /// Every test folder scored `npr synth` data (their `complete.json` says so).
    pub synthetic: bool,
    /// ... and that data was a photo benchmark (`npr synth --reals`).
    pub photos: bool,
}

impl Run {
    /// Labels and logits of the clean images of `set`, in file order.
    pub fn clean_scores(&self, set: &str) -> (Vec<u8>, Vec<f64>) {
        let clean = self.predictions.iter();
        let clean = clean.filter(|p| p.perturbation == super::analysis::CLEAN && p.set == set);
        clean.map(|p| (p.label, p.logit)).unzip()
    }

    /// How the run was tested at one perturbation level: every (set, policy, generator).
    pub fn protocol(&self, perturbation: &str) -> Vec<String> {
        let mut p: Vec<String> = self
            .metrics
            .iter()
            .filter(|m| m.perturbation == perturbation)
            .map(|m| format!("{}/{}/{}/{}", m.perturbation, m.set, m.policy, m.generator))
            .collect();
        p.sort();
        p
    }

    fn perturbations(&self) -> std::collections::BTreeSet<&str> {
        self.metrics
            .iter()
            .map(|m| m.perturbation.as_str())
            .collect()
    }
}

/// The tested run folders under `roots` (a run folder itself, or folders holding them, two
/// levels deep at most), in path order. A folder counts when it has `config.yaml` and
/// `test/metrics.csv`. A folder reached twice (`--runs A A`, or a root inside another) is
/// refused: it would count its runs twice. A folder that cannot be listed is an error.
pub fn find_runs(roots: &[PathBuf]) -> Result<Vec<PathBuf>> {
    fn visit(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<()> {
        if dir.join("config.yaml").is_file() && dir.join("test/metrics.csv").is_file() {
            out.push(dir.to_path_buf());
            return Ok(());
        }
        if depth == 0 {
            return Ok(());
        }
        let mut children = Vec::new();
        for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
            let path = entry
                .with_context(|| format!("listing {}", dir.display()))?
                .path();
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if path.is_dir() && !hidden {
                children.push(path);
            }
        }
        children.sort();
        for c in children {
            visit(&c, depth - 1, out)?;
        }
        Ok(())
    }
    let mut out = Vec::new();
    for root in roots {
        if !root.is_dir() {
            return Err(crate::usage!("--runs {}: no such folder", root.display()));
        }
        let before = out.len();
        visit(root, 2, &mut out)?;
        if out.len() == before {
            return Err(crate::usage!(
                "--runs {}: no tested run folder found (a run folder has config.yaml and test/metrics.csv; run `npr test --checkpoint RUN` first)",
                root.display()
            ));
        }
    }
    let mut seen: BTreeMap<PathBuf, &PathBuf> = BTreeMap::new();
    for dir in &out {
        let key = dir
            .canonicalize()
            .with_context(|| format!("resolving {}", dir.display()))?;
        if let Some(first) = seen.insert(key, dir) {
            return Err(crate::usage!(
                "--runs: the run folder {} is reached twice (also as {}); name each folder once, or every run would count twice",
                dir.display(),
                first.display()
            ));
        }
    }
    Ok(out)
}

/// Refuses runs that would bias a report: the same (variant, seed) twice (its seeds, std,
/// t-test pairs and Holm family would all inflate), and runs that scored different clean
/// images on a set (their paired tests would pair nothing, or not like with like).
pub fn check_independent(runs: &[Run]) -> Result<()> {
    let mut cells: BTreeMap<(&str, u64), &Path> = BTreeMap::new();
    for r in runs {
        if let Some(other) = cells.insert((r.variant.as_str(), r.seed), &r.dir) {
            return Err(crate::usage!(
                "variant {:?} seed {} appears twice: {} and {}. Report each (variant, seed) once",
                r.variant,
                r.seed,
                other.display(),
                r.dir.display()
            ));
        }
    }
    let images = |r: &Run| -> BTreeMap<String, std::collections::BTreeSet<String>> {
        let mut m: BTreeMap<String, std::collections::BTreeSet<String>> = BTreeMap::new();
        for p in r.predictions.iter().filter(|p| p.perturbation == "none") {
            m.entry(p.set.clone()).or_default().insert(p.path.clone());
        }
        m
    };
    let Some(first) = runs.first() else {
        return Ok(());
    };
    let want = images(first);
    for r in &runs[1..] {
        let got = images(r);
        if let Some(set) = want
            .keys()
            .chain(got.keys())
            .find(|s| want.get(*s) != got.get(*s))
        {
            let count = |m: &BTreeMap<String, std::collections::BTreeSet<String>>| {
                m.get(set).map_or(0, |x| x.len())
            };
            return Err(crate::usage!(
                "{} and {} scored different images on set {set:?} ({} vs {} images, or the same count with other paths): test every run on the same image folders",
                first.dir.display(),
                r.dir.display(),
                count(&want),
                count(&got)
            ));
        }
    }
    Ok(())
}

/// The variant and seed of a run: from the sweep's `ablation.json` (or a shard's
/// `ablation_shard*.json`) beside it, else the config's name without a trailing `_seed{n}`
/// and `train.seed`. A summary that cannot be read is an error, not a fallback: the variant
/// would silently become the config's name and no longer match `--baseline`.
fn variant_and_seed(dir: &Path, config: &Config) -> Result<(String, u64)> {
    let cell = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let parent = dir.parent().unwrap_or(Path::new("."));
    let mut summaries: Vec<PathBuf> = Vec::new();
    for entry in
        std::fs::read_dir(parent).with_context(|| format!("listing {}", parent.display()))?
    {
        let p = entry
            .with_context(|| format!("listing {}", parent.display()))?
            .path();
        let name = p
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        if name.starts_with("ablation") && name.ends_with(".json") {
            summaries.push(p);
        }
    }
    summaries.sort();
    for p in &summaries {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        let cells: Vec<serde_json::Value> = serde_json::from_str(&text).with_context(|| {
            format!(
                "{} is not a sweep summary (a JSON list of cells)",
                p.display()
            )
        })?;
        if let Some(c) = cells.into_iter().find(|c| c["cell"] == cell.as_str()) {
            let variant = c["variant"].as_str();
            let seed = c["seed"].as_u64();
            return match (variant, seed) {
                (Some(v), Some(s)) => Ok((v.to_string(), s)),
                _ => bail!("{}: cell {cell:?} has no variant or seed", p.display()),
            };
        }
    }
    let seed = config.train.seed;
    let name = config
        .name
        .strip_suffix(&format!("_seed{seed}"))
        .unwrap_or(&config.name);
    Ok((name.to_string(), seed))
}

/// Reads one tested run folder.
pub fn read_run(dir: &Path) -> Result<Run> {
    let config = Config::load(&dir.join("config.yaml"), &[])?;
    let (variant, seed) = variant_and_seed(dir, &config)?;
    let (revision, command) = read_meta(dir)?;
    let tested = read_tests(dir)?;
    Ok(Run {
        dir: dir.to_path_buf(),
        variant,
        seed,
        config,
        revision,
        command,
        metrics: tested.metrics,
        predictions: tested.predictions,
        images_per_s: tested.images_per_s,
        epochs: read_epochs(&dir.join("train_log.csv"))?,
        weights: read_weights(&dir.join("test/attention_weights.npz"))?,
        synthetic: tested.synthetic,
        photos: tested.photos,
    })
}

/// The git revision and command line `meta.json` records ("unknown", "not recorded"
/// without it).
fn read_meta(dir: &Path) -> Result<(String, String)> {
    let path = dir.join("meta.json");
    let meta: serde_json::Value = match path.is_file() {
        true => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not valid JSON", path.display()))?
        }
        false => serde_json::Value::Null,
    };
    let revision = meta["git_revision"].as_str().unwrap_or("unknown");
    let command = meta["command"].as_array().map(|a| {
        let words: Vec<&str> = a.iter().filter_map(|x| x.as_str()).collect();
        words.join(" ")
    });
    Ok((
        revision.into(),
        command.unwrap_or_else(|| "not recorded".into()),
    ))
}

/// What a run's test folders hold together.
struct Tested {
    metrics: Vec<MetricRow>,
    predictions: Vec<Prediction>,
    images_per_s: BTreeMap<(String, String), f64>,
    /// Every folder scored the synthetic benchmark (their `complete.json` says).
    synthetic: bool,
    /// ... and every one a photo benchmark.
    photos: bool,
}

/// Every test folder of a run, each complete and current for the run's weights, no
/// (perturbation, set) held by two folders: a level read twice would count its images
/// twice (and narrow every interval by about √2).
fn read_tests(dir: &Path) -> Result<Tested> {
    let checkpoint = crate::checkpoint::resolve(dir)?;
    // Hashed once for all of the run's test folders.
    let weights_sha = completion::checkpoint_sha256(&checkpoint)?;
    let mut tested = Tested {
        metrics: Vec::new(),
        predictions: Vec::new(),
        images_per_s: BTreeMap::new(),
        synthetic: true,
        photos: true,
    };
    let mut origin: BTreeMap<(String, String), PathBuf> = BTreeMap::new();
    for folder in test_folders(dir)? {
        let done = completion::current(&folder, &checkpoint, weights_sha.as_deref())?
            .map_err(|why| crate::usage!("{why}. Run {} again", rebuild_command(dir, &folder)))?;
        tested.synthetic &= done.synthetic;
        tested.photos &= done.photos;
        let (m, p, ips) = read_test_folder(&folder)?;
        for row in &m {
            let key = (row.perturbation.clone(), row.set.clone());
            if let Some(other) = origin.get(&key).filter(|o| *o != &folder) {
                return Err(crate::usage!(
                    "{} and {} both hold set {:?} at perturbation level {:?}: remove one (a sweep belongs in its own folder, `npr test --sweep` writes test_sweep_<kind>/)",
                    other.display(),
                    folder.display(),
                    key.1,
                    key.0
                ));
            }
            origin.insert(key, folder.clone());
        }
        tested.metrics.extend(m);
        tested.predictions.extend(p);
        tested.images_per_s.extend(ips);
    }
    Ok(tested)
}

/// The command that makes a stale or unfinished test folder again.
fn rebuild_command(dir: &Path, folder: &Path) -> String {
    if folder == dir.join("test") {
        return format!(
            "`npr test --checkpoint {}` (`npr ablate` does it for its cells)",
            dir.display()
        );
    }
    format!(
        "the `npr test --checkpoint {} --out {}` that wrote it, with its levels (`--sweep KIND=…` or `--jpeg-quality`/`--blur-sigma`), or remove the folder",
        dir.display(),
        folder.display()
    )
}

/// The epoch rows of `train_log.csv` (none without the file).
fn read_epochs(file: &Path) -> Result<Vec<EpochRow>> {
    if !file.is_file() {
        return Ok(Vec::new());
    }
    let rows = crate::table::read::<LogRow>(file)?.into_iter();
    let epochs = rows.filter(|r| r.kind == "epoch").map(|r| EpochRow {
        epoch: r.epoch,
        train_loss: r.loss.value().filter(|v| !v.is_nan()),
        val_loss: r.val_loss.value().unwrap_or(f64::NAN),
        val_acc: r.val_acc.value().unwrap_or(f64::NAN),
    });
    Ok(epochs.collect())
}

/// `test/` first, then every `test_*/` holding a metrics.csv (e.g. a robustness sweep
/// written by `npr test --sweep jpeg=75,90,100` into `RUN/test_sweep_jpeg/`).
fn test_folders(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut extra: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("test_"))
                && p.join("metrics.csv").is_file()
        })
        .collect();
    extra.sort();
    Ok(std::iter::once(dir.join("test")).chain(extra).collect())
}

type TestFolder = (
    Vec<MetricRow>,
    Vec<Prediction>,
    BTreeMap<(String, String), f64>,
);

/// metrics.csv, predictions.csv and the throughput in summary.json of one test folder.
fn read_test_folder(test: &Path) -> Result<TestFolder> {
    let file = test.join("metrics.csv");
    let metrics = crate::table::read::<MetricsLine>(&file)?
        .into_iter()
        .map(|r| {
            Ok(MetricRow {
                acc: r
                    .acc
                    .with_context(|| format!("{}: empty acc", file.display()))?,
                perturbation: r.perturbation,
                set: r.set,
                generator: r.generator,
                seen: r.seen,
                policy: r.policy,
                ap: r.ap,
                auc: r.auc,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let predictions = crate::table::read(&test.join("predictions.csv"))?;

    let file = test.join("summary.json");
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let summary: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", file.display()))?;
    let images_per_s = summary["sets"]
        .as_array()
        .with_context(|| format!("{}: no \"sets\" list", file.display()))?
        .iter()
        .filter_map(|s| {
            Some((
                (
                    s["perturbation"].as_str()?.to_string(),
                    s["set"].as_str()?.to_string(),
                ),
                s["images_per_s"].as_f64()?,
            ))
        })
        .collect();

    Ok((metrics, predictions, images_per_s))
}

/// Branch weights averaged over the 3 channels; None when the file is absent. An array
/// whose length disagrees with the weights' is an error naming the file and the array.
fn read_weights(path: &Path) -> Result<Option<BranchWeights>> {
    if !path.is_file() {
        return Ok(None);
    }
    let mut npz = Npz::open(path)?;
    let (shape, values) = npz.numbers("weights")?;
    let (n, k) = match shape[..] {
        [n, k, 3] => (n, k),
        _ => bail!(
            "{}: weights have shape {shape:?}, expected [n, k, 3]",
            path.display()
        ),
    };
    let mut column = |name: &str, len: usize| -> Result<Vec<f64>> {
        let (shape, v) = npz.numbers(name)?;
        ensure!(
            shape == [len],
            "{}: {name} has shape {shape:?}, expected [{len}] to match the weights",
            path.display()
        );
        Ok(v)
    };
    let labels = column("labels", n)?;
    let gens = column("generator_index", n)?;
    let scales = column("scales", k)?;
    let images = (0..n)
        .map(|i| {
            let per_branch = branch_means(&values[i * k * 3..(i + 1) * k * 3]);
            (gens[i] as usize, labels[i] as u8, per_branch)
        })
        .collect();
    let features = if npz.has("features") && npz.has("feature_index") {
        read_features(&mut npz, n, path)?
    } else {
        Vec::new()
    };
    Ok(Some(BranchWeights {
        scales,
        generators: npz.strings("generator_names")?,
        images,
        features,
    }))
}

/// The pooled features kept for t-SNE, by image index (those below `n`).
fn read_features(npz: &mut Npz, n: usize, path: &Path) -> Result<Vec<(usize, Vec<f32>)>> {
    let (shape, values) = npz.numbers("features")?;
    let (_, index) = npz.numbers("feature_index")?;
    let dim = match shape[..] {
        [rows, dim] if rows == index.len() => dim,
        _ => bail!(
            "{}: features have shape {shape:?}, expected [{}, dim] to match feature_index",
            path.display(),
            index.len()
        ),
    };
    if dim == 0 {
        return Ok(Vec::new());
    }
    Ok(index
        .iter()
        .zip(values.chunks_exact(dim))
        .map(|(&i, f)| (i as usize, f.iter().map(|&x| x as f32).collect()))
        .filter(|(i, _)| *i < n)
        .collect())
}

/// Runs tested under different protocols cannot be compared: every run must have the same
/// clean test rows (sets, policies, generators), and every perturbation level must have the
/// same rows in all runs that have it (a run without a sweep simply has no robustness
/// numbers). The first difference is named.
pub fn check_same_protocol(runs: &[Run]) -> Result<()> {
    let levels: std::collections::BTreeSet<&str> = runs
        .iter()
        .flat_map(|r| r.perturbations())
        .chain(std::iter::once("none"))
        .collect();
    for level in levels {
        let with: Vec<&Run> = runs
            .iter()
            .filter(|r| level == "none" || r.perturbations().contains(level))
            .collect();
        let Some(first) = with.first() else { continue };
        let want = first.protocol(level);
        for r in &with[1..] {
            let got = r.protocol(level);
            if got == want {
                continue;
            }
            let only = |a: &[String], b: &[String]| a.iter().find(|x| !b.contains(x)).cloned();
            let what = match (only(&got, &want), only(&want, &got)) {
                (Some(x), _) => format!(
                    "{} has {x}, {} does not",
                    r.dir.display(),
                    first.dir.display()
                ),
                (None, Some(x)) => format!(
                    "{} has {x}, {} does not",
                    first.dir.display(),
                    r.dir.display()
                ),
                (None, None) => "the same rows in a different multiplicity".into(),
            };
            return Err(crate::usage!(
                "the runs were tested differently and cannot share one report: {what} (perturbation/set/policy/generator). Test every run on the same sets with the same policies"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_whose_arrays_disagree_are_errors_naming_file_and_array() {
        use crate::eval::npz::{write_npz, NpyArray};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("attention_weights.npz");
        // Two images, two branches; `broken` replaces one array.
        let write = |broken: Option<(&str, NpyArray)>| {
            let mut arrays = vec![
                ("weights", NpyArray::f32(&[2, 2, 3], &[0.5; 12])),
                ("labels", NpyArray::u8(&[0, 1])),
                ("generator_index", NpyArray::i64(&[0, 0])),
                ("generator_names", NpyArray::strings(&["g"])),
                ("scales", NpyArray::f64(&[2], &[0.5, 1.0])),
                ("features", NpyArray::f32(&[1, 2], &[1.0, 2.0])),
                ("feature_index", NpyArray::i64(&[1])),
            ];
            if let Some((name, array)) = broken {
                arrays.retain(|(n, _)| *n != name);
                arrays.push((name, array));
            }
            write_npz(&path, &arrays).unwrap();
        };
        write(None);
        let w = read_weights(&path).unwrap().unwrap();
        assert_eq!(w.images[1], (0, 1, vec![0.5, 0.5]));
        assert_eq!(w.features, vec![(1, vec![1.0, 2.0])]);
        let cases = [
            (
                "weights",
                NpyArray::f32(&[2, 6], &[0.5; 12]),
                "expected [n, k, 3]",
            ),
            ("labels", NpyArray::u8(&[0]), "labels has shape [1]"),
            ("generator_index", NpyArray::i64(&[0, 0, 0]), "expected [2]"),
            (
                "scales",
                NpyArray::f64(&[1], &[1.0]),
                "scales has shape [1]",
            ),
            ("feature_index", NpyArray::i64(&[1, 0]), "expected [2, dim]"),
            ("generator_names", NpyArray::u8(&[1]), "holds no strings"),
        ];
        for (name, array, want) in cases {
            write(Some((name, array)));
            let err = format!("{:#}", read_weights(&path).unwrap_err());
            assert!(
                err.contains("attention_weights.npz") && err.contains(want),
                "{name}: {err}"
            );
        }
    }
}
