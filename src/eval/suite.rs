//! A test run: a model over its test sets at every perturbation level, with the metrics
//! per generator, the generalization gap and every output file of `npr test` (the layout
//! is in README.md, "Outputs"). `commands/test.rs` only turns flags into a [`TestRequest`]
//! and prints the [`SetTable`]s.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use tch::Device;

use crate::checkpoint::LoadedModel;
use crate::config::{Config, CropPolicy, TestSet};
use crate::data::{self, SkipLog};
use crate::eval::metrics;
use crate::eval::npz::{write_npz, NpyArray};
use crate::eval::output_size::TestOutput;
use crate::eval::outputs::{self, GeneratorRow, Prediction};
use crate::eval::perturb::Perturbation;
use crate::eval::policy;
use crate::eval::scale_selection::{scale_selection, SelectionRow, WeightedImage};
use crate::eval::score::{is_fake, loader, score, Scores};
use crate::progress::Progress;
use crate::usage;

/// What to test and how; the sets' own protocol is overridden by the `set_*` fields.
pub struct TestRequest {
    pub sets: Vec<TestSet>,
    /// Feed full-size images (`Some(false)`) or resize (`Some(true)`), whatever the set says.
    pub set_resize: Option<bool>,
    /// Resize side when resizing (default: the training load size).
    pub resize_to: Option<u32>,
    pub set_crop: Option<CropPolicy>,
    /// Score this split folder of every root; never chosen implicitly.
    pub split: Option<String>,
    pub levels: Vec<Perturbation>,
    pub batch_size: usize,
    pub workers: usize,
    pub max_features: usize,
    pub out: PathBuf,
}

/// One block of the printed results: a set at one perturbation level.
pub struct SetTable {
    pub set: String,
    pub level: String,
    pub rows: Vec<GeneratorRow>,
    pub mean: GeneratorRow,
    pub gap: Option<f64>,
    pub images_per_s: f64,
}

/// A test set ready to run: where, how to preprocess, which generators were seen.
struct SetPlan {
    set: TestSet,
    /// Resize side (None: full size), resolved from the set, the request and the load size.
    resize: Option<u32>,
    /// Generator → seen in training (from the config or a synth.json manifest).
    seen: BTreeMap<String, bool>,
    /// Generator → the NPR scale of its trace, where a synth.json manifest says.
    true_scale: BTreeMap<String, f64>,
    /// The set's images, discovered once for every perturbation level.
    samples: Arc<Vec<data::Sample>>,
}

/// Tests `model` (loaded from `checkpoint`) as `request` says and writes every output into
/// `request.out`. Test images that trained or selected the model stop the run, unless a
/// split was asked for by name.
pub fn run(
    model: &LoadedModel,
    checkpoint: &Path,
    request: &TestRequest,
    device: Device,
) -> Result<Vec<SetTable>> {
    let config = &model.config;
    let skips = Arc::new(SkipLog::default());
    let plans = plan_sets(request, config, &skips)?;
    check_room(model, request, &plans)?;
    if let Some(split) = &request.split {
        eprintln!("note: --split {split} given: the split is scored as asked, even if it trained or selected this model");
    } else {
        check_against_training(checkpoint, config, &plans)?;
    }
    let mut found = Collected::default();
    for (level_index, level) in request.levels.iter().enumerate() {
        let first_level = level_index == 0;
        // Unreadable files are the same at every level: log them on the first one only.
        let level_skips = match first_level {
            true => skips.clone(),
            false => Arc::new(SkipLog::default()),
        };
        for plan in &plans {
            let max_features = match first_level {
                true => request.max_features.saturating_sub(found.features_kept),
                false => 0,
            };
            let transform = test_transform(plan, config.data.crop_size, level);
            let loader = loader(
                plan.samples.clone(),
                transform,
                request.batch_size,
                request.workers,
                &level_skips,
            )?;
            let label = format!("{} [{level}]", plan.set.name);
            let progress = Progress::new(label, plan.samples.len() as u64, "images");
            let results = score(&model.detector, &loader, max_features, device, &progress)
                .with_context(|| format!("test set {:?}", plan.set.name))?;
            drop(progress); // the line below says how it ended
            found.features_kept += results.features.len();
            eprintln!(
                "{} [{level}]: {} images at {:.1} images/s",
                plan.set.name,
                results.images.len(),
                results.images_per_s()
            );
            let by_gen = found.add_level(plan, &level.to_string(), &results)?;
            if first_level {
                // Curves, branch weights and scale selection: the first level only.
                let tag = match plans.len() > 1 {
                    true => format!("_{}", plan.set.name),
                    false => String::new(),
                };
                let groups: Vec<_> = by_gen
                    .into_iter()
                    .map(|(g, (l, s))| (plan.set.name.clone(), g, l, s))
                    .collect();
                outputs::write_curves(
                    &request.out.join(format!("roc{tag}.csv")),
                    &request.out.join(format!("pr{tag}.csv")),
                    &groups,
                )?;
                found.add_per_image(plan, &config.model.scales, results);
            }
        }
    }
    found.write(request, config, checkpoint, &skips)?;
    if !skips.is_empty() || skips.upscaled() > 0 {
        eprintln!("{}", skips.summary());
    }
    Ok(found.tables)
}

/// Before scoring: the output folder's disk can hold what the test will write.
fn check_room(model: &LoadedModel, request: &TestRequest, plans: &[SetPlan]) -> Result<()> {
    let variables = model.vs.variables();
    let feature_dim = variables
        .get("fc1.weight")
        .map_or(2048, |w| w.size()[1] as usize);
    let output = TestOutput {
        sets: plans.iter().map(|p| p.samples.as_slice()).collect(),
        levels: request.levels.len(),
        scales: model.config.model.scales.len(),
        max_features: request.max_features,
        feature_dim,
    };
    let what = "the test's results";
    crate::free_space::ensure_room(&request.out, output.estimate(), what)
        .context("nothing was scored")
}

/// Labels and logits per generator (sorted by name).
type ByGenerator = BTreeMap<String, (Vec<u8>, Vec<f64>)>;

/// What the levels and sets of a test run add up to, before it is written.
#[derive(Default)]
struct Collected {
    /// Per generator and the mean row, every level and set.
    rows: Vec<GeneratorRow>,
    tables: Vec<SetTable>,
    summary_sets: Vec<serde_json::Value>,
    predictions: Vec<Prediction>,
    /// The first level's per-image scores for the NPZ.
    npz_parts: Vec<(String, Arc<Vec<data::Sample>>, Scores)>,
    features_kept: usize,
    selection: Vec<(String, Option<bool>, SelectionRow)>,
}

impl Collected {
    /// The metrics of one set at one level, its printed table and its predictions;
    /// returns the labels and logits per generator (for the curves).
    fn add_level(&mut self, plan: &SetPlan, level: &str, results: &Scores) -> Result<ByGenerator> {
        let samples = &plan.samples;
        let policy = policy::column(plan.resize, plan.set.crop);
        let mut by_gen = ByGenerator::new();
        for r in &results.images {
            let s = &samples[r.sample];
            let e = by_gen.entry(s.generator.clone()).or_default();
            e.0.push(s.label);
            e.1.push(r.logit);
        }
        let mut set_rows = Vec::new();
        for (generator, (labels, logits)) in &by_gen {
            set_rows.push(GeneratorRow {
                perturbation: level.into(),
                set: plan.set.name.clone(),
                generator: generator.clone(),
                seen: plan.seen.get(generator).copied(),
                policy: policy.clone(),
                metrics: metrics::from_logits(labels, logits)?,
            });
        }
        let refs: Vec<&GeneratorRow> = set_rows.iter().collect();
        let mean = outputs::mean_row(&refs, level, &plan.set.name);
        let gap = outputs::generalization_gap(&refs);
        self.summary_sets.push(serde_json::json!({
            "perturbation": level, "set": plan.set.name, "policy": policy,
            "images": results.images.len(), "images_per_s": results.images_per_s(),
            "mean_acc": mean.metrics.acc, "mean_ap": mean.metrics.ap,
            "generalization_gap": gap,
        }));
        self.tables.push(SetTable {
            set: plan.set.name.clone(),
            level: level.into(),
            rows: set_rows.clone(),
            mean: mean.clone(),
            gap,
            images_per_s: results.images_per_s(),
        });
        self.predictions.extend(results.images.iter().map(|r| {
            let s = &samples[r.sample];
            Prediction {
                path: s.path.display().to_string(),
                set: plan.set.name.clone(),
                generator: s.generator.clone(),
                label: s.label,
                logit: r.logit,
                score: r.score,
                pred: u8::from(is_fake(r.logit)),
                perturbation: level.into(),
            }
        }));
        self.rows.extend(set_rows);
        self.rows.push(mean);
        Ok(by_gen)
    }

    /// Scale selection and the NPZ's per-image weights of one set (first level).
    fn add_per_image(&mut self, plan: &SetPlan, scales: &[f64], results: Scores) {
        let weights: Vec<Vec<f64>> = results.images.iter().map(|r| r.branch_weights()).collect();
        let images = results
            .images
            .iter()
            .zip(&weights)
            .map(|(r, w)| WeightedImage {
                generator: &plan.samples[r.sample].generator,
                label: r.label,
                weights: w,
            });
        let rows = scale_selection(scales, &plan.true_scale, images);
        self.selection.extend(rows.into_iter().map(|r| {
            let seen = plan.seen.get(&r.generator).copied();
            (plan.set.name.clone(), seen, r)
        }));
        self.npz_parts
            .push((plan.set.name.clone(), plan.samples.clone(), results));
    }

    /// Every file of `npr test` (README.md, "Outputs"): metrics, confusion, predictions
    /// and misclassified for every level; branch weights and scale selection for the first
    /// level (named in summary.json).
    fn write(
        &self,
        request: &TestRequest,
        config: &Config,
        checkpoint: &Path,
        skips: &SkipLog,
    ) -> Result<()> {
        let out = &request.out;
        let first_level = request.levels.first().map(|l| l.to_string());
        write_attention_npz(
            &out.join("attention_weights.npz"),
            &self.npz_parts,
            &config.model.scales,
            first_level.as_deref().unwrap_or_default(),
        )?;
        outputs::write_metrics_csv(&out.join("metrics.csv"), &self.rows)?;
        self.write_selection(out, &config.model.scales)?;
        outputs::write_confusion_csv(&out.join("confusion.csv"), &self.rows)?;
        outputs::write_predictions_csv(&out.join("predictions.csv"), &self.predictions)?;
        outputs::write_misclassified_csv(&out.join("misclassified.csv"), &self.predictions)?;
        let selection = self.selection.iter().map(|(set, seen, r)| {
            serde_json::json!({
                "set": set, "generator": r.generator, "seen": seen, "true_scale": r.true_scale,
                "reals": r.reals, "fakes": r.fakes, "share_top_is_true": r.share_top_is_true,
                "chance": r.chance, "mean_weight_real": finite(&r.mean_weight_real),
                "mean_weight_fake": finite(&r.mean_weight_fake),
            })
        });
        let summary = serde_json::json!({
            "checkpoint": checkpoint.display().to_string(),
            // roc/pr curves, attention_weights.npz and scale_selection.csv are for this level;
            // metrics, confusion, predictions and misclassified hold every level.
            "per_image_level": first_level,
            "model": { "backbone": config.model.backbone.to_string(), "fusion": config.model.fusion.to_string(), "scales": config.model.scales },
            "sets": self.summary_sets,
            "rows": self.rows,
            "scale_selection": selection.collect::<Vec<_>>(),
            "skipped": skips.len(),
        });
        crate::atomic::write(
            &out.join("summary.json"),
            serde_json::to_string_pretty(&summary)?.as_bytes(),
        )?;
        crate::atomic::write(&out.join("skipped.tsv"), skips.to_tsv().as_bytes())
    }

    /// `scale_selection.csv` and its summary lines, where a manifest names true scales.
    fn write_selection(&self, out: &Path, scales: &[f64]) -> Result<()> {
        let known: Vec<_> = self
            .selection
            .iter()
            .filter(|(_, _, r)| r.share_top_is_true.is_some())
            .collect();
        if known.is_empty() {
            return Ok(());
        }
        outputs::write_scale_selection_csv(
            &out.join("scale_selection.csv"),
            scales,
            &self.selection,
        )?;
        for (set, _, r) in known {
            eprintln!(
                "{set}/{}: top NPR branch is the true scale {} for {:.1}% of {} fakes (chance {:.1}%)",
                r.generator,
                r.true_scale.unwrap_or(f64::NAN),
                100.0 * r.share_top_is_true.unwrap_or(f64::NAN),
                r.fakes,
                100.0 * r.chance
            );
        }
        Ok(())
    }
}

/// Discovers every set once, with the request's protocol overrides applied.
fn plan_sets(request: &TestRequest, config: &Config, skips: &SkipLog) -> Result<Vec<SetPlan>> {
    let mut plans = Vec::new();
    for mut set in request.sets.iter().cloned() {
        if let Some(resize) = request.set_resize {
            set.resize = resize;
        }
        if let Some(c) = request.set_crop {
            set.crop = c;
        }
        if !set.dataroot.is_dir() {
            return Err(usage!(
                "test set {:?}: {} is not a folder",
                set.name,
                set.dataroot.display()
            ));
        }
        let (found, note) = data::discover_test_set(&set.dataroot, request.split.as_deref())
            .with_context(|| format!("test set {:?} at {}", set.name, set.dataroot.display()))?;
        if let Some(note) = note {
            eprintln!("test set {:?}: {note}", set.name);
        }
        skips.extend(found.skipped.iter().cloned());
        let manifest = manifest_near(&set.dataroot)?;
        let seen = seen_flags(&set, &found.samples, manifest.as_ref());
        let true_scale = manifest
            .iter()
            .flat_map(|m| &m.families)
            .map(|f| (f.name.clone(), f.npr_scale))
            .collect();
        let resize = set
            .resize
            .then(|| request.resize_to.unwrap_or(config.data.load_size));
        eprintln!(
            "test set {:?}: preprocessing {}",
            set.name,
            policy_origin(request, resize, set.crop.to_crop(config.data.crop_size))
        );
        plans.push(SetPlan {
            set,
            resize,
            seen,
            true_scale,
            samples: Arc::new(found.samples),
        });
    }
    Ok(plans)
}

/// Test images must not be training or validation images of the checkpoint. The training
/// data is found again from the embedded config when it is on this machine; when it is not
/// (an official `.pth`, another machine) that is said, not assumed.
fn check_against_training(checkpoint: &Path, config: &Config, plans: &[SetPlan]) -> Result<()> {
    if crate::checkpoint::is_official(checkpoint) {
        eprintln!("note: {} carries no training data list: disjointness from its training set is not checked", checkpoint.display());
        return Ok(());
    }
    let spec = config.data.splits(config.train.seed, &[]);
    let (train, val, _) = match spec.discover(&SkipLog::default()) {
        Ok(found) => found,
        Err(e) => {
            eprintln!("note: the training data of {} is not available here ({e:#}): disjointness from it is not checked", checkpoint.display());
            return Ok(());
        }
    };
    let names: Vec<String> = plans
        .iter()
        .map(|p| format!("test set {:?}", p.set.name))
        .collect();
    let mut named: Vec<(&str, &[data::Sample])> =
        vec![("training set", &train[..]), ("validation set", &val[..])];
    named.extend(
        names
            .iter()
            .zip(plans)
            .map(|(n, p)| (n.as_str(), &p.samples[..])),
    );
    data::check_disjoint(&named, 2, &data::HashCache::for_data(&config.data.dataroot))?;
    data::check_photo_sources(&config.data.dataroot, &named, 2)?;
    Ok(())
}

/// The `synth.json` in a test set's folder or the folder above (the synthetic benchmark's
/// manifest: which families were seen and the NPR scale of each one's trace).
/// True when every set has an `npr synth` manifest beside it: the results describe the
/// synthetic benchmark (recorded in `complete.json`; `npr report` labels its page by it).
pub fn all_synthetic(sets: &[TestSet]) -> bool {
    !sets.is_empty()
        && sets
            .iter()
            .all(|s| matches!(manifest_near(&s.dataroot), Ok(Some(_))))
}

/// True when every set is a photo benchmark (its manifest lists photographs).
pub fn all_photos(sets: &[TestSet]) -> bool {
    !sets.is_empty()
        && sets
            .iter()
            .all(|s| matches!(manifest_near(&s.dataroot), Ok(Some(m)) if m.photos.is_some()))
}

fn manifest_near(dataroot: &Path) -> Result<Option<crate::synth::Manifest>> {
    [
        dataroot.to_path_buf(),
        dataroot.parent().map(PathBuf::from).unwrap_or_default(),
    ]
    .into_iter()
    .find(|d| d.join("synth.json").is_file())
    .map(|d| crate::synth::read_manifest(&d))
    .transpose()
}

/// Seen flags per generator: `seen_generators`, else the manifest (the synthetic benchmark
/// marks its families), else the set's `seen`.
fn seen_flags(
    set: &TestSet,
    samples: &[data::Sample],
    manifest: Option<&crate::synth::Manifest>,
) -> BTreeMap<String, bool> {
    let generators: std::collections::BTreeSet<&String> =
        samples.iter().map(|s| &s.generator).collect();
    generators
        .into_iter()
        .map(|g| {
            let seen = if !set.seen_generators.is_empty() {
                set.seen_generators.contains(g)
            } else if let Some(m) = manifest {
                m.families.iter().any(|f| &f.name == g && f.seen)
            } else {
                set.seen
            };
            (g.clone(), seen)
        })
        .collect()
}

/// JSON has no NaN: a mean over no images is written as null.
fn finite(xs: &[f64]) -> Vec<Option<f64>> {
    xs.iter().map(|x| x.is_finite().then_some(*x)).collect()
}

/// The policy in the words every command uses, and whether the flags chose it.
fn policy_origin(request: &TestRequest, resize: Option<u32>, crop: data::Crop) -> String {
    let asked =
        request.set_resize.is_some() || request.resize_to.is_some() || request.set_crop.is_some();
    let origin = if asked {
        "asked on the command line: --no-resize / --resize / --crop"
    } else {
        policy::CHECKPOINT_POLICY
    };
    let t = data::TestTransform {
        resize,
        crop,
        ..Default::default()
    };
    policy::describe_transform(&t, origin)
}

/// The set's protocol plus the perturbation; crops are `crop_size` of the training config.
fn test_transform(plan: &SetPlan, crop_size: u32, level: &Perturbation) -> data::TestTransform {
    let crop = plan.set.crop.to_crop(crop_size);
    data::TestTransform {
        resize: plan.resize,
        crop,
        jpeg_quality: level.jpeg_quality,
        blur_sigma: level.blur_sigma.filter(|s| *s > 0.0),
        pre_resize: level.resize,
    }
}

/// `attention_weights.npz`: per image weights [n, k, 3], labels, scores, generator index and
/// names (`set/generator` when several sets), scales, paths, and the pooled features of the
/// first images for t-SNE (`feature_index` points into the per-image arrays).
fn write_attention_npz(
    path: &Path,
    parts: &[(String, Arc<Vec<data::Sample>>, Scores)],
    scales: &[f64],
    level: &str,
) -> Result<()> {
    let several = parts.len() > 1;
    let gen_name = |set: &str, g: &str| {
        if several {
            format!("{set}/{g}")
        } else {
            g.to_string()
        }
    };
    let mut names: Vec<String> = Vec::new();
    let (mut weights, mut labels, mut scores, mut logits, mut gen_index, mut paths) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    let (mut features, mut feature_index, mut feature_dim) = (vec![], vec![], 0);
    for (set, samples, results) in parts {
        let offset = labels.len();
        for r in &results.images {
            let s = &samples[r.sample];
            let name = gen_name(set, &s.generator);
            let idx = match names.iter().position(|n| n == &name) {
                Some(i) => i,
                None => {
                    names.push(name);
                    names.len() - 1
                }
            };
            weights.extend_from_slice(&r.weights);
            labels.push(s.label);
            scores.push(r.score as f32);
            logits.push(r.logit as f32);
            gen_index.push(idx as i64);
            paths.push(s.path.display().to_string());
        }
        for (sample, f) in &results.features {
            if let Ok(pos) = results.images.binary_search_by_key(sample, |r| r.sample) {
                feature_index.push((offset + pos) as i64);
                features.extend_from_slice(f);
                feature_dim = f.len();
            }
        }
    }
    let n = labels.len();
    write_npz(
        path,
        &[
            ("weights", NpyArray::f32(&[n, scales.len(), 3], &weights)),
            ("labels", NpyArray::u8(&labels)),
            ("scores", NpyArray::f32(&[n], &scores)),
            ("logits", NpyArray::f32(&[n], &logits)),
            ("generator_index", NpyArray::i64(&gen_index)),
            ("generator_names", NpyArray::strings(&names)),
            ("scales", NpyArray::f64(&[scales.len()], scales)),
            ("paths", NpyArray::strings(&paths)),
            (
                "features",
                NpyArray::f32(&[feature_index.len(), feature_dim], &features),
            ),
            ("feature_index", NpyArray::i64(&feature_index)),
            // The perturbation level these images were scored at (a sweep's first).
            ("perturbation", NpyArray::strings(&[level.to_string()])),
        ],
    )
}
