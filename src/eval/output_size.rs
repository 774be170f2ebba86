//! What `npr test` will write, estimated from its sets before anything is scored, so that a
//! disk that cannot hold the results stops the test at once (exit 2) instead of after the
//! scoring pass. An upper bound: every row as wide as the widest values it can hold.
use crate::data::Sample;

/// A `predictions.csv` row without its path: set, generator, label, logit, score, call,
/// perturbation (`misclassified.csv` holds at most as many).
const ROW_BYTES: u64 = 160;
/// A `roc*.csv` and a `pr*.csv` point per image (first level only).
const CURVE_BYTES: u64 = 2 * 96;
/// Per image in `attention_weights.npz` besides weights, path and features: label, score,
/// logit, generator index.
const NPZ_IMAGE_BYTES: u64 = 1 + 4 + 4 + 8;
/// metrics, confusion, summary, scale selection, complete.json: a few rows per generator.
const SMALL_FILES: u64 = 1 << 20;

/// What shapes the output of one `npr test`.
pub struct TestOutput<'a> {
    /// Every set's images.
    pub sets: Vec<&'a [Sample]>,
    pub levels: usize,
    /// Branches of the model (k × 3 weights per image in the NPZ).
    pub scales: usize,
    pub max_features: usize,
    pub feature_dim: usize,
}

impl TestOutput<'_> {
    /// Bytes the output folder will take, at most.
    pub fn estimate(&self) -> u64 {
        let images = self.sets.iter().flat_map(|s| s.iter());
        let (mut n, mut paths, mut longest) = (0u64, 0u64, 0u64);
        for s in images {
            let len = s.path.as_os_str().len() as u64;
            (n, paths, longest) = (n + 1, paths + len, longest.max(len));
        }
        let rows = self.levels as u64 * (paths + n * ROW_BYTES);
        let npz_image = self.scales as u64 * 3 * 4 + NPZ_IMAGE_BYTES + 4 * longest;
        let features = n.min(self.max_features as u64) * (self.feature_dim as u64 * 4 + 8);
        // predictions + misclassified, curves, NPZ, skipped.tsv (each path at most once).
        2 * rows + n * CURVE_BYTES + n * npz_image + features + paths + SMALL_FILES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(path: &str) -> Sample {
        Sample {
            path: path.into(),
            label: 1,
            generator: "g".into(),
            class: String::new(),
        }
    }

    #[test]
    fn the_estimate_grows_with_images_levels_and_features_and_bounds_a_real_test() {
        let set: Vec<Sample> = (0..2800)
            .map(|i| {
                sample(&format!(
                    "datasets/synth/test/bicubic_x4_3/1_fake/{i:05}_objects.png"
                ))
            })
            .collect();
        let out = |levels, max_features| TestOutput {
            sets: vec![&set],
            levels,
            scales: 1,
            max_features,
            feature_dim: 512,
        };
        let one = out(1, 0).estimate();
        assert!(out(3, 0).estimate() > one && out(1, 1000).estimate() > one);
        // What `npr test` wrote for 2,800 such images with the NPR baseline (one level,
        // 2,000 features of 512): 5.67 MB. The bound holds it, and not wildly more.
        let written = 5_670_000;
        let bound = out(1, 2000).estimate();
        assert!(bound >= written && bound < 4 * written, "{bound}");
    }
}
