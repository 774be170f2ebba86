//! One optimisation step, shared by the training loop and `npr bench`.
use tch::{Kind, Reduction, Tensor};

use super::adam::Adam;
use crate::model::detector::DetectorOutput;
use crate::model::Detector;

/// Binary cross-entropy on logits (fake = 1), computed in fp32 even under autocast.
pub fn bce_loss(logit: &Tensor, labels: &Tensor, reduction: Reduction) -> Tensor {
    logit
        .to_kind(Kind::Float)
        .binary_cross_entropy_with_logits::<Tensor>(labels, None, None, reduction)
}

/// Forward in training mode, mean BCE, backward, Adam update. Returns the (detached) loss.
pub fn train_step(model: &Detector, adam: &mut Adam, x: &Tensor, labels: &Tensor) -> Tensor {
    train_step_with(model, adam, x, labels, &|_| None)
}

/// [`train_step`] with an auxiliary loss added to the BCE (`train.scale_supervision`).
pub fn train_step_with(
    model: &Detector,
    adam: &mut Adam,
    x: &Tensor,
    labels: &Tensor,
    aux: &dyn Fn(&DetectorOutput) -> Option<Tensor>,
) -> Tensor {
    let out = model.forward_t(x, true);
    let mut loss = bce_loss(&out.logit, labels, Reduction::Mean);
    if let Some(extra) = aux(&out) {
        loss = loss + extra;
    }
    adam.zero_grad();
    loss.backward();
    adam.step();
    crate::amp::clear_weight_cache();
    loss.detach()
}
