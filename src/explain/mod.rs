//! Looking inside a decision (`npr predict --maps`, `npr serve`): the NPR residual of
//! every scale and the fused map the backbone sees, as pictures a person can compare.
//!
//! - [`stretch`]: one symmetric contrast stretch per image, shared by its residual scales
//! - [`maps`]: one image's maps from the model's tensors → RGB pictures, PNG, JSON
pub mod maps;
pub mod stretch;

pub use maps::{unique_stems, Explanation, ImageMaps};
