//! One image's maps: the NPR residual of every scale, the image itself (the identity
//! branch), and the fused map the backbone sees — as RGB pictures, PNG files and a JSON
//! summary (README.md, `npr predict --maps`).
//!
//! Residuals are shown in grey levels of the input image (the model works on ImageNet-
//! normalised values; `NPR_s` is linear and the mean cancels in `x − up(down(x))`, so
//! `residual · std_c · 255` is the residual of the 8-bit image). All residual scales of
//! one image share one stretch ([`super::stretch`]). The fused map mixes the identity
//! branch with residuals (possibly energy-normalised) times `npr_gain`, so it is in other
//! units: it gets its own symmetric stretch by the same rule.
use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use image::RgbImage;
use serde::Serialize;
use tch::{Device, Kind};

use super::stretch::{symmetric_limit, to_level, STRETCH_PERCENTILE};
use crate::model::detector::InputMaps;
use crate::model::input::{IMAGENET_MEAN, IMAGENET_STD};
use crate::model::npr::is_identity;

/// The pictures of one image.
#[derive(Debug, Clone)]
pub struct ImageMaps {
    pub scales: Vec<f64>,
    /// One picture per scale, in `scales` order: the stretched residual, or for the
    /// identity branch the image itself as the model saw it (after resize/crop).
    pub branches: Vec<RgbImage>,
    /// The backbone's input (for `combine: concat` the k weighted groups summed).
    pub fused: RgbImage,
    /// The residual stretch limit in grey levels: ±limit maps to black/white.
    pub residual_limit: f32,
    /// The fused map's stretch limit, in the backbone's input units.
    pub fused_limit: f32,
}

impl ImageMaps {
    /// Image `i` of a batch's maps (copied to the CPU).
    pub fn from_tensors(maps: &InputMaps, i: usize, scales: &[f64]) -> Result<Self> {
        let (_, k, c, h, w) = maps
            .branches
            .size5()
            .context("NPR branches should be [b, k, 3, h, w]")?;
        let to_vec = |t: tch::Tensor| -> Result<Vec<f32>> {
            let flat = t.to_kind(Kind::Float).to_device(Device::Cpu).flatten(0, -1);
            Ok(Vec::try_from(flat)?)
        };
        let branches = to_vec(maps.branches.get(i as i64))?;
        let fused = to_vec(maps.fused.get(i as i64))?;
        anyhow::ensure!(
            k as usize == scales.len() && c == 3,
            "{k} branches of {c} channels for {} scales",
            scales.len()
        );
        let (h, w) = (h as usize, w as usize);
        Ok(Self::from_planes(&branches, &fused, scales, h, w))
    }

    /// From CPU planes: `branches` is k×3×h×w normalised values, `fused` (3·g)×h×w.
    pub fn from_planes(
        branches: &[f32],
        fused: &[f32],
        scales: &[f64],
        h: usize,
        w: usize,
    ) -> Self {
        let plane = h * w;
        let branch = |b: usize| &branches[b * 3 * plane..(b + 1) * 3 * plane];
        // Residuals in grey levels of the 8-bit image.
        let grey_levels = |b: usize| -> Vec<f32> {
            branch(b)
                .iter()
                .enumerate()
                .map(|(j, v)| v * IMAGENET_STD[j / plane] as f32 * 255.0)
                .collect()
        };
        let residuals: Vec<Option<Vec<f32>>> = scales
            .iter()
            .enumerate()
            .map(|(b, &s)| (!is_identity(s)).then(|| grey_levels(b)))
            .collect();
        let all: Vec<f32> = residuals.iter().flatten().flatten().copied().collect();
        let residual_limit = symmetric_limit(&all, STRETCH_PERCENTILE);
        let pictures = scales
            .iter()
            .enumerate()
            .map(|(b, _)| match &residuals[b] {
                Some(r) => planes_to_rgb(r, h, w, |v| to_level(v, residual_limit)),
                None => identity_to_rgb(branch(b), h, w),
            })
            .collect();
        // The fused map, its channel groups summed to 3.
        let groups = fused.len() / (3 * plane).max(1);
        let summed: Vec<f32> = (0..3 * plane)
            .map(|j| (0..groups).map(|g| fused[g * 3 * plane + j]).sum())
            .collect();
        let fused_limit = symmetric_limit(&summed, STRETCH_PERCENTILE);
        ImageMaps {
            scales: scales.to_vec(),
            branches: pictures,
            fused: planes_to_rgb(&summed, h, w, |v| to_level(v, fused_limit)),
            residual_limit,
            fused_limit,
        }
    }

    /// (key, picture) of every map: `npr0.25`, …, `identity`, `fused`.
    pub fn keyed(&self) -> impl Iterator<Item = (String, &RgbImage)> {
        let keys = self.scales.iter().map(|&s| map_name(s));
        keys.chain(["fused".to_string()])
            .zip(self.branches.iter().chain([&self.fused]))
    }
}

/// The key of a scale's map: `npr0.25` for a residual, `identity` for scale 1.0.
pub fn map_name(scale: f64) -> String {
    if is_identity(scale) {
        "identity".to_string()
    } else {
        format!("npr{scale}")
    }
}

/// 3×h×w planes → RGB8 through `level`.
fn planes_to_rgb(planes: &[f32], h: usize, w: usize, level: impl Fn(f32) -> u8) -> RgbImage {
    let plane = h * w;
    let rgb = (0..plane)
        .flat_map(|p| (0..3).map(move |c| c * plane + p))
        .map(|i| level(planes[i]))
        .collect();
    RgbImage::from_raw(w as u32, h as u32, rgb).expect("3·h·w bytes")
}

/// The identity branch back to 8-bit pixels (undoing the ImageNet normalisation).
fn identity_to_rgb(normalised: &[f32], h: usize, w: usize) -> RgbImage {
    let plane = h * w;
    let pixel = |j: usize| {
        let c = j / plane;
        let v = f64::from(normalised[j]) * IMAGENET_STD[c] + IMAGENET_MEAN[c];
        (v * 255.0).round().clamp(0.0, 255.0) as f32
    };
    let levels: Vec<f32> = (0..3 * plane).map(pixel).collect();
    planes_to_rgb(&levels, h, w, |v| v as u8)
}

/// PNG bytes of a picture.
pub fn png_bytes(img: &RgbImage) -> Result<Vec<u8>> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .context("encoding a map as PNG")?;
    Ok(out.into_inner())
}

/// What the model said about one image, with its maps.
#[derive(Debug, Clone)]
pub struct Explanation {
    pub logit: f64,
    pub score: f64,
    /// k×3 branch weights, row-major (branch, colour channel).
    pub weights: Vec<f32>,
    pub maps: ImageMaps,
}

/// The JSON summary written beside the maps (and the shape of `npr serve`'s answer).
#[derive(Debug, Clone, Serialize)]
pub struct MapsJson {
    pub path: String,
    pub score: f64,
    pub logit: f64,
    /// `fake` iff logit > 0.
    pub pred: &'static str,
    pub scales: Vec<f64>,
    /// Mean weight of every branch over the colour channels.
    pub weights: Vec<f64>,
    /// Per branch, the (R, G, B) weights.
    pub weights_rgb: Vec<Vec<f32>>,
    /// Residual stretch: ±`residual_limit` grey levels is black/white; the fused map's
    /// limit is in the backbone's input units. Both are the `percentile`-th percentile of |v|.
    pub stretch: Stretch,
    /// Map key (`npr0.25`, …, `identity`, `fused`) → file name.
    pub maps: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Stretch {
    pub percentile: f64,
    pub residual_limit: f32,
    pub fused_limit: f32,
}

impl Explanation {
    /// The JSON summary; `files` maps each map key to what the caller names it.
    pub fn summary(&self, path: &str, files: BTreeMap<String, String>) -> MapsJson {
        MapsJson {
            path: path.to_string(),
            score: self.score,
            logit: self.logit,
            pred: crate::eval::score::call(self.logit),
            scales: self.maps.scales.clone(),
            weights: crate::eval::score::branch_means(&self.weights),
            weights_rgb: self.weights.chunks(3).map(<[f32]>::to_vec).collect(),
            stretch: Stretch {
                percentile: STRETCH_PERCENTILE,
                residual_limit: self.maps.residual_limit,
                fused_limit: self.maps.fused_limit,
            },
            maps: files,
        }
    }

    /// Writes `STEM_<key>.png` for every map (`STEM_npr0.25.png`, …, `STEM_identity.png`,
    /// `STEM_fused.png`) and `STEM.json` into `dir` (atomically).
    pub fn write(&self, dir: &Path, stem: &str, source: &Path) -> Result<()> {
        let mut files = BTreeMap::new();
        for (key, img) in self.maps.keyed() {
            let name = format!("{stem}_{key}.png");
            crate::atomic::write(&dir.join(&name), &png_bytes(img)?)?;
            files.insert(key, name);
        }
        let json =
            serde_json::to_string_pretty(&self.summary(&source.display().to_string(), files))?;
        crate::atomic::write(&dir.join(format!("{stem}.json")), json.as_bytes())
    }
}

/// A distinct file stem per path: the file stem, prefixed by as many parent folders as
/// it takes to tell it from the others (`0_real/000.png` and `1_fake/000.png` become
/// `0_real_000` and `1_fake_000`), or suffixed by its position where even the whole path
/// does not.
pub fn unique_stems(paths: &[PathBuf]) -> Vec<String> {
    let parts: Vec<Vec<String>> = paths
        .iter()
        .map(|p| {
            let stem = p
                .file_stem()
                .map_or("image".into(), |s| s.to_string_lossy().into_owned());
            let parents = p
                .parent()
                .into_iter()
                .flat_map(|d| d.components().rev())
                .filter_map(|c| match c {
                    std::path::Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
                    _ => None,
                });
            std::iter::once(stem).chain(parents).collect()
        })
        .collect();
    let name = |i: usize, depth: usize| {
        let mut used: Vec<&str> = parts[i][..=depth].iter().map(String::as_str).collect();
        used.reverse();
        used.join("_")
    };
    let mut depth = vec![0usize; paths.len()];
    loop {
        let names: Vec<String> = (0..paths.len()).map(|i| name(i, depth[i])).collect();
        let dup = |i: usize| names.iter().filter(|n| **n == names[i]).count() > 1;
        let grow: Vec<usize> = (0..paths.len())
            .filter(|&i| dup(i) && depth[i] + 1 < parts[i].len())
            .collect();
        if grow.is_empty() {
            return (0..paths.len())
                .map(|i| {
                    if dup(i) {
                        format!("{}_{i}", names[i])
                    } else {
                        names[i].clone()
                    }
                })
                .collect();
        }
        for i in grow {
            depth[i] += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_are_distinct() {
        let p = |v: &[&str]| v.iter().map(PathBuf::from).collect::<Vec<_>>();
        // (paths, stems)
        let cases: [(Vec<PathBuf>, Vec<&str>); 5] = [
            (p(&["a/x.png", "a/y.jpg"]), vec!["x", "y"]),
            (
                p(&["0_real/000.png", "1_fake/000.png", "1_fake/001.png"]),
                vec!["0_real_000", "1_fake_000", "001"],
            ),
            (
                p(&["a/x.png", "b/a/x.png", "c/a/x.jpg"]),
                vec!["a_x", "b_a_x", "c_a_x"],
            ),
            (
                p(&["t/n2/1_fake/0.png", "t/n4/1_fake/0.png"]),
                vec!["n2_1_fake_0", "n4_1_fake_0"],
            ),
            (p(&["x.png", "x.jpg"]), vec!["x_0", "x_1"]),
        ];
        for (paths, want) in cases {
            assert_eq!(unique_stems(&paths), want, "{paths:?}");
        }
    }

    #[test]
    fn residuals_share_one_stretch_and_the_identity_is_the_image() {
        let (h, w) = (2, 2);
        let plane = h * w;
        // Branch 0 (scale 0.5): residual of ±0.1 normalised; branch 1 (0.25): zero;
        // branch 2 (1.0): a normalised image of pixel value 128 everywhere.
        let mut branches = vec![0.0f32; 3 * 3 * plane];
        for (j, v) in branches[..3 * plane].iter_mut().enumerate() {
            *v = if j % 2 == 0 { 0.1 } else { -0.1 };
        }
        for c in 0..3 {
            let v = ((128.0 / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]) as f32;
            branches[(6 + c) * plane..(7 + c) * plane].fill(v);
        }
        let fused = vec![0.5f32; 3 * plane];
        let maps = ImageMaps::from_planes(&branches, &fused, &[0.5, 0.25, 1.0], h, w);
        // The limit is the largest |residual| in grey levels (0.1 · std_c · 255, c = red).
        let want = 0.1 * IMAGENET_STD[0] as f32 * 255.0;
        assert!(
            (maps.residual_limit - want).abs() < 1e-4,
            "{}",
            maps.residual_limit
        );
        // The zero residual is mid-grey under the shared stretch, not stretched to full contrast.
        assert!(maps.branches[1].as_raw().iter().all(|&v| v == 128));
        let red: Vec<u8> = maps.branches[0].pixels().map(|p| p[0]).collect();
        assert_eq!(red, [255, 0, 255, 0]);
        assert!(
            maps.branches[2].as_raw().iter().all(|&v| v == 128),
            "{:?}",
            maps.branches[2]
        );
        assert!(maps.fused.as_raw().iter().all(|&v| v == 255));
        assert_eq!(maps.fused_limit, 0.5);
        let keys: Vec<String> = maps.keyed().map(|(key, _)| key).collect();
        assert_eq!(keys, ["npr0.5", "npr0.25", "identity", "fused"]);
    }
}
