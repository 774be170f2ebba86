//! End-to-end tests of decoding against PIL (golden values) and of the bad-input corpus
//! through discovery and loading.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use image::RgbImage;

use super::fixtures::{fnv1a, natural, png_raw, png_rgb8, Tree};
use super::*;

/// Golden values from Pillow 13.0.0 (`.venv`), produced by:
/// ```python
/// import io, struct, zlib
/// import numpy as np
/// from PIL import Image
/// def fnv1a(b):
///     h = 0xcbf29ce484222325
///     for c in b: h = ((h ^ c) * 0x100000001b3) % 2**64
///     return h
/// def png(w, h, depth, ct, plte=None, trns=None):  # same bytes as `packed` below
///     ch = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[ct]
///     rb = (w * ch * depth + 7) // 8
///     packed = bytes((i * 37 + 11) % 256 for i in range(rb * h))
///     raw = b''.join(b'\0' + packed[y * rb:(y + 1) * rb] for y in range(h))
///     def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
///     out = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, depth, ct, 0, 0, 0))
///     if plte: out += chunk(b'PLTE', plte)
///     if trns: out += chunk(b'tRNS', trns)
///     return out + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b'')
/// PAL = bytes((i * 7 + 3) % 256 for i in range(768))
/// for name, depth, ct, plte, trns in CASES:  # the table below, with PLTE/tRNS as in `cases`
///     im = Image.open(io.BytesIO(png(5, 3, depth, ct, plte, trns)))
///     rgb = np.asarray(im.convert('RGB'))
///     print(name, depth, ct, hex(fnv1a(rgb.tobytes())), rgb[0, 0].tolist(), im.mode)
/// ```
#[test]
#[allow(clippy::type_complexity)] // a golden table
fn png_colour_types_convert_like_pil() {
    let pal: Vec<u8> = (0..768).map(|i| ((i * 7 + 3) % 256) as u8).collect();
    // (name, bit depth, colour type, PLTE, tRNS, fnv1a of PIL's RGB bytes, first pixel)
    #[rustfmt::skip]
    let cases: Vec<(&str, u8, u8, Option<&[u8]>, Option<&[u8]>, u64, [u8; 3])> = vec![
        ("grey1", 1, 0, None, None, 0xd301af0f5c70ae, [0, 0, 0]),                  // PIL mode 1
        ("grey2", 2, 0, None, None, 0x91ca0def90b32e97, [0, 0, 0]),                // L
        ("grey4", 4, 0, None, None, 0x40b7d42cbb33101b, [0, 0, 0]),                // L
        ("grey8", 8, 0, None, None, 0xccfee4b7e239f529, [11, 11, 11]),             // L
        ("grey8_trns", 8, 0, None, Some(b"\x00\x0b"), 0xccfee4b7e239f529, [11, 11, 11]),
        ("grey16", 16, 0, None, None, 0x744c15ed532ce142, [255, 255, 255]),        // I;16: clipped
        ("grey16_trns", 16, 0, None, Some(b"\x01\x02"), 0x744c15ed532ce142, [255, 255, 255]),
        ("rgb8", 8, 2, None, None, 0x1dead0ddda242822, [11, 48, 85]),              // RGB
        ("rgb8_trns", 8, 2, None, Some(b"\x00\x0b\x00\x30\x00\x55"), 0x1dead0ddda242822, [11, 48, 85]),
        ("rgb16", 16, 2, None, None, 0x336b75aad6a19f7a, [11, 85, 159]),           // RGB;16B
        ("pal1", 1, 3, Some(&pal[..6]), None, 0x863e8ee4bac7ab48, [3, 10, 17]),     // P
        ("pal2_trns", 2, 3, Some(&pal[..12]), Some(b"\x00\x80"), 0x323eb3f4ca32fe83, [3, 10, 17]),
        ("pal4", 4, 3, Some(&pal[..48]), None, 0x3087fcef2ca95e7, [3, 10, 17]),
        ("pal8_trns", 8, 3, Some(&pal[..]), Some(b"\x00\x80\xff"), 0xbf02b16865cac71, [234, 241, 248]),
        ("la8", 8, 4, None, None, 0xf9bce1fa32db3cd0, [11, 11, 11]),               // LA
        ("la16", 16, 4, None, None, 0xc7feeb1905401f9a, [11, 11, 11]),             // RGBA via LA;16B
        ("rgba8", 8, 6, None, None, 0x3f96d2f9f9dee9bd, [11, 48, 85]),             // RGBA
        ("rgba16", 16, 6, None, None, 0x47f58439b679597c, [11, 85, 159]),          // RGBA
    ];
    let (w, h) = (5u32, 3u32);
    for (name, depth, ct, plte, trns, hash, first) in cases {
        let channels = match ct {
            0 | 3 => 1,
            2 => 3,
            4 => 2,
            _ => 4,
        };
        let row_bytes = (w as usize * channels * depth as usize).div_ceil(8);
        let packed: Vec<u8> = (0..row_bytes * h as usize)
            .map(|i| ((i * 37 + 11) % 256) as u8)
            .collect();
        let bytes = png_raw(w, h, depth, ct, &packed, plte, trns);
        let img = decode_bytes(&bytes, &DecodeLimits::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(img.dimensions(), (w, h), "{name}");
        assert_eq!(img.get_pixel(0, 0).0, first, "{name}");
        assert_eq!(fnv1a(img.as_raw()), hash, "{name}");
    }
}

/// The JPEG fixture: 32×24, integer formula (edges and gradients).
fn jpeg_source() -> RgbImage {
    RgbImage::from_fn(32, 24, |x, y| {
        let (x, y) = (x as i32, y as i32);
        image::Rgb([
            ((x * 8 + y * 3) % 256) as u8,
            ((x * y * 5 + 40) % 256) as u8,
            ((200 + x * 2 - y * 6).rem_euclid(256)) as u8,
        ])
    })
}

fn tj_compress(pixels: &[u8], format: turbojpeg::PixelFormat, quality: i32) -> Vec<u8> {
    let mut c = turbojpeg::Compressor::new().unwrap();
    c.set_quality(quality).unwrap();
    match format {
        turbojpeg::PixelFormat::GRAY => c.set_subsamp(turbojpeg::Subsamp::Gray).unwrap(),
        _ => {
            // PIL writes CMYK as Adobe CMYK (not YCCK), 4:4:4, inverted samples ("CMYK;I").
            c.set_colorspace(turbojpeg::Colorspace::CMYK).unwrap();
            c.set_subsamp(turbojpeg::Subsamp::None).unwrap();
        }
    }
    let size = format.size();
    let image = turbojpeg::Image {
        pixels,
        width: 32,
        pitch: 32 * size,
        height: 24,
        format,
    };
    c.compress_to_vec(image).unwrap()
}

/// Golden values from Pillow 13.0.0 (libjpeg-turbo 3.2.0), produced by:
/// ```python
/// y, x = np.mgrid[0:24, 0:32]   # fnv1a, imports as above
/// src = np.stack([(x*8 + y*3) % 256, (x*y*5 + 40) % 256, (200 + x*2 - y*6) % 256], -1).astype(np.uint8)
/// def jpeg(im, **kw):
///     bio = io.BytesIO(); im.save(bio, format='JPEG', **kw); return bio.getvalue()
/// for name, im, q in [("rgb", Image.fromarray(src), 75), ("grey", Image.fromarray(src[..., 1]), 75),
///                     ("cmyk", Image.fromarray(np.concatenate([src, src[..., :1] // 2], -1), 'CMYK'), 90)]:
///     b = jpeg(im, quality=q)
///     dec = np.asarray(Image.open(io.BytesIO(b)).convert('RGB'))
///     print(name, q, len(b), hex(fnv1a(b)), hex(fnv1a(dec.tobytes())), dec[0, 0].tolist(), dec[23, 31].tolist())
/// ```
/// Our encoder gives PIL's bytes, and decoding those bytes gives PIL's pixels.
#[test]
#[allow(clippy::type_complexity)] // a golden table
fn jpeg_encode_and_decode_match_pil() {
    let src = jpeg_source();
    let grey: Vec<u8> = src.pixels().map(|p| p[1]).collect();
    let cmyk_inverted: Vec<u8> = src
        .pixels()
        .flat_map(|p| [255 - p[0], 255 - p[1], 255 - p[2], 255 - p[0] / 2])
        .collect();
    let fixtures = [
        ("rgb", encode_jpeg(&src, 75).unwrap()),
        ("grey", tj_compress(&grey, turbojpeg::PixelFormat::GRAY, 75)),
        (
            "cmyk",
            tj_compress(&cmyk_inverted, turbojpeg::PixelFormat::CMYK, 90),
        ),
    ];
    // (name, encoded length, fnv1a of the file, fnv1a of PIL's RGB pixels, two pixels)
    #[rustfmt::skip]
    let golden: [(&str, usize, u64, u64, [u8; 3], [u8; 3]); 3] = [
        ("rgb", 1051, 0xf4045e185c5ff0a1, 0x1a18f50c78f4b4a2, [4, 32, 202], [18, 43, 83]),
        ("grey", 722, 0x91d4678f113be8f5, 0x4a3ded74393c3d3a, [29, 29, 29], [15, 15, 15]),
        ("cmyk", 1449, 0xce2080cf3e967c9a, 0x8e2a8d002a3dc1c8, [255, 214, 54], [172, 211, 118]),
    ];
    for ((name, bytes), (gname, len, file_hash, pixel_hash, p00, p_last)) in
        fixtures.iter().zip(golden)
    {
        assert_eq!(*name, gname);
        assert_eq!(
            (bytes.len(), fnv1a(bytes)),
            (len, file_hash),
            "{name}: encoded bytes"
        );
        let img = decode_bytes(bytes, &DecodeLimits::default()).unwrap();
        assert_eq!(img.get_pixel(0, 0).0, p00, "{name}");
        assert_eq!(img.get_pixel(31, 23).0, p_last, "{name}");
        assert_eq!(fnv1a(img.as_raw()), pixel_hash, "{name}: decoded pixels");
    }
    // Cut in the entropy-coded data: PIL says "image file is truncated", libjpeg-turbo
    // warns "Premature end of JPEG file". Cut in the headers: a fatal libjpeg error.
    let rgb = &fixtures[0].1;
    let err = decode_bytes(&rgb[..rgb.len() - 150], &DecodeLimits::default()).unwrap_err();
    assert_eq!(err.reason, SkipReason::Corrupt, "{err}");
    assert!(err.detail.contains("truncated"), "{err}");
    let err = decode_bytes(&rgb[..rgb.len() / 2], &DecodeLimits::default()).unwrap_err();
    assert_eq!(err.reason, SkipReason::Corrupt, "{err}");
    // That cut reads as a tables-only datastream. On a fresh libjpeg-turbo handle it
    // leaves state that broke the next image ("Bogus Huffman table definition") until
    // handles that saw a failure were discarded.
    for (name, bytes) in &fixtures {
        let (cut, full) = (rgb[..rgb.len() / 2].to_vec(), bytes.clone());
        let after = std::thread::spawn(move || {
            let _ = decode_bytes(&cut, &DecodeLimits::default());
            decode_bytes(&full, &DecodeLimits::default()).map(|i| fnv1a(i.as_raw()))
        });
        let want = golden.iter().find(|g| g.0 == *name).unwrap().3;
        assert_eq!(
            after.join().unwrap(),
            Ok(want),
            "{name} after a failed decode"
        );
    }
    // PIL ignores libjpeg warnings such as extraneous bytes before a marker.
    let mut padded = rgb[..rgb.len() - 2].to_vec();
    padded.extend([0, 0, 0, 0xFF, 0xD9]);
    assert_eq!(
        decode_bytes(&padded, &DecodeLimits::default()).unwrap(),
        decode_bytes(rgb, &DecodeLimits::default()).unwrap()
    );
}

#[test]
#[allow(clippy::type_complexity)] // a golden table
fn sniffing_ignores_extensions_and_limits_come_from_the_header() {
    let png = png_rgb8(&natural(4, 4, 0));
    let jpg = encode_jpeg(&natural(8, 8, 0), 90).unwrap();
    let huge_header = png_raw(20_000, 20_000, 8, 2, &[], None, None);
    let zero_header = png_raw(0, 7, 8, 2, &[], None, None);
    let bmp = b"BM\x3a\0\0\0\0\0\0\0\x36\0\0\0".to_vec();
    let webp = b"RIFF\x24\0\0\0WEBPVP8 ".to_vec();
    let cases: Vec<(&str, Vec<u8>, Result<(u32, u32), SkipReason>)> = vec![
        ("png", png.clone(), Ok((4, 4))),
        ("jpeg", jpg, Ok((8, 8))),
        ("empty", vec![], Err(SkipReason::Empty)),
        (
            "text",
            b"hello, I am not an image".to_vec(),
            Err(SkipReason::NotImage),
        ),
        (
            "truncated png",
            png[..png.len() / 2].to_vec(),
            Err(SkipReason::Corrupt),
        ),
        (
            "png signature only",
            png[..8].to_vec(),
            Err(SkipReason::Corrupt),
        ),
        ("400 MP header", huge_header, Err(SkipReason::Oversized)),
        ("zero width", zero_header, Err(SkipReason::TooSmall)),
        ("bmp", bmp, Err(SkipReason::UnsupportedFormat)),
        ("webp", webp, Err(SkipReason::UnsupportedFormat)),
    ];
    for (name, bytes, want) in cases {
        let got = decode_bytes(&bytes, &DecodeLimits::default())
            .map(|i| i.dimensions())
            .map_err(|e| e.reason);
        assert_eq!(got, want, "{name}");
    }
    let strict = DecodeLimits {
        max_pixels: 10,
        min_side: 1,
    };
    assert_eq!(
        decode_bytes(&png, &strict).unwrap_err().reason,
        SkipReason::Oversized
    );
    let min8 = DecodeLimits {
        min_side: 8,
        ..DecodeLimits::default()
    };
    assert_eq!(
        decode_bytes(&png, &min8).unwrap_err().reason,
        SkipReason::TooSmall
    );
}

/// What should happen to a corpus file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fate {
    Used,
    UsedUpscaled,
    /// Reported by discovery, never a sample.
    Discovery(SkipReason),
    /// A sample that the loader skips.
    Load(SkipReason),
}

#[cfg(unix)]
#[test]
fn bad_input_corpus_through_discovery_and_loading() {
    use std::os::unix::fs::{symlink, PermissionsExt};
    use Fate::*;
    let tree = Tree::new();
    let good = |w, h| png_rgb8(&natural(w, h, 2));
    let jpg = encode_jpeg(&natural(24, 24, 3), 85).unwrap();
    let cmyk: Vec<u8> = natural(32, 24, 4)
        .pixels()
        .flat_map(|p| [p[0], p[1], p[2], 40])
        .collect();
    let deep16: Vec<u8> = (0..20 * 20 * 6).map(|i| (i * 13 % 256) as u8).collect();
    let palette: Vec<u8> = (0..20 * 20).map(|i| (i % 4) as u8).collect();
    let grey: Vec<u8> = (0..20 * 20).map(|i| (i * 7 % 256) as u8).collect();
    let rgba: Vec<u8> = (0..20 * 20 * 4).map(|i| (i * 5 % 256) as u8).collect();

    let mut files: Vec<(&str, Vec<u8>, Fate)> = vec![
        ("0_real/good.png", good(20, 20), Used),
        ("0_real/UPPER.PNG", good(20, 20), Used),
        ("0_real/upper.JPG", jpg.clone(), Used),
        ("0_real/jpeg_named.png", jpg.clone(), Used),
        (
            "0_real/deep16.png",
            png_raw(20, 20, 16, 2, &deep16, None, None),
            Used,
        ),
        (
            "0_real/grey.png",
            png_raw(20, 20, 8, 0, &grey, None, None),
            Used,
        ),
        (
            "0_real/palette.png",
            png_raw(
                20,
                20,
                8,
                3,
                &palette,
                Some(&[0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255]),
                None,
            ),
            Used,
        ),
        (
            "0_real/rgba.png",
            png_raw(20, 20, 8, 6, &rgba, None, None),
            Used,
        ),
        ("1_fake/cmyk.jpg", tj_cmyk(&cmyk, 32, 24), Used),
        ("1_fake/tiny.png", good(1, 1), UsedUpscaled),
        ("1_fake/small.png", good(12, 18), UsedUpscaled),
        ("1_fake/empty.png", vec![], Load(SkipReason::Empty)),
        (
            "1_fake/truncated.png",
            good(20, 20)[..200].to_vec(),
            Load(SkipReason::Corrupt),
        ),
        (
            "1_fake/truncated.jpg",
            jpg[..jpg.len() / 2].to_vec(),
            Load(SkipReason::Corrupt),
        ),
        (
            "1_fake/text.jpg",
            b"this is text".to_vec(),
            Load(SkipReason::NotImage),
        ),
        (
            "1_fake/huge.png",
            png_raw(20_000, 20_000, 8, 2, &[], None, None),
            Load(SkipReason::Oversized),
        ),
        (
            "1_fake/zero.png",
            png_raw(0, 20, 8, 2, &[], None, None),
            Load(SkipReason::TooSmall),
        ),
        (
            "1_fake/notes.txt",
            b"labels".to_vec(),
            Discovery(SkipReason::NotImage),
        ),
        (
            "1_fake/old.bmp",
            b"BM\x3a\0\0\0\0\0\0\0\x36\0\0\0".to_vec(),
            Discovery(SkipReason::UnsupportedFormat),
        ),
        ("1_fake/really_png.webp", good(20, 20), Used),
    ];
    for (rel, bytes, _) in &files {
        tree.write(rel, bytes);
    }
    std::fs::create_dir_all(tree.path("1_fake/folder.png/x")).unwrap();
    symlink(
        tree.root().join("missing.png"),
        tree.path("1_fake/dangling.png"),
    )
    .unwrap();
    symlink(tree.path("1_fake/loop.png"), tree.path("1_fake/loop.png")).unwrap();
    symlink(tree.root(), tree.path("1_fake/back_to_root")).unwrap();
    files.push(("1_fake/folder.png", vec![], Discovery(SkipReason::NotAFile)));
    files.push((
        "1_fake/dangling.png",
        vec![],
        Discovery(SkipReason::Unreadable),
    ));
    files.push(("1_fake/loop.png", vec![], Discovery(SkipReason::Unreadable)));
    files.push((
        "1_fake/back_to_root",
        vec![],
        Discovery(SkipReason::Unreadable),
    ));
    // Unreadable by permission (root reads it anyway, so the expectation is measured).
    let locked = tree.write("1_fake/locked.png", &good(20, 20));
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
    let locked_fate = if std::fs::read(&locked).is_ok() {
        Used
    } else {
        Load(SkipReason::Unreadable)
    };
    files.push(("1_fake/locked.png", vec![], locked_fate));

    let found = discover(tree.root(), None).unwrap();
    let skips = Arc::new(SkipLog::new());
    skips.extend(found.skipped.clone());
    let transform = Transform::Train(TrainTransform {
        load_size: None,
        crop_size: 16,
        ..TrainTransform::default()
    });
    let opts = LoaderOptions {
        batch_size: 4,
        workers: 3,
        ..LoaderOptions::default()
    };
    let samples = Arc::new(found.samples.clone());
    let loaded: Vec<PathBuf> = batches(samples.clone(), transform, opts, 0, skips.clone())
        .unwrap()
        .flat_map(|b| {
            b.indices
                .into_iter()
                .map(|i| samples[i].path.clone())
                .collect::<Vec<_>>()
        })
        .collect();
    let upscaled = skips.summary().upscaled;
    let logged: Vec<Skip> = skips.skips();
    let in_discovery = |p: &Path| found.skipped.iter().find(|s| s.path == p).map(|s| s.reason);
    let in_log = |p: &Path| logged.iter().find(|s| s.path == p).map(|s| s.reason);
    for (rel, _, fate) in &files {
        let p = tree.root().join(rel);
        let is_sample = found.samples.iter().any(|s| s.path == p);
        match *fate {
            Used | UsedUpscaled => {
                assert!(
                    is_sample && loaded.contains(&p),
                    "{rel} should be used; log: {:?}",
                    logged.iter().find(|s| s.path == p)
                );
            }
            Discovery(reason) => {
                assert!(!is_sample, "{rel} should not be a sample");
                assert_eq!(in_discovery(&p), Some(reason), "{rel}");
            }
            Load(reason) => {
                assert!(
                    is_sample && !loaded.contains(&p),
                    "{rel} should be a sample that is skipped"
                );
                assert_eq!(in_log(&p), Some(reason), "{rel}");
            }
        }
    }
    assert_eq!(
        upscaled,
        files.iter().filter(|f| f.2 == UsedUpscaled).count()
    );
    let used = files
        .iter()
        .filter(|f| matches!(f.2, Used | UsedUpscaled))
        .count();
    assert_eq!(loaded.len(), used, "every readable image is used once");
    assert_eq!(
        logged.len(),
        files.len() - used,
        "every other file is logged: {logged:#?}"
    );
}

/// A CMYK JPEG as Photoshop and PIL write it (Adobe, inverted samples).
fn tj_cmyk(cmyk: &[u8], w: usize, h: usize) -> Vec<u8> {
    let inverted: Vec<u8> = cmyk.iter().map(|v| 255 - v).collect();
    let mut c = turbojpeg::Compressor::new().unwrap();
    c.set_colorspace(turbojpeg::Colorspace::CMYK).unwrap();
    c.set_subsamp(turbojpeg::Subsamp::None).unwrap();
    let image = turbojpeg::Image {
        pixels: &inverted[..],
        width: w,
        pitch: w * 4,
        height: h,
        format: turbojpeg::PixelFormat::CMYK,
    };
    c.compress_to_vec(image).unwrap()
}
