//! JPEG through libjpeg-turbo (TurboJPEG 3 API), bit-exact with PIL.
//!
//! Decoding: PIL's `Image.open(p).convert("RGB")` runs libjpeg with its defaults —
//! accurate integer IDCT (`JDCT_ISLOW`) and fancy (smooth) chroma upsampling — and so
//! does `tj3Decompress8` with its defaults, so the pixels are identical. Grey JPEGs are
//! replicated into RGB by libjpeg as PIL's `L → RGB` does. CMYK/YCCK JPEGs are read the
//! way PIL reads them: PIL always assumes Adobe's inverted polarity (`rawmode "CMYK;I"`)
//! and converts with `R = (255 − K) − C·(255 − K)/255` in integers (see [`cmyk_to_rgb`]).
//!
//! Parity measured against Pillow 13.0.0 (libjpeg-turbo 3.2.0; this crate vendors
//! 3.1.0): identical pixels for 4:4:4, 4:2:2, 4:2:0, progressive, optimised, odd-sized,
//! grey and CMYK JPEGs, and identical bytes when encoding at q = 10…100 (tests hold the
//! golden values).
//!
//! Truncation: PIL refuses a truncated JPEG ("image file is truncated") unless
//! `LOAD_TRUNCATED_IMAGES` is set, while libjpeg pads it with grey and warns "Premature
//! end of JPEG file"; that warning is therefore a skip. Other libjpeg warnings (extraneous
//! bytes, a bad Huffman code in the middle) are ignored by PIL, so the image is used.
//!
//! Encoding: [`encode`] gives the same bytes as PIL's `im.save(f, "JPEG", quality=q)`:
//! baseline, 4:2:0, `jpeg_set_quality(q, force_baseline=TRUE)`, accurate DCT, no
//! optimisation, JFIF 1.01 header with 1:1 density.

use std::cell::RefCell;

use image::RgbImage;
use turbojpeg::libc::c_int;
use turbojpeg::raw;

use super::decode::DecodeLimits;
use super::skip::{Rejected, SkipReason};

/// libjpeg's text for `JWRN_JPEG_EOF`, the warning that means "truncated".
const TRUNCATED_WARNING: &str = "Premature end of JPEG file";

/// A TurboJPEG decompressor handle. The safe `turbojpeg::Decompressor` does not tell a
/// warning from a fatal error, which is exactly the distinction PIL parity needs.
struct RawDecompressor(raw::tjhandle);

impl RawDecompressor {
    fn new() -> Option<Self> {
        // SAFETY: tj3Init has no preconditions; a null result is checked.
        let h = unsafe { raw::tj3Init(raw::TJINIT_TJINIT_DECOMPRESS as c_int) };
        (!h.is_null()).then_some(RawDecompressor(h))
    }

    /// What a call that returned `rc` said: `Err` with libjpeg's message when the error
    /// was fatal, else its warning, if any. Any message leaves the handle not `clean`.
    fn outcome(&self, rc: c_int, clean: &mut bool) -> Result<Option<String>, String> {
        if rc == 0 {
            return Ok(None);
        }
        *clean = false;
        // SAFETY: the handle is valid; tj3GetErrorStr returns a NUL-terminated string
        // owned by the handle, copied here before the next call.
        let (code, msg) = unsafe {
            let code = raw::tj3GetErrorCode(self.0);
            let msg = std::ffi::CStr::from_ptr(raw::tj3GetErrorStr(self.0));
            (code, msg.to_string_lossy().into_owned())
        };
        if code as u32 == raw::TJERR_TJERR_WARNING {
            Ok(Some(msg))
        } else {
            Err(msg)
        }
    }

    fn get(&self, param: raw::TJPARAM) -> i64 {
        // SAFETY: valid handle, plain integer query.
        unsafe { raw::tj3Get(self.0, param as c_int) as i64 }
    }
}

impl Drop for RawDecompressor {
    fn drop(&mut self) {
        // SAFETY: the handle came from tj3Init and is destroyed once.
        unsafe { raw::tj3Destroy(self.0) }
    }
}

thread_local! {
    static DECOMPRESSOR: RefCell<Option<RawDecompressor>> = const { RefCell::new(None) };
    static COMPRESSOR: RefCell<Option<turbojpeg::Compressor>> = const { RefCell::new(None) };
}

/// Decodes a JPEG held in memory into RGB8 exactly as PIL does.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<RgbImage, Rejected> {
    DECOMPRESSOR.with(|cell| {
        let Some(d) = cell.borrow_mut().take().or_else(RawDecompressor::new) else {
            let failed = "cannot initialise libjpeg-turbo";
            return Err(Rejected::new(SkipReason::Corrupt, failed));
        };
        let mut clean = true;
        let result = decode_with(&d, bytes, limits, &mut clean);
        // A handle that saw an error or warning may keep state from that stream (a
        // truncated file can parse as a tables-only datastream whose Huffman tables
        // then leak into the next image): only a clean handle is reused.
        if clean && result.is_ok() {
            *cell.borrow_mut() = Some(d);
        }
        result
    })
}

fn decode_with(
    d: &RawDecompressor,
    bytes: &[u8],
    limits: &DecodeLimits,
    clean: &mut bool,
) -> Result<RgbImage, Rejected> {
    let corrupt = |msg: String| Rejected::new(SkipReason::Corrupt, format!("JPEG: {msg}"));
    // SAFETY: valid handle; the buffer pointer and length describe `bytes`.
    let rc = unsafe { raw::tj3DecompressHeader(d.0, bytes.as_ptr(), bytes.len() as _) };
    d.outcome(rc, clean).map_err(corrupt)?;
    let width = d.get(raw::TJPARAM_TJPARAM_JPEGWIDTH);
    let height = d.get(raw::TJPARAM_TJPARAM_JPEGHEIGHT);
    let precision = d.get(raw::TJPARAM_TJPARAM_PRECISION);
    let colorspace = d.get(raw::TJPARAM_TJPARAM_COLORSPACE);
    if width <= 0 || height <= 0 {
        *clean = false;
        let detail = format!("no image in the datastream ({width}×{height}; truncated?)");
        return Err(corrupt(detail));
    }
    if precision != 8 {
        let detail = format!("{precision}-bit JPEG (PIL and this loader read 8-bit JPEG only)");
        return Err(Rejected::new(SkipReason::UnsupportedFormat, detail));
    }
    limits.check(width as u64, height as u64)?;
    let (w, h) = (width as usize, height as usize);
    let cmyk = colorspace == raw::TJCS_TJCS_CMYK as i64 || colorspace == raw::TJCS_TJCS_YCCK as i64;
    let (channels, format) = if cmyk {
        (4, raw::TJPF_TJPF_CMYK)
    } else {
        (3, raw::TJPF_TJPF_RGB)
    };
    let mut pixels = vec![0u8; w * h * channels];
    // SAFETY: `pixels` holds exactly pitch × height bytes for this pixel format, and the
    // handle was set up for this JPEG by tj3DecompressHeader above.
    let rc = unsafe {
        raw::tj3Decompress8(
            d.0,
            bytes.as_ptr(),
            bytes.len() as _,
            pixels.as_mut_ptr(),
            (w * channels) as c_int,
            format as c_int,
        )
    };
    let warning = d.outcome(rc, clean).map_err(corrupt)?;
    if let Some(msg) = warning.filter(|m| m.contains(TRUNCATED_WARNING)) {
        let detail = format!("truncated JPEG ({msg})");
        return Err(Rejected::new(SkipReason::Corrupt, detail));
    }
    let rgb = if cmyk { cmyk_to_rgb(&pixels) } else { pixels };
    RgbImage::from_raw(w as u32, h as u32, rgb)
        .ok_or_else(|| corrupt("decoded buffer has the wrong size".into()))
}

/// PIL's CMYK JPEG → RGB on the samples as libjpeg returns them (Adobe-inverted): PIL
/// un-inverts (`rawmode "CMYK;I"`), then `cmyk2rgb` from `Convert.c` computes
/// `nk = 255 − k; out = nk − MULDIV255(c, nk)`, `MULDIV255(a, b) = ((t >> 8) + t) >> 8`
/// with `t = a·b + 128`.
pub fn cmyk_to_rgb(stored: &[u8]) -> Vec<u8> {
    let muldiv255 = |a: u32, b: u32| {
        let t = a * b + 128;
        ((t >> 8) + t) >> 8
    };
    let mut out = Vec::with_capacity(stored.len() / 4 * 3);
    for px in stored.chunks_exact(4) {
        let nk = px[3] as u32; // 255 − k, with k = 255 − stored k
        for &c in &px[..3] {
            let c = 255 - c as u32;
            out.push(nk.saturating_sub(muldiv255(c, nk)) as u8);
        }
    }
    out
}

/// Encodes like PIL's `im.save(f, format="JPEG", quality=quality)`: see the module docs.
pub fn encode(img: &RgbImage, quality: u8) -> Result<Vec<u8>, turbojpeg::Error> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(turbojpeg::Compressor::new()?);
        }
        let c = slot.as_mut().expect("compressor was just created");
        c.set_quality(i32::from(quality))?;
        c.set_subsamp(turbojpeg::Subsamp::Sub2x2)?;
        let (w, h) = (img.width() as usize, img.height() as usize);
        c.compress_to_vec(turbojpeg::Image {
            pixels: img.as_raw().as_slice(),
            width: w,
            pitch: w * 3,
            height: h,
            format: turbojpeg::PixelFormat::RGB,
        })
    })
}

/// CNNDetection's `pil_jpg`: save at `quality`, read back. Always succeeds for a valid
/// image; an encoder failure is reported as a corrupt image rather than a panic.
pub fn reencode(img: &RgbImage, quality: u8) -> Result<RgbImage, Rejected> {
    let bytes = encode(img, quality)
        .map_err(|e| Rejected::new(SkipReason::Corrupt, format!("JPEG re-encoding failed: {e}")))?;
    decode(&bytes, &DecodeLimits::unlimited())
}
