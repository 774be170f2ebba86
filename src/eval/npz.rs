//! A small NPZ writer (`numpy.load` reads it) and reader (for `npr report`): a zip of
//! `.npy` arrays, version 1.0 headers, little-endian, C order.
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

impl NpyArray {
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The values as f64, from any numeric dtype this module writes.
    pub fn to_f64(&self) -> Result<Vec<f64>> {
        let d = &self.data;
        Ok(match self.descr.as_str() {
            "<f4" => d
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")) as f64)
                .collect(),
            "<f8" => d
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")))
                .collect(),
            "<i8" => d
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")) as f64)
                .collect(),
            "|u1" => d.iter().map(|&b| b as f64).collect(),
            other => anyhow::bail!("dtype {other} is not numeric"),
        })
    }

    /// The values of a `<U{n}` array.
    pub fn to_strings(&self) -> Result<Vec<String>> {
        let width: usize = self
            .descr
            .strip_prefix("<U")
            .and_then(|w| w.parse().ok())
            .with_context(|| format!("dtype {} is not a string array", self.descr))?;
        Ok(self
            .data
            .chunks_exact(width * 4)
            .map(|item| {
                item.chunks_exact(4)
                    .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")))
                    .take_while(|&c| c != 0)
                    .filter_map(char::from_u32)
                    .collect()
            })
            .collect())
    }

    /// Parses `.npy` bytes in the form [`Self::to_npy`] writes.
    fn from_npy(bytes: &[u8]) -> Result<Self> {
        anyhow::ensure!(
            bytes.len() >= 10 && bytes.starts_with(b"\x93NUMPY"),
            "not a .npy array"
        );
        let len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        let header = std::str::from_utf8(bytes.get(10..10 + len).context("truncated header")?)?;
        let field = |key: &str| -> Result<&str> {
            let start = header
                .find(key)
                .with_context(|| format!("no {key} in the header"))?
                + key.len();
            Ok(header[start..].trim_start_matches([':', ' ', '\'']))
        };
        let descr: String = field("'descr'")?
            .chars()
            .take_while(|&c| c != '\'')
            .collect();
        anyhow::ensure!(
            field("'fortran_order'")?.starts_with("False"),
            "Fortran order is not supported"
        );
        let shape_text = field("'shape'")?;
        let shape: Vec<usize> = shape_text[1..shape_text.find(')').context("bad shape")?]
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().parse())
            .collect::<Result<_, _>>()?;
        Ok(NpyArray {
            descr,
            shape,
            data: bytes[10 + len..].to_vec(),
        })
    }
}

/// Reads every array of an NPZ written by [`write_npz`], by name (without `.npy`).
pub fn read_npz(path: &Path) -> Result<std::collections::BTreeMap<String, NpyArray>> {
    use std::io::Read;
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut zip =
        zip::ZipArchive::new(file).with_context(|| format!("reading {}", path.display()))?;
    let mut arrays = std::collections::BTreeMap::new();
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i)?;
        let name = entry.name().trim_end_matches(".npy").to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes)?;
        let array =
            NpyArray::from_npy(&bytes).with_context(|| format!("{name} in {}", path.display()))?;
        arrays.insert(name, array);
    }
    Ok(arrays)
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

    #[test]
    fn what_is_written_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npz");
        write_npz(
            &path,
            &[
                ("w", NpyArray::f32(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.5])),
                ("g", NpyArray::i64(&[3, -1])),
                ("l", NpyArray::u8(&[0, 1])),
                ("s", NpyArray::f64(&[1], &[0.25])),
                ("n", NpyArray::strings(&["nearest_x2", "é"])),
            ],
        )
        .unwrap();
        let a = read_npz(&path).unwrap();
        assert_eq!(a["w"].shape(), &[2, 3]);
        assert_eq!(a["w"].to_f64().unwrap(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.5]);
        assert_eq!(a["g"].to_f64().unwrap(), vec![3.0, -1.0]);
        assert_eq!(a["l"].to_f64().unwrap(), vec![0.0, 1.0]);
        assert_eq!(a["s"].to_f64().unwrap(), vec![0.25]);
        assert_eq!(a["n"].to_strings().unwrap(), vec!["nearest_x2", "é"]);
        assert!(a["n"].to_f64().is_err());
    }
}
