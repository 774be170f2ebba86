//! A small NPZ writer (`numpy.load` reads it): a zip of `.npy` arrays, version 1.0 headers.
//!
//! tch's `write_npz` handles numeric tensors only; the attention-weights file also needs
//! string arrays (generator names, paths), stored here as numpy's fixed-width UTF-32 `<U`.
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// One array: dtype descriptor, shape and little-endian bytes.
pub struct NpyArray {
    descr: String,
    shape: Vec<usize>,
    data: Vec<u8>,
}

impl NpyArray {
    pub fn f32(shape: &[usize], values: &[f32]) -> Self {
        assert_eq!(
            shape.iter().product::<usize>(),
            values.len(),
            "shape does not match the data"
        );
        NpyArray {
            descr: "<f4".into(),
            shape: shape.to_vec(),
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    pub fn f64(shape: &[usize], values: &[f64]) -> Self {
        assert_eq!(
            shape.iter().product::<usize>(),
            values.len(),
            "shape does not match the data"
        );
        NpyArray {
            descr: "<f8".into(),
            shape: shape.to_vec(),
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    pub fn i64(values: &[i64]) -> Self {
        NpyArray {
            descr: "<i8".into(),
            shape: vec![values.len()],
            data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        }
    }

    pub fn u8(values: &[u8]) -> Self {
        NpyArray {
            descr: "|u1".into(),
            shape: vec![values.len()],
            data: values.to_vec(),
        }
    }

    /// A 1-D array of strings as numpy's `<U{max_len}` (UTF-32LE, zero-padded).
    pub fn strings<S: AsRef<str>>(values: &[S]) -> Self {
        let width = values
            .iter()
            .map(|s| s.as_ref().chars().count())
            .max()
            .unwrap_or(0)
            .max(1);
        let mut data = Vec::with_capacity(values.len() * width * 4);
        for s in values {
            let mut n = 0;
            for c in s.as_ref().chars() {
                data.extend_from_slice(&(c as u32).to_le_bytes());
                n += 1;
            }
            data.resize(data.len() + (width - n) * 4, 0);
        }
        NpyArray {
            descr: format!("<U{width}"),
            shape: vec![values.len()],
            data,
        }
    }

    /// The `.npy` bytes: magic, version 1.0, header padded to a multiple of 64, data.
    pub fn to_npy(&self) -> Vec<u8> {
        let shape = match self.shape.len() {
            1 => format!("({},)", self.shape[0]),
            _ => format!(
                "({})",
                self.shape
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let mut header = format!(
            "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
            self.descr
        );
        let unpadded = 10 + header.len() + 1;
        header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
        header.push('\n');
        let mut out = Vec::with_capacity(10 + header.len() + self.data.len());
        out.extend_from_slice(b"\x93NUMPY\x01\x00");
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(&self.data);
        out
    }
}

/// Writes `arrays` as `path` (an uncompressed NPZ), via a temporary file and a rename.
///
/// The zip is assembled in memory (writing to a `Vec` cannot fail, so the zip writer never
/// fails in its destructor) and written atomically: on a full disk no `.tmp` is left.
pub fn write_npz(path: &Path, arrays: &[(&str, NpyArray)]) -> Result<()> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .large_file(true);
    for (name, array) in arrays {
        zip.start_file(format!("{name}.npy"), options)
            .and_then(|()| Ok(zip.write_all(&array.to_npy())?))
            .with_context(|| format!("assembling {name}.npy of {}", path.display()))?;
    }
    let bytes = zip
        .finish()
        .with_context(|| format!("assembling {}", path.display()))?
        .into_inner();
    crate::atomic::write(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn npy_header_is_aligned_and_well_formed() {
        for a in [
            NpyArray::f32(&[2, 3], &[0.0; 6]),
            NpyArray::strings(&["progan", "é"]),
            NpyArray::u8(&[1, 0]),
        ] {
            let bytes = a.to_npy();
            let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
            assert_eq!((10 + header_len) % 64, 0);
            assert_eq!(bytes[10 + header_len - 1], b'\n');
            assert_eq!(bytes.len(), 10 + header_len + a.data.len());
        }
        let s = NpyArray::strings(&["ab", "c"]);
        assert_eq!(s.descr, "<U2");
        assert_eq!(s.data.len(), 2 * 2 * 4);
    }
}
