//! [`Config::validate`]. Ranges of the data layer's own types (crop, blur, JPEG) are
//! checked by that layer and reported here with the rest.
use super::{Config, ConfigError, Fusion, Recipe};

impl Config {
    /// Checks every range at once; each problem names its key and the allowed values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut problems: Vec<String> = Vec::new();
        // `check!(ok, "format", args…)`: the formatted problem unless `ok`.
        macro_rules! check {
            ($ok:expr, $($msg:tt)+) => {
                let ok: bool = $ok;
                if !ok {
                    problems.push(format!($($msg)+));
                }
            };
        }
        let m = &self.model;
        check!(!self.name.trim().is_empty(), "name: must not be empty");
        check!(
            !m.scales.is_empty(),
            "model.scales: at least one scale is required"
        );
        for (i, s) in m.scales.iter().enumerate() {
            check!(
                s.is_finite() && *s > 0.0 && *s <= 1.0,
                "model.scales[{i}]: {s} is outside (0, 1] (1.0 is the identity branch)"
            );
        }
        for (i, s) in m.scales.iter().enumerate() {
            check!(
                !m.scales[..i].contains(s),
                "model.scales[{i}]: {s} is listed twice"
            );
        }
        check!(
            m.fusion != Fusion::Single || m.scales.len() == 1,
            "model.fusion: `single` takes exactly one scale, got {} (use attention, equal or learned)",
            m.scales.len()
        );
        check!(
            m.attention.reduction >= 1,
            "model.attention.reduction: must be ≥ 1"
        );
        check!(
            m.attention.temperature.is_finite() && m.attention.temperature > 0.0,
            "model.attention.temperature: {} must be > 0",
            m.attention.temperature
        );
        check!(
            m.attention.bias_init.is_finite(),
            "model.attention.bias_init: must be finite"
        );
        check!(
            m.npr_gain.is_finite() && m.npr_gain > 0.0,
            "model.npr_gain: {} must be > 0",
            m.npr_gain
        );

        let d = &self.data;
        problems.extend(d.train_transform().problems().iter().map(|p| p.to_string()));
        if let Some(f) = d.val_fraction {
            check!(
                f > 0.0 && f < 1.0,
                "data.val_fraction: {f} is outside (0, 1)"
            );
        }
        check!(
            d.val_fraction.is_some() || d.val_split.is_some(),
            "data: set val_split (a folder) or val_fraction (a hold-out share)"
        );
        check!(
            d.train_split.trim() != "",
            "data.train_split: must not be empty"
        );
        check!(d.workers >= 1, "data.workers: must be ≥ 1");

        let t = &self.train;
        if let Some(sup) = &t.scale_supervision {
            check!(
                sup.weight.is_finite() && sup.weight > 0.0,
                "train.scale_supervision.weight: {} must be > 0",
                sup.weight
            );
            check!(
                m.fusion == Fusion::Attention && m.scales.iter().filter(|&&s| s < 1.0).count() >= 2,
                "train.scale_supervision: needs model.fusion attention with at least two NPR scales (the weights it teaches)"
            );
        }
        check!(t.epochs >= 1, "train.epochs: must be ≥ 1");
        check!(t.batch_size >= 1, "train.batch_size: must be ≥ 1");
        let o = &t.optimizer;
        check!(
            o.lr.is_finite() && o.lr > 0.0,
            "train.optimizer.lr: {} must be > 0",
            o.lr
        );
        for (i, b) in o.betas.iter().enumerate() {
            check!(
                (0.0..1.0).contains(b),
                "train.optimizer.betas[{i}]: {b} is outside [0, 1)"
            );
        }
        check!(o.eps > 0.0, "train.optimizer.eps: {} must be > 0", o.eps);
        check!(
            o.weight_decay >= 0.0,
            "train.optimizer.weight_decay: {} must be ≥ 0",
            o.weight_decay
        );
        check!(
            o.fusion_lr_mult > 0.0,
            "train.optimizer.fusion_lr_mult: {} must be > 0",
            o.fusion_lr_mult
        );
        check!(
            t.lr_decay.factor > 0.0 && t.lr_decay.factor <= 1.0,
            "train.lr_decay.factor: {} is outside (0, 1]",
            t.lr_decay.factor
        );
        check!(
            t.recipe != Recipe::Official || t.early_stopping.is_none(),
            "train.early_stopping: the official recipe has no early stopping; remove the key or set train.recipe: proposal"
        );
        check!(
            t.lr_decay.every_epochs >= 1,
            "train.lr_decay.every_epochs: must be ≥ 1"
        );
        check!(t.log_every >= 1, "train.log_every: must be ≥ 1");
        check!(self.test.batch_size >= 1, "test.batch_size: must be ≥ 1");
        for (i, s) in self.test.sets.iter().enumerate() {
            check!(
                !s.name.trim().is_empty(),
                "test.sets[{i}].name: must not be empty"
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid(problems))
        }
    }
}
