//! The detector (ARCHITECTURE.md, Model): multi-scale NPR → scale fusion → ResNet backbone → logit.
pub mod backbone;
pub mod detector;
pub mod fusion;
pub mod input;
pub mod npr;
pub mod scale_attention;

pub use detector::Detector;
