//! From uint8 batches to the model's input: the loader ships NHWC bytes (4× fewer than
//! floats), is copied to a GPU from pinned memory without blocking, and normalisation
//! happens on the device.
use tch::{Device, Kind, Tensor};

/// ImageNet statistics, as in the official NPR transforms (`transforms.Normalize`).
pub const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];

/// `data`: n·h·w·3 RGB bytes → normalised float input [n, 3, h, w] on `device`.
pub fn to_input(data: &[u8], n: usize, h: usize, w: usize, device: Device) -> Tensor {
    assert_eq!(
        data.len(),
        n * h * w * 3,
        "batch bytes do not match {n}×{h}×{w}×3"
    );
    let host = Tensor::from_slice(data).view([n as i64, h as i64, w as i64, 3]);
    // To a GPU from page-locked memory without blocking: the copy overlaps the work
    // already queued (libtorch's pinned-memory cache keeps the block until it is done).
    // `_pin_memory`, not `pin_memory`: tch always passes the device, and the public op
    // warns that this argument is deprecated (a warning per batch would flood the log).
    let x = if device.is_cuda() {
        host.internal_pin_memory(device)
            .to_device_(device, Kind::Uint8, true, false)
    } else {
        host
    };
    let x = x.permute([0, 3, 1, 2]).to_kind(Kind::Float) / 255.0; // [n, 3, h, w] in [0, 1]
    let per_channel = |v: &[f64; 3]| {
        let t = Tensor::from_slice(v).to_kind(Kind::Float);
        t.to_device(device).view([1, 3, 1, 1])
    };
    ((x - per_channel(&IMAGENET_MEAN)) / per_channel(&IMAGENET_STD)).contiguous()
}

/// The same values in channels-last memory order (NHWC strides): what cuDNN's fastest
/// convolution kernels, tensor cores and bf16 prefer. tch has no memory-format API, so the
/// layout is made by a permute round trip.
pub fn to_channels_last(t: &Tensor) -> Tensor {
    t.permute([0, 2, 3, 1]).contiguous().permute([0, 3, 1, 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_like_torchvision() {
        // pixel (r, g, b) = (0, 128, 255) → ((0/255 − .485)/.229, (128/255 − .456)/.224, (1 − .406)/.225)
        let x = to_input(&[0, 128, 255], 1, 1, 1, Device::Cpu);
        let want = [
            (0.0 - 0.485) / 0.229,
            (128.0 / 255.0 - 0.456) / 0.224,
            (1.0 - 0.406) / 0.225,
        ];
        for (c, w) in want.iter().enumerate() {
            let got = x.double_value(&[0, c as i64, 0, 0]);
            assert!((got - w).abs() < 1e-6, "channel {c}: {got} vs {w}");
        }
    }
}
