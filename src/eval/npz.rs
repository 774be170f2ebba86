//! NPZ files through `npyz`: a typed array for the few dtypes the tool writes (`numpy.load`
//! reads them) and a reader for `npr report` that checks each array against its header, so
//! a damaged file is an error naming the file and the array, never a panic.
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use npyz::npz::{NpzArchive, NpzWriter};
use npyz::zip::{write::FileOptions, CompressionMethod, DateTime};
use npyz::{AutoSerialize, DType, NpyFile, NpyHeader, Order, WriterBuilder};

/// One C-order array: its shape and values.
pub struct NpyArray {
    shape: Vec<usize>,
    values: Values,
}

enum Values {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    U8(Vec<u8>),
    /// numpy's fixed-width UTF-32 `<U{width}`: generator names, paths.
    Str(Vec<String>),
}

impl NpyArray {
    pub fn f32(shape: &[usize], values: &[f32]) -> Self {
        Self::new(shape, Values::F32(values.to_vec()))
    }

    pub fn f64(shape: &[usize], values: &[f64]) -> Self {
        Self::new(shape, Values::F64(values.to_vec()))
    }

    pub fn i64(values: &[i64]) -> Self {
        Self::new(&[values.len()], Values::I64(values.to_vec()))
    }

    pub fn u8(values: &[u8]) -> Self {
        Self::new(&[values.len()], Values::U8(values.to_vec()))
    }

    /// A 1-D array of strings, `<U{longest}` (at least 1, as numpy makes it).
    pub fn strings<S: AsRef<str>>(values: &[S]) -> Self {
        let values: Vec<String> = values.iter().map(|s| s.as_ref().into()).collect();
        Self::new(&[values.len()], Values::Str(values))
    }

    fn new(shape: &[usize], values: Values) -> Self {
        NpyArray {
            shape: shape.to_vec(),
            values,
        }
    }

    /// Writes this array as the `.npy` entry `name` of `npz`.
    fn write(&self, npz: &mut NpzWriter<Cursor<Vec<u8>>>, name: &str) -> std::io::Result<()> {
        let shape: Vec<u64> = self.shape.iter().map(|&d| d as u64).collect();
        match &self.values {
            Values::F32(v) => entry(npz, name, f32::default_dtype(), &shape, v),
            Values::F64(v) => entry(npz, name, f64::default_dtype(), &shape, v),
            Values::I64(v) => entry(npz, name, i64::default_dtype(), &shape, v),
            Values::U8(v) => entry(npz, name, u8::default_dtype(), &shape, v),
            Values::Str(v) => {
                let width = v.iter().map(|s| s.chars().count()).max().unwrap_or(0);
                let dtype = format!("<U{}", width.max(1))
                    .parse()
                    .expect("a type string");
                let strs = v.iter().map(String::as_str);
                entry::<str>(npz, name, DType::Plain(dtype), &shape, strs)
            }
        }
    }
}

/// One `.npy` entry: stored, dated 1980 (zip's zero), so the same arrays give the same bytes.
fn entry<'a, T: npyz::Serialize + ?Sized + 'a>(
    npz: &mut NpzWriter<Cursor<Vec<u8>>>,
    name: &str,
    dtype: DType,
    shape: &[u64],
    values: impl IntoIterator<Item = &'a T>,
) -> std::io::Result<()> {
    let options = FileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .last_modified_time(DateTime::default())
        .large_file(true);
    let mut w = npz
        .array::<T>(name, options)?
        .dtype(dtype)
        .shape(shape)
        .begin_nd()?;
    values.into_iter().try_for_each(|v| w.push(v))?;
    w.finish()
}

/// Writes `arrays` as `path` (an uncompressed NPZ), via a temporary file and a rename.
///
/// The zip is assembled in memory (writing to a `Vec` cannot fail, so the zip writer never
/// fails in its destructor) and written atomically: on a full disk no `.tmp` is left.
pub fn write_npz(path: &Path, arrays: &[(&str, NpyArray)]) -> Result<()> {
    let mut npz = NpzWriter::new(Cursor::new(Vec::new()));
    for (name, array) in arrays {
        array
            .write(&mut npz, name)
            .with_context(|| format!("assembling {name}.npy of {}", path.display()))?;
    }
    let bytes = npz
        .zip_writer()
        .finish()
        .with_context(|| format!("assembling {}", path.display()))?
        .into_inner();
    crate::atomic::write(path, &bytes)
}

/// An NPZ open for reading, array by array.
pub struct Npz {
    path: PathBuf,
    archive: NpzArchive<std::io::BufReader<std::fs::File>>,
}

impl Npz {
    pub fn open(path: &Path) -> Result<Self> {
        let archive =
            NpzArchive::open(path).with_context(|| format!("reading {}", path.display()))?;
        let path = path.to_path_buf();
        Ok(Npz { path, archive })
    }

    pub fn has(&self, name: &str) -> bool {
        self.archive.array_names().any(|n| n == name)
    }

    /// A numeric array as f64: its shape and values. Errors name the file and the array.
    pub fn numbers(&mut self, name: &str) -> Result<(Vec<usize>, Vec<f64>)> {
        self.in_context(name, |a| {
            let v = match a.values {
                Values::F32(v) => v.into_iter().map(f64::from).collect(),
                Values::F64(v) => v,
                Values::I64(v) => v.into_iter().map(|x| x as f64).collect(),
                Values::U8(v) => v.into_iter().map(f64::from).collect(),
                Values::Str(_) => bail!("a string array is not numeric"),
            };
            Ok((a.shape, v))
        })
    }

    /// A string array's values.
    pub fn strings(&mut self, name: &str) -> Result<Vec<String>> {
        self.in_context(name, |a| match a.values {
            Values::Str(v) => Ok(v),
            _ => bail!("a numeric array holds no strings"),
        })
    }

    fn in_context<T>(&mut self, name: &str, f: impl FnOnce(NpyArray) -> Result<T>) -> Result<T> {
        let path = self.path.clone();
        ensure!(self.has(name), "{}: no array {name:?}", path.display());
        self.read(name)
            .and_then(f)
            .with_context(|| format!("{}: array {name:?}", path.display()))
    }

    fn read(&mut self, name: &str) -> Result<NpyArray> {
        let mut bytes = Vec::new();
        self.archive
            .zip_archive()
            .by_name(&npyz::npz::file_name_from_array_name(name))?
            .read_to_end(&mut bytes)?;
        let mut data = bytes.as_slice();
        let header = NpyHeader::from_reader(&mut data)?;
        ensure!(header.order() == Order::C, "Fortran order is not supported");
        let descr = match header.dtype() {
            DType::Plain(t) => t.to_string(),
            other => bail!("dtype {} is not supported", other.descr()),
        };
        let item = header.dtype().num_bytes().context("dtype too large")?;
        ensure!(item > 0, "dtype {descr} has zero-size items");
        let shape: Vec<usize> = header
            .shape()
            .iter()
            .map(|&d| usize::try_from(d))
            .collect::<Result<_, _>>()?;
        let want = shape
            .iter()
            .try_fold(item, |n, &d| n.checked_mul(d))
            .context("shape too large")?;
        ensure!(
            data.len() == want,
            "{} bytes of data, shape {shape:?} of {descr} needs {want}",
            data.len()
        );
        let file = NpyFile::with_header(header, data);
        let values = match descr.as_str() {
            "<f4" => Values::F32(file.into_vec()?),
            "<f8" => Values::F64(file.into_vec()?),
            "<i8" => Values::I64(file.into_vec()?),
            "|u1" => Values::U8(file.into_vec()?),
            s if s.starts_with("<U") => Values::Str(file.into_vec()?),
            other => bail!("dtype {other} is not supported"),
        };
        Ok(NpyArray { shape, values })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

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
                ("n", NpyArray::strings(&["nearest_x2", "é", ""])),
                ("e", NpyArray::strings::<&str>(&[])),
            ],
        )
        .unwrap();
        let mut a = Npz::open(&path).unwrap();
        let w = (vec![2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.5]);
        assert_eq!(a.numbers("w").unwrap(), w);
        assert_eq!(a.numbers("g").unwrap(), (vec![2], vec![3.0, -1.0]));
        assert_eq!(a.numbers("l").unwrap(), (vec![2], vec![0.0, 1.0]));
        assert_eq!(a.numbers("s").unwrap(), (vec![1], vec![0.25]));
        assert_eq!(a.strings("n").unwrap(), vec!["nearest_x2", "é", ""]);
        assert!(a.strings("e").unwrap().is_empty());
        let err = a.numbers("n").unwrap_err();
        assert!(format!("{err:#}").contains("not numeric"), "{err:#}");
        // The same arrays give the same bytes (no timestamps).
        let again = dir.path().join("b.npz");
        write_npz(&again, &[("g", NpyArray::i64(&[3, -1]))]).unwrap();
        let first = std::fs::read(&again).unwrap();
        write_npz(&again, &[("g", NpyArray::i64(&[3, -1]))]).unwrap();
        assert_eq!(std::fs::read(&again).unwrap(), first);
    }

    #[test]
    fn a_shape_that_does_not_match_the_values_is_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npz");
        let err = write_npz(&path, &[("w", NpyArray::f32(&[2, 3], &[1.0]))]).unwrap_err();
        assert!(format!("{err:#}").contains("w.npy"), "{err:#}");
        assert!(!path.exists());
    }

    /// An `.npy` entry as numpy lays it out: magic, version 1.0, header, data.
    fn npy(descr: &str, fortran: bool, shape: &str, data: &[u8]) -> Vec<u8> {
        let order = if fortran { "True" } else { "False" };
        let descr = match descr.starts_with('[') {
            true => descr.to_string(),
            false => format!("'{descr}'"),
        };
        let header =
            format!("{{'descr': {descr}, 'fortran_order': {order}, 'shape': {shape}, }}\n");
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn malformed_arrays_are_errors_naming_file_and_array() {
        let f4 = |n: usize| vec![0u8; 4 * n];
        let cases: [(&str, Vec<u8>, &str); 9] = [
            (
                "truncated data",
                npy("<f4", false, "(3,)", &f4(2)),
                "8 bytes of data",
            ),
            (
                "trailing data",
                npy("<f4", false, "(3,)", &f4(4)),
                "16 bytes of data",
            ),
            (
                "shape of another size",
                npy("<f4", false, "(2, 3)", &f4(3)),
                "needs 24",
            ),
            (
                "zero-width strings",
                npy("<U0", false, "(1000000000,)", &[]),
                "zero-size",
            ),
            (
                "fortran order",
                npy("<f4", true, "(1, 2)", &f4(2)),
                "Fortran",
            ),
            (
                "unsupported dtype",
                npy("<i4", false, "(1,)", &f4(1)),
                "<i4",
            ),
            (
                "structured dtype",
                npy("[('a', '<f4')]", false, "(1,)", &f4(1)),
                "not supported",
            ),
            ("bad header", npy("<f4", false, "(3", &f4(3)), "x.npy"),
            ("not an npy", b"hello".to_vec(), "x.npy"),
        ];
        let dir = tempfile::tempdir().unwrap();
        for (case, bytes, want) in cases {
            let path = dir.path().join("m.npz");
            let mut zip = npyz::zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
            zip.start_file("x.npy", FileOptions::default()).unwrap();
            zip.write_all(&bytes).unwrap();
            zip.finish().unwrap();
            let mut npz = Npz::open(&path).unwrap();
            let err = format!("{:#}", npz.numbers("x").unwrap_err());
            assert!(
                err.contains("m.npz") && err.contains("\"x\""),
                "{case}: {err}"
            );
            let want = if want == "x.npy" { "\"x\"" } else { want };
            assert!(err.contains(want), "{case}: {err}");
        }
        let mut npz = Npz::open(&dir.path().join("m.npz")).unwrap();
        let err = format!("{:#}", npz.strings("y").unwrap_err());
        assert!(
            err.contains("m.npz") && err.contains("no array \"y\""),
            "{err}"
        );
        std::fs::write(dir.path().join("z.npz"), b"not a zip").unwrap();
        let err = format!("{:#}", Npz::open(&dir.path().join("z.npz")).err().unwrap());
        assert!(err.contains("z.npz"), "{err}");
    }
}
