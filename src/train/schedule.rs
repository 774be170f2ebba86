//! The learning-rate schedule and early stopping: pure functions of the epoch history.

/// The learning rate of `epoch` (0-based) under the official NPR step decay, which both
/// recipes use. The official `train.py` runs
///
/// ```python
/// for epoch in range(niter):
///     ...  # one epoch at the current rate
///     if epoch % delr_freq == 0 and epoch != 0:
///         model.adjust_learning_rate()  # lr *= 0.9
/// ```
///
/// so the rate drops at the *end* of epochs `every`, `2·every`, …: epochs 0..=every run at
/// the base rate (eleven epochs for `every = 10`), and epoch `e ≥ 1` has seen
/// `⌊(e − 1) / every⌋` decays.
pub fn lr_at_epoch(base: f64, factor: f64, every: usize, epoch: usize) -> f64 {
    let decays = epoch.saturating_sub(1) / every.max(1);
    base * factor.powi(decays as i32)
}

/// Whether a lower or a higher monitored value is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Goal {
    Minimize,
    Maximize,
}

/// What an epoch's validation value means for the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// New best: save `best`.
    Improved,
    /// No improvement yet, `patience` not exhausted.
    Wait,
    /// `patience` epochs without improvement: stop.
    Stop,
}

/// Early-stopping state; serialisable as two numbers so that `--resume` continues it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EarlyStopper {
    pub goal: Goal,
    /// Epochs without improvement before stopping; 0 never stops.
    pub patience: usize,
    pub best: Option<f64>,
    pub bad_epochs: usize,
}

impl EarlyStopper {
    pub fn new(goal: Goal, patience: usize) -> Self {
        EarlyStopper {
            goal,
            patience,
            best: None,
            bad_epochs: 0,
        }
    }

    /// Feeds one epoch's value. A NaN never counts as an improvement.
    pub fn update(&mut self, value: f64) -> Verdict {
        let better = match (self.best, self.goal) {
            (_, _) if value.is_nan() => false,
            (None, _) => true,
            (Some(b), Goal::Minimize) => value < b,
            (Some(b), Goal::Maximize) => value > b,
        };
        if better {
            self.best = Some(value);
            self.bad_epochs = 0;
            return Verdict::Improved;
        }
        self.bad_epochs += 1;
        if self.patience > 0 && self.bad_epochs >= self.patience {
            Verdict::Stop
        } else {
            Verdict::Wait
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The official loop, step by step: record each epoch's rate, decay after the epoch.
    #[test]
    fn step_decay_matches_the_official_loop_for_epochs_0_to_30() {
        let (base, factor, every) = (2e-4, 0.9, 10);
        let mut lr = base;
        for epoch in 0..=30 {
            let got = lr_at_epoch(base, factor, every, epoch);
            assert!(
                (got - lr).abs() <= 1e-12 * base,
                "epoch {epoch}: {got} vs official {lr}"
            );
            if epoch % every == 0 && epoch != 0 {
                lr *= factor;
            }
        }
    }

    #[test]
    fn step_decay() {
        let cases = [
            (2e-4, 0.9, 10, 0, 2e-4),
            (2e-4, 0.9, 10, 10, 2e-4),
            (2e-4, 0.9, 10, 11, 1.8e-4),
            (2e-4, 0.9, 10, 20, 1.8e-4),
            (2e-4, 0.9, 10, 21, 2e-4 * 0.81),
            (1.0, 0.5, 1, 3, 0.25),
            (1.0, 1.0, 10, 49, 1.0),
        ];
        for (base, factor, every, epoch, want) in cases {
            let got = lr_at_epoch(base, factor, every, epoch);
            assert!((got - want).abs() < 1e-15, "epoch {epoch}: {got} vs {want}");
        }
    }

    #[test]
    fn early_stopping() {
        use Verdict::*;
        // (goal, patience, values, expected verdicts)
        let cases: &[(Goal, usize, &[f64], &[Verdict])] = &[
            (
                Goal::Minimize,
                2,
                &[1.0, 0.9, 0.95, 0.91, 0.5],
                &[Improved, Improved, Wait, Stop, Improved],
            ),
            (Goal::Minimize, 1, &[1.0, 1.0], &[Improved, Stop]),
            (
                Goal::Maximize,
                3,
                &[0.5, 0.6, 0.6, 0.55, 0.7],
                &[Improved, Improved, Wait, Wait, Improved],
            ),
            (
                Goal::Minimize,
                0,
                &[1.0, 2.0, 3.0, 4.0],
                &[Improved, Wait, Wait, Wait],
            ),
            (
                Goal::Minimize,
                2,
                &[f64::NAN, 1.0, f64::NAN, f64::NAN],
                &[Wait, Improved, Wait, Stop],
            ),
        ];
        for (goal, patience, values, want) in cases {
            let mut s = EarlyStopper::new(*goal, *patience);
            let got: Vec<Verdict> = values.iter().map(|&v| s.update(v)).collect();
            assert_eq!(&got, want, "{goal:?} patience {patience} values {values:?}");
        }
    }
}
