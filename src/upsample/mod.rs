//! Neural up-samplers run from their published files: the generators of the photo
//! benchmark's neural fakes (issue 29). `tfjs` runs a TensorFlow.js layers model on tch;
//! `esrgan` wraps the UpscalerJS ESRGAN packages (scale, input range, image in → image out).
pub mod esrgan;
pub mod tfjs;

pub use esrgan::{Capacity, Esrgan, InputRange};
