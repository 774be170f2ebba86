//! Decoding a file into RGB8 exactly as PIL's `Image.open(p).convert("RGB")` does.
//! NPR reads `x − up(down(x))`, a function of neighbouring pixels, so a decoder that is
//! off by one in a few values changes what the model sees.
//!
//! The format comes from the first bytes (magic), never from the extension. PNG goes
//! through `image` (the `png` crate), JPEG through libjpeg-turbo ([`super::jpeg`]).
//! Conversions follow Pillow's `PngImagePlugin` modes and `Convert.c`:
//!
//! | PNG                         | PIL mode | → RGB8                          |
//! |-----------------------------|----------|---------------------------------|
//! | grey 1/2/4/8-bit (± tRNS)   | 1 / L    | replicate (1/2/4-bit scaled)    |
//! | grey 16-bit (± tRNS)        | I;16     | `min(v, 255)` per value (PIL clips, it does not scale) |
//! | grey+alpha 8-bit            | LA       | replicate grey, drop alpha      |
//! | grey+alpha 16-bit           | RGBA     | high byte of grey, drop alpha   |
//! | RGB / RGBA 8-bit (± tRNS)   | RGB/RGBA | drop alpha (no compositing)     |
//! | RGB / RGBA 16-bit           | RGB/RGBA | high byte (`RGB;16B`), drop alpha |
//! | palette (± tRNS)            | P        | palette lookup                  |
//!
//! PIL ignores gAMA/iCCP/cHRM and EXIF orientation on open, and so does this module.
//! BMP, GIF, TIFF and WebP are recognised and reported as unsupported (this build's
//! `image` has only the PNG and JPEG decoders).

use std::io::{Cursor, ErrorKind};
use std::path::Path;

use image::codecs::png::PngDecoder;
use image::{DynamicImage, RgbImage};

use super::jpeg;
use super::skip::{Rejected, SkipReason};

/// Images with more pixels than this are skipped as oversized (100 MP).
pub const DEFAULT_MAX_PIXELS: u64 = 100_000_000;

/// Size limits checked from the header, before any pixel memory is allocated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest width × height accepted.
    pub max_pixels: u64,
    /// Smallest width and height accepted (1 = any non-empty image).
    pub min_side: u32,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_pixels: DEFAULT_MAX_PIXELS,
            min_side: 1,
        }
    }
}

impl DecodeLimits {
    pub fn unlimited() -> Self {
        DecodeLimits {
            max_pixels: u64::MAX,
            min_side: 1,
        }
    }

    /// The largest file worth reading: no image within the pixel limit needs more than ~8
    /// bytes per pixel on disk (16-bit RGBA PNG, uncompressed), plus 16 MiB of metadata. A
    /// bigger file (or upload) is rejected before it is read into memory.
    pub fn max_file_bytes(&self) -> u64 {
        self.max_pixels.saturating_mul(8).saturating_add(16 << 20)
    }

    pub(crate) fn check(&self, width: u64, height: u64) -> Result<(), Rejected> {
        let too_small = |detail: String| Err(Rejected::new(SkipReason::TooSmall, detail));
        if width == 0 || height == 0 {
            return too_small(format!("{width}×{height} image"));
        }
        let min = u64::from(self.min_side);
        if width < min || height < min {
            return too_small(format!(
                "{width}×{height} image, smaller than the minimum side {min}"
            ));
        }
        if width.saturating_mul(height) > self.max_pixels {
            let over = over_the_limit(width * height, self.max_pixels);
            let detail = format!("{width}×{height} = {over}");
            return Err(Rejected::new(SkipReason::Oversized, detail));
        }
        Ok(())
    }
}

/// "W×H = 16.78 MP, over the limit of 16.77 MP": megapixels with as many decimals as
/// it takes for the two to differ (one at least), so the message never reads "16.8 MP over
/// the limit of 16.8 MP".
fn over_the_limit(pixels: u64, max: u64) -> String {
    let (pixels, max) = (pixels as f64 / 1e6, max as f64 / 1e6);
    let differ = |d: usize| format!("{pixels:.d$}") != format!("{max:.d$}");
    let decimals = (1..=6).find(|&d| differ(d)).unwrap_or(6);
    format!("{pixels:.decimals$} MP, over the limit of {max:.decimals$} MP")
}

/// A format recognised by its signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Png,
    Jpeg,
    Bmp,
    Gif,
    Tiff,
    Webp,
}

impl Format {
    pub fn is_supported(self) -> bool {
        matches!(self, Format::Png | Format::Jpeg)
    }
}

const PNG_MAGIC: &[u8] = b"\x89PNG\r\n\x1a\n";

/// The format of `bytes` from its magic number, if it is one of the known image formats.
pub fn sniff(bytes: &[u8]) -> Option<Format> {
    match bytes {
        [0x89, b'P', b'N', b'G', ..] => Some(Format::Png),
        [0xFF, 0xD8, 0xFF, ..] => Some(Format::Jpeg),
        [b'B', b'M', ..] => Some(Format::Bmp),
        [b'G', b'I', b'F', b'8', ..] => Some(Format::Gif),
        [b'I', b'I', 0x2A, 0x00, ..] | [b'M', b'M', 0x00, 0x2A, ..] => Some(Format::Tiff),
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => Some(Format::Webp),
        _ => None,
    }
}

/// Reads and decodes one file. Every failure is a [`Rejected`] with its reason.
pub fn decode_file(path: &Path, limits: &DecodeLimits) -> Result<RgbImage, Rejected> {
    if let Ok(meta) = std::fs::metadata(path) {
        check_file_size(meta.len(), limits.max_file_bytes())?;
    }
    let bytes = std::fs::read(path).map_err(|e| read_error(path, &e))?;
    decode_bytes(&bytes, limits)
}

/// Refuses a file of `len` bytes before reading it when no image within the pixel limit
/// can be that large (`cap`, [`DecodeLimits::max_file_bytes`]).
pub fn check_file_size(len: u64, cap: u64) -> Result<(), Rejected> {
    if len > cap {
        let detail = format!("{len} bytes on disk, more than any image within the pixel limit");
        return Err(Rejected::new(SkipReason::Oversized, detail));
    }
    Ok(())
}

/// The reason an `std::fs` call on an image path failed.
pub(crate) fn read_error(path: &Path, e: &std::io::Error) -> Rejected {
    // EISDIR has no stable ErrorKind name on the MSRV; check the metadata instead.
    if path.is_dir() {
        return Rejected::new(SkipReason::NotAFile, "is a directory");
    }
    let detail = match e.kind() {
        ErrorKind::NotFound if path.symlink_metadata().is_ok() => {
            "dangling symlink (its target does not exist)".to_string()
        }
        ErrorKind::PermissionDenied => format!("permission denied ({e})"),
        _ if e.raw_os_error() == Some(40) => format!("symlink loop ({e})"), // ELOOP
        _ => e.to_string(),
    };
    Rejected::new(SkipReason::Unreadable, detail)
}

/// Decodes an in-memory image file into RGB8 like PIL (see the module docs).
pub fn decode_bytes(bytes: &[u8], limits: &DecodeLimits) -> Result<RgbImage, Rejected> {
    if bytes.is_empty() {
        return Err(Rejected::new(SkipReason::Empty, "0 bytes"));
    }
    match sniff(bytes) {
        Some(Format::Png) => decode_png(bytes, limits),
        Some(Format::Jpeg) => jpeg::decode(bytes, limits),
        Some(other) => Err(Rejected::new(
            SkipReason::UnsupportedFormat,
            format!("{other:?} files are not supported (PNG and JPEG are)"),
        )),
        None => {
            let hex: Vec<String> = bytes.iter().take(8).map(|b| format!("{b:02x}")).collect();
            let detail = format!("unknown signature {}", hex.join(" "));
            Err(Rejected::new(SkipReason::NotImage, detail))
        }
    }
}

/// The IHDR fields that decide PIL's mode: (width, height, bit depth, colour type).
fn png_header(bytes: &[u8]) -> Result<(u32, u32, u8, u8), Rejected> {
    if bytes.len() < 33 || !bytes.starts_with(PNG_MAGIC) || &bytes[12..16] != b"IHDR" {
        let detail = "PNG: truncated or missing IHDR";
        return Err(Rejected::new(SkipReason::Corrupt, detail));
    }
    let be = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    Ok((be(16), be(20), bytes[24], bytes[25]))
}

fn decode_png(bytes: &[u8], limits: &DecodeLimits) -> Result<RgbImage, Rejected> {
    let (width, height, _depth, color_type) = png_header(bytes)?;
    limits.check(u64::from(width), u64::from(height))?;
    let corrupt = |e: image::ImageError| Rejected::new(SkipReason::Corrupt, format!("PNG: {e}"));
    // Dimensions were checked above; the crate's default 512 MiB cap would refuse a
    // legitimate 100 MP 16-bit RGBA image.
    let decoder =
        PngDecoder::with_limits(Cursor::new(bytes), image::Limits::no_limits()).map_err(corrupt)?;
    let img = DynamicImage::from_decoder(decoder).map_err(corrupt)?;
    to_rgb8_like_pil(img, color_type)
}

/// PIL's `convert("RGB")` for what the PNG decoder produced; `png_color_type` is IHDR's
/// colour type, needed because `image` expands grey+tRNS to grey+alpha.
fn to_rgb8_like_pil(img: DynamicImage, png_color_type: u8) -> Result<RgbImage, Rejected> {
    const GREY: u8 = 0;
    let (w, h) = (img.width(), img.height());
    let grey16 = |v: u16| v.min(255) as u8; // PIL "I;16" → "L"/"RGB" clips
    let high = |v: u16| (v >> 8) as u8; // PIL "RGB;16B"/"LA;16B" take the high byte
    let high_rgb = |p: &[u16]| [high(p[0]), high(p[1]), high(p[2])];
    let rgb: Vec<u8> = match img {
        DynamicImage::ImageRgb8(im) => return Ok(im),
        DynamicImage::ImageRgba8(im) => im.pixels().flat_map(|p| [p[0], p[1], p[2]]).collect(),
        DynamicImage::ImageLuma8(im) => im.pixels().flat_map(|p| [p[0]; 3]).collect(),
        DynamicImage::ImageLumaA8(im) => im.pixels().flat_map(|p| [p[0]; 3]).collect(),
        DynamicImage::ImageLuma16(im) => im.pixels().flat_map(|p| [grey16(p[0]); 3]).collect(),
        DynamicImage::ImageLumaA16(im) if png_color_type == GREY => {
            im.pixels().flat_map(|p| [grey16(p[0]); 3]).collect()
        }
        DynamicImage::ImageLumaA16(im) => im.pixels().flat_map(|p| [high(p[0]); 3]).collect(),
        DynamicImage::ImageRgb16(im) => im.pixels().flat_map(|p| high_rgb(&p.0)).collect(),
        DynamicImage::ImageRgba16(im) => im.pixels().flat_map(|p| high_rgb(&p.0)).collect(),
        other => {
            let color = other.color();
            let detail = format!("PNG decoded to an unexpected pixel type {color:?}");
            return Err(Rejected::new(SkipReason::UnsupportedFormat, detail));
        }
    };
    RgbImage::from_raw(w, h, rgb).ok_or_else(|| {
        Rejected::new(
            SkipReason::Corrupt,
            "PNG: decoded buffer has the wrong size",
        )
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_limit_message_shows_the_difference() {
        // (pixels, limit) → message
        for (pixels, max, want) in [
            (
                4097 * 4096,
                4096 * 4096,
                "16.781 MP, over the limit of 16.777 MP",
            ),
            (
                200_000_000,
                100_000_000,
                "200.0 MP, over the limit of 100.0 MP",
            ),
            (
                100_000_001,
                100_000_000,
                "100.000001 MP, over the limit of 100.000000 MP",
            ),
        ] {
            assert_eq!(super::over_the_limit(pixels, max), want);
        }
    }
}
