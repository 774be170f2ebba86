//! What one image may cost the server, decided from its header before any pixel is
//! decoded (README.md, `npr serve`).
//!
//! The loader's limit counts pixels; memory and time follow the decoded size, which is
//! up to 11 bytes a pixel (16-bit RGBA, plus the RGB8 copy) where a plain RGB8 image
//! takes 3. And a file may cost almost nothing to send: a 130 KB PNG of zeros decodes to
//! 4096×4096 16-bit RGBA. So:
//!
//! - an image's cost is its peak decoded bytes ([`cost_of`]);
//! - one image may cost at most [`BYTES_PER_PIXEL_BUDGET`] bytes per pixel of the pixel
//!   limit (every 8-bit image within the pixel limit passes; 16-bit ones get fewer pixels);
//! - an upload that decodes to more than [`CHEAP_RATIO`] times its own size is cheap to
//!   send, and may cost at most [`CHEAP_BUDGET`] bytes;
//! - decodes above [`SMALL_COST`] share one budget of bytes in flight (the per-image
//!   budget: one maximal image at a time, several middle-sized ones), small ones a
//!   couple of decode slots of their own, so a small request never queues behind a
//!   large decode ([`super::api`]).
use crate::data::{sniff, DecodeLimits, Format, Rejected, SkipReason};

/// Decoded bytes an image may take, per pixel of the pixel limit: an RGBA8 image (4
/// bytes a pixel, and 3 for its RGB copy) at the limit just passes.
pub const BYTES_PER_PIXEL_BUDGET: u64 = 7;
/// Decoded size over upload size above which an upload is "cheap to send".
pub const CHEAP_RATIO: u64 = 256;
/// The most a cheap-to-send upload may cost: 32 MiB (about 11 MP of RGB8, 3 MP of
/// 16-bit RGBA).
pub const CHEAP_BUDGET: u64 = 32 << 20;
/// Decodes up to this many bytes (about 5.6 MP of RGB8) are small.
pub const SMALL_COST: u64 = 16 << 20;

/// An image's size and what decoding it takes, from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeCost {
    pub width: u32,
    pub height: u32,
    /// Peak bytes: the decoder's buffer plus, unless that already is RGB8, the RGB8 copy.
    pub bytes: u64,
}

/// The decode cost of an image file, or `None` when its header cannot be read (the
/// decoder then rejects it with the precise reason).
pub fn cost_of(file: &[u8]) -> Option<DecodeCost> {
    let (width, height, decoded_bpp) = match sniff(file)? {
        Format::Png => png_header(file)?,
        Format::Jpeg => {
            let reader = image::ImageReader::with_format(
                std::io::Cursor::new(file),
                image::ImageFormat::Jpeg,
            );
            let (w, h) = reader.into_dimensions().ok()?;
            (w, h, 3) // turbojpeg decodes straight to RGB8
        }
        _ => return None,
    };
    let pixels = u64::from(width) * u64::from(height);
    let copy = if decoded_bpp == 3 { 0 } else { 3 };
    Some(DecodeCost {
        width,
        height,
        bytes: pixels * (decoded_bpp + copy),
    })
}

/// (width, height, bytes per decoded pixel) from a PNG's IHDR.
fn png_header(file: &[u8]) -> Option<(u32, u32, u64)> {
    if file.len() < 26 || &file[12..16] != b"IHDR" {
        return None;
    }
    let be = |i: usize| u32::from_be_bytes([file[i], file[i + 1], file[i + 2], file[i + 3]]);
    let (depth, colour) = (file[24], file[25]);
    let channels = match colour {
        0 => 1, // grey
        2 => 3, // RGB
        3 => 4, // palette: expanded to RGB8, or RGBA8 with transparency
        4 => 2, // grey + alpha
        6 => 4, // RGBA
        _ => return None,
    };
    let sample = if depth == 16 { 2 } else { 1 };
    Some((be(16), be(20), channels * sample))
}

/// The limits an image must fit, given the decoder's pixel limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// The most one image may cost, in decoded bytes.
    pub per_image: u64,
}

impl Budget {
    pub fn new(limits: &DecodeLimits) -> Self {
        Budget {
            per_image: limits.max_pixels.saturating_mul(BYTES_PER_PIXEL_BUDGET),
        }
    }

    /// Refuses an image that costs more than it may; `sent` is the upload's size, or
    /// `None` for a file of folder mode (chosen by whoever started the server).
    pub fn admit(&self, cost: &DecodeCost, sent: Option<u64>) -> Result<(), Rejected> {
        let cheap_budget = CHEAP_BUDGET.min(self.per_image);
        let (limit, why) = match sent {
            Some(n) if cost.bytes > n.saturating_mul(CHEAP_RATIO) => (
                cheap_budget,
                format!(
                    "it decodes to more than {CHEAP_RATIO}× its {n} bytes, and such uploads may decode to at most {}",
                    mib(cheap_budget)
                ),
            ),
            _ => (
                self.per_image,
                format!("the most one image may decode to is {}", mib(self.per_image)),
            ),
        };
        if cost.bytes <= limit {
            return Ok(());
        }
        let (w, h, bytes) = (cost.width, cost.height, mib(cost.bytes));
        let detail = format!("{w}×{h} decodes to {bytes} (over the limit): {why}");
        Err(Rejected::new(SkipReason::Oversized, detail))
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1u32 << 20))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32, depth: u8, colour: u8) -> Vec<u8> {
        let mut png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR".to_vec();
        png.extend(width.to_be_bytes());
        png.extend(height.to_be_bytes());
        png.extend([depth, colour, 0, 0, 0, 0, 0, 0, 0]);
        png
    }

    #[test]
    fn costs_follow_the_decoded_layout() {
        // (depth, colour type) → bytes per pixel
        for (depth, colour, bpp) in [
            (8, 2, 3),
            (8, 6, 7),
            (16, 6, 11),
            (16, 2, 9),
            (8, 0, 4),
            (8, 3, 7),
        ] {
            let cost = cost_of(&png(10, 20, depth, colour)).unwrap();
            assert_eq!(
                (cost.width, cost.height, cost.bytes),
                (10, 20, 200 * bpp),
                "{depth} {colour}"
            );
        }
        assert_eq!(cost_of(b"not an image"), None);
        assert_eq!(cost_of(&png(1, 1, 8, 9)), None, "unknown colour type");
    }

    #[test]
    fn cheap_uploads_get_the_small_budget() {
        let budget = Budget::new(&DecodeLimits {
            max_pixels: 4096 * 4096,
            min_side: 1,
        });
        let cost = |w: u64, bpp: u64| DecodeCost {
            width: w as u32,
            height: w as u32,
            bytes: w * w * bpp,
        };
        // (cost, sent, admitted)
        for (c, sent, ok) in [
            (cost(4096, 3), Some(40_000_000), true), // a real 16.8 MP photo
            (cost(4096, 7), Some(40_000_000), true), // RGBA8 at the pixel limit
            (cost(4096, 11), Some(100_000_000), false), // 16-bit RGBA: over 7 B/px
            (cost(4096, 11), Some(130_000), false),  // the all-zero PNG of issue 27
            (cost(4096, 3), Some(130_000), false),   // cheap: over 32 MiB
            (cost(2048, 3), Some(50_000), true),     // cheap but small
            (cost(4096, 3), None, true),             // a file of folder mode
        ] {
            assert_eq!(budget.admit(&c, sent).is_ok(), ok, "{c:?} sent {sent:?}");
        }
    }
}
