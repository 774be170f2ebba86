//! The photo benchmark's fake families: every classical family of the procedural benchmark
//! (`synth::Family`), and the UpscalerJS ESRGAN networks at ×2, ×3 and ×4 for each capacity
//! whose model files are present.
use std::path::Path;

use crate::synth::family::Upsampler;
use crate::synth::Family;
use crate::upsample::esrgan::Capacity;

/// Scales of the neural families (×8 also ships, but turns a 48-px crop into a 6-px input).
pub const NEURAL_SCALES: [i64; 3] = [2, 3, 4];

/// Seen families by default: one real neural up-sampler at two NPR scales (0.5 and 0.25),
/// as the multiscale preset's nearest ×2/×4; ×3 and the larger capacities stay unseen.
pub const DEFAULT_SEEN: [&str; 2] = ["esrgan_slim_x2", "esrgan_slim_x4"];

/// How a fake of the photo benchmark is brought back to full size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhotoFamily {
    /// A procedural family's up-sampler (nearest, bilinear, bicubic, transposed conv).
    Classical(Family),
    /// A super-resolution network.
    Neural { capacity: Capacity, scale: i64 },
}

impl PhotoFamily {
    /// The classical families, then the neural ones whose `model.json` is under `root`.
    pub fn available(root: &Path) -> Vec<PhotoFamily> {
        let mut all: Vec<PhotoFamily> = Family::ALL.map(PhotoFamily::Classical).into();
        for capacity in Capacity::ALL {
            for scale in NEURAL_SCALES {
                if capacity.model_dir(root, scale).join("model.json").is_file() {
                    all.push(PhotoFamily::Neural { capacity, scale });
                }
            }
        }
        all
    }

    /// Folder and manifest name: the classical name, or `esrgan_<capacity>_x<scale>`.
    pub fn name(self) -> String {
        match self {
            PhotoFamily::Classical(f) => f.name().to_string(),
            PhotoFamily::Neural { capacity, scale } => {
                format!("esrgan_{}_x{scale}", capacity.name())
            }
        }
    }

    /// The family called `name` among every family there could be (neural ones of every
    /// capacity, whether or not their files are present).
    pub fn from_name(name: &str) -> Option<PhotoFamily> {
        if let Some(f) = Family::from_name(name) {
            return Some(PhotoFamily::Classical(f));
        }
        Capacity::ALL
            .into_iter()
            .flat_map(|capacity| NEURAL_SCALES.map(|scale| PhotoFamily::Neural { capacity, scale }))
            .find(|f| f.name() == name)
    }

    /// Up-sampling factor as a fraction `(numerator, denominator)`.
    pub fn factor(self) -> (u32, u32) {
        match self {
            PhotoFamily::Classical(f) => f.factor(),
            PhotoFamily::Neural { scale, .. } => (scale as u32, 1),
        }
    }

    /// The NPR scale of the trace: 1 / factor.
    pub fn npr_scale(self) -> f64 {
        let (num, den) = self.factor();
        den as f64 / num as f64
    }

    /// Side of the low-resolution input for an output of `side` pixels (`side` a
    /// multiple of 24, so exact for every family).
    pub fn low_res(self, side: usize) -> usize {
        let (num, den) = self.factor();
        side * den as usize / num as usize
    }

    pub fn upsampler(self) -> Upsampler {
        match self {
            PhotoFamily::Classical(f) => f.upsampler(),
            PhotoFamily::Neural { .. } => Upsampler::Esrgan,
        }
    }

    /// The network's package and scale, for the manifest (`None` for a classical family).
    pub fn network(self) -> Option<String> {
        match self {
            PhotoFamily::Classical(_) => None,
            PhotoFamily::Neural { capacity, scale } => {
                Some(format!("{} 1.0.0 x{scale}", capacity.package()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_scales_follow_the_factor() {
        for (name, scale, low) in [
            ("nearest_x2", 0.5, 24),
            ("bicubic_x4_3", 0.75, 36),
            ("nearest_x8", 0.125, 6),
            ("esrgan_slim_x2", 0.5, 24),
            ("esrgan_medium_x3", 1.0 / 3.0, 16),
            ("esrgan_thick_x4", 0.25, 12),
        ] {
            let f = PhotoFamily::from_name(name).unwrap();
            assert_eq!(f.name(), name);
            assert!((f.npr_scale() - scale).abs() < 1e-12, "{name}");
            assert_eq!(f.low_res(48), low, "{name}");
        }
        assert_eq!(PhotoFamily::from_name("esrgan_slim_x8"), None);
        assert_eq!(PhotoFamily::from_name("esrgan_huge_x2"), None);
    }
}
