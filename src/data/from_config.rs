//! The data layer's objects as a config describes them: the training and validation
//! transforms, the splits and the training loader (one place, so train, validation and test
//! agree; `config/` itself only parses and validates).
use crate::config::{DataConfig, TestSet};

use super::{Crop, LoaderOptions, ResizeMode, SplitSpec, TestTransform, TrainTransform, ValFrom};

impl DataConfig {
    /// Official NPR training transform: resize to `load_size` (n×n), random crop, flip,
    /// optional CNNDetection blur and JPEG.
    pub fn train_transform(&self) -> TrainTransform {
        TrainTransform {
            load_size: Some(self.load_size),
            resize_mode: ResizeMode::Square,
            crop_size: self.crop_size,
            flip: self.flip,
            blur: self.blur.clone(),
            jpeg: self.jpeg.clone(),
        }
    }

    /// Validation: resize to `load_size`, centre crop `crop_size` (the training geometry
    /// without randomness).
    pub fn val_transform(&self) -> TestTransform {
        TestTransform {
            resize: Some(self.load_size),
            crop: Crop::Center(self.crop_size),
            ..Default::default()
        }
    }

    /// Where the run's training and validation sets are, and the test sets they must not
    /// share an image with. `validate` guarantees a validation source.
    pub fn splits(&self, seed: u64, tests: &[TestSet]) -> SplitSpec {
        let val = match (self.val_fraction, &self.val_split) {
            (Some(f), _) => ValFrom::Fraction(f),
            (None, Some(folder)) => ValFrom::Folder(folder.clone()),
            (None, None) => unreachable!("Config::validate requires val_split or val_fraction"),
        };
        SplitSpec {
            root: self.dataroot.clone(),
            train_split: self.train_split.clone(),
            val,
            classes: self.classes.clone(),
            seed,
            tests: tests
                .iter()
                .map(|t| (t.name.clone(), t.dataroot.clone()))
                .collect(),
        }
    }

    /// Shuffled, seeded loading for training, on `workers` decode threads (`data.workers`
    /// as the thread budget allows it, `crate::threads`).
    pub fn train_loader(&self, batch_size: usize, seed: u64, workers: usize) -> LoaderOptions {
        LoaderOptions {
            batch_size,
            workers,
            seed,
            shuffle: true,
            balance: self.balance,
            ..Default::default()
        }
    }
}
