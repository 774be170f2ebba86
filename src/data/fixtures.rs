//! Test fixtures, made at test time: temporary folder trees, deterministic images, and a
//! tiny PNG writer that can produce every PNG colour type and bit depth (the `image`
//! encoder cannot write palettes or tRNS chunks).

use std::path::{Path, PathBuf};

use image::RgbImage;

/// 64-bit FNV-1a, the checksum used by the golden-value tests (easy to write in Python).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A temporary folder that creates parent folders on demand.
pub struct Tree {
    dir: tempfile::TempDir,
}

impl Tree {
    pub fn new() -> Self {
        Tree {
            dir: tempfile::tempdir().expect("temporary folder"),
        }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// `root/rel`, with its parent folders created.
    pub fn path(&self, rel: &str) -> PathBuf {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().expect("has a parent")).expect("create parents");
        p
    }

    pub fn write(&self, rel: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(rel);
        std::fs::write(&p, bytes).expect("write fixture");
        p
    }
}

/// Smooth, colourful, deterministic content (no RNG): gradients plus a few waves.
pub fn natural(w: u32, h: u32, seed: u32) -> RgbImage {
    let s = seed as f32;
    RgbImage::from_fn(w, h, |x, y| {
        let (fx, fy) = (x as f32, y as f32);
        let wave = |a: f32, b: f32, c: f32| ((fx * a + fy * b + c).sin() * 0.5 + 0.5) * 255.0;
        image::Rgb([
            (0.6 * wave(0.21, 0.13, s) + 0.4 * fx * 255.0 / w.max(1) as f32) as u8,
            (0.7 * wave(-0.17, 0.29, 2.0 * s + 1.0) + 0.3 * fy * 255.0 / h.max(1) as f32) as u8,
            wave(0.05 * (s + 1.0), 0.11, 0.5) as u8,
        ])
    })
}

/// Writes a 16×16 PNG at `path` (parents created).
pub fn touch_png(path: &Path) {
    std::fs::create_dir_all(path.parent().expect("has a parent")).expect("create parents");
    std::fs::write(path, png_rgb8(&natural(16, 16, 1))).expect("write PNG");
}

pub fn png_rgb8(img: &RgbImage) -> Vec<u8> {
    png_raw(img.width(), img.height(), 8, 2, img.as_raw(), None, None)
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(data: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &d in data {
        a = (a + u32::from(d)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

/// zlib stream made of stored (uncompressed) deflate blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let chunks: Vec<&[u8]> = if data.is_empty() {
        vec![&[]]
    } else {
        data.chunks(65_535).collect()
    };
    for (i, c) in chunks.iter().enumerate() {
        out.push(u8::from(i + 1 == chunks.len()));
        let len = c.len() as u16;
        out.extend(len.to_le_bytes());
        out.extend((!len).to_le_bytes());
        out.extend_from_slice(c);
    }
    out.extend(adler32(data).to_be_bytes());
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend((data.len() as u32).to_be_bytes());
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    out.extend_from_slice(&body);
    out.extend(crc32(&body).to_be_bytes());
}

/// A PNG from packed rows (`packed` holds `h` rows of `ceil(w · channels · depth / 8)`
/// bytes, 16-bit samples big-endian), with optional PLTE and tRNS chunks.
pub fn png_raw(
    w: u32,
    h: u32,
    bit_depth: u8,
    color_type: u8,
    packed: &[u8],
    plte: Option<&[u8]>,
    trns: Option<&[u8]>,
) -> Vec<u8> {
    let channels = match color_type {
        0 | 3 => 1,
        2 => 3,
        4 => 2,
        _ => 4,
    };
    let row_bytes = (w as usize * channels * bit_depth as usize).div_ceil(8);
    let mut filtered = Vec::new();
    for row in packed.chunks(row_bytes.max(1)).take(h as usize) {
        filtered.push(0); // filter type None
        filtered.extend_from_slice(row);
    }
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([bit_depth, color_type, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    if let Some(p) = plte {
        chunk(&mut out, b"PLTE", p);
    }
    if let Some(t) = trns {
        chunk(&mut out, b"tRNS", t);
    }
    chunk(&mut out, b"IDAT", &zlib_stored(&filtered));
    chunk(&mut out, b"IEND", &[]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_writer_round_trips_through_image() {
        let img = natural(7, 5, 3);
        let back = image::load_from_memory(&png_rgb8(&img)).unwrap().to_rgb8();
        assert_eq!(back, img);
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
    }
}
