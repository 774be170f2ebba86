//! The one scoring policy (ARCHITECTURE.md, Data): unless asked otherwise, `npr test`,
//! `npr predict` and `npr serve` preprocess an image with the checkpoint's test transform —
//! its first test set's protocol (resize to `data.load_size` or not, its crop), or the
//! ForenSynths protocol (resize, no crop) when the config names no test set — so one file
//! gets one logit everywhere. Each command names the policy it used ([`describe`]).
use crate::config::{Config, CropPolicy};
use crate::data::{self, Crop};

/// Where a policy came from, as the outputs say it.
pub const CHECKPOINT_POLICY: &str = "the checkpoint's test transform";

/// The checkpoint's protocol: (resize to `data.load_size`?, crop).
pub fn default_protocol(config: &Config) -> (bool, CropPolicy) {
    match config.test.sets.first() {
        Some(set) => (set.resize, set.crop),
        None => (true, CropPolicy::None),
    }
}

/// The transform of [`default_protocol`].
pub fn checkpoint_transform(config: &Config) -> data::TestTransform {
    let (resize, crop) = default_protocol(config);
    data::TestTransform {
        resize: resize.then_some(config.data.load_size),
        crop: crop.to_crop(config.data.crop_size),
        ..Default::default()
    }
}

/// The geometry in words: `resize to 32×32, no crop`, `full size, centre crop 224`.
pub fn describe(resize: Option<u32>, crop: Crop) -> String {
    let resize = match resize {
        Some(n) => format!("resize to {n}×{n}"),
        None => "full size".to_string(),
    };
    let crop = match crop {
        Crop::None => "no crop".to_string(),
        Crop::Center(n) => format!("centre crop {n}"),
        Crop::Tile(n) => format!("tile to {n}"),
    };
    format!("{resize}, {crop}")
}

/// [`describe`] of a transform, with where it came from: `resize to 32×32, no crop (the
/// checkpoint's test transform)`.
pub fn describe_transform(t: &data::TestTransform, origin: &str) -> String {
    format!("{} ({origin})", describe(t.resize, t.crop))
}

/// The policy as `metrics.csv` and `summary.json` record it: `resize=256;crop=none`,
/// `resize=no;crop=center`.
pub fn column(resize: Option<u32>, crop: CropPolicy) -> String {
    let resize = resize.map_or("no".to_string(), |n| n.to_string());
    let crop = match crop {
        CropPolicy::Center => "center",
        CropPolicy::None => "none",
        CropPolicy::Tile => "tile",
    };
    format!("resize={resize};crop={crop}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_the_first_test_set_or_forensynths() {
        let mut config = Config::default();
        config.data.load_size = 32;
        let t = checkpoint_transform(&config);
        assert_eq!((t.resize, t.crop), (Some(32), Crop::None));
        assert_eq!(
            describe_transform(&t, CHECKPOINT_POLICY),
            "resize to 32×32, no crop (the checkpoint's test transform)"
        );
        config.test.sets.push(crate::config::TestSet {
            name: "s".into(),
            dataroot: "x".into(),
            resize: false,
            crop: CropPolicy::Center,
            seen: false,
            seen_generators: vec![],
        });
        let t = checkpoint_transform(&config);
        assert_eq!(t.resize, None);
        assert_eq!(
            describe(t.resize, t.crop),
            format!("full size, centre crop {}", config.data.crop_size)
        );
    }
}
