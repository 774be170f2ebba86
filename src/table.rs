//! CSV tables through the `csv` crate: one serde row type per file, its columns declared
//! once in that type (ARCHITECTURE.md, Outputs). Quoting follows RFC 4180 (a field is
//! quoted only when it holds a comma, quote or line break), so paths with any of those
//! round-trip.
//!
//! Numbers keep the format the files have always had: [`Plain`] is Rust's shortest
//! round-trip `Display` (`1`, `0.8125`), [`Fixed`] a fixed number of decimals, and
//! [`OrNa`] writes `n/a` for an undefined metric. Files with per-scale columns
//! (`train_log.csv`, `scale_selection.csv`) write their header with [`write_with_header`]:
//! the row type ends in a list, one field per scale.
use std::fmt;
use std::path::Path;

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Writes `rows` with the header from the row type's field names, atomically.
pub fn write<T: Serialize>(path: &Path, rows: impl IntoIterator<Item = T>) -> Result<()> {
    let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
    for row in rows {
        w.serialize(row)
            .with_context(|| format!("formatting a row of {}", path.display()))?;
    }
    // The header comes with the first row: a table without rows is an empty file.
    finish(path, w)
}

/// Writes `header`, then `rows` (whose trailing list fields fill the per-scale columns).
pub fn write_with_header<T: Serialize>(
    path: &Path,
    header: &[String],
    rows: impl IntoIterator<Item = T>,
) -> Result<()> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    w.write_record(header)?;
    for row in rows {
        w.serialize(row)
            .with_context(|| format!("formatting a row of {}", path.display()))?;
    }
    finish(path, w)
}

/// One row, formatted as the line it is in the file (for files appended row by row).
pub fn line<T: Serialize>(row: &T) -> Result<String> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    w.serialize(row)?;
    Ok(String::from_utf8(w.into_inner()?)?)
}

fn finish(path: &Path, w: csv::Writer<Vec<u8>>) -> Result<()> {
    let bytes = w
        .into_inner()
        .with_context(|| format!("formatting {}", path.display()))?;
    crate::atomic::write(path, &bytes)
}

/// The rows of a CSV file, matched to `T`'s fields by column name (extra columns are
/// ignored). A malformed file is refused with its name and the line at fault.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let mut r = csv::ReaderBuilder::new()
        .from_path(path)
        .with_context(|| format!("reading {}", path.display()))?;
    r.headers()
        .with_context(|| format!("reading the header of {}", path.display()))?;
    r.deserialize()
        .map(|row| {
            row.map_err(|e| {
                let line = e.position().map(|p| p.line()).unwrap_or_default();
                anyhow::anyhow!("{} line {line}: {}", path.display(), describe(&e))
            })
        })
        .collect()
}

/// The csv error without its own position prefix (the caller names file and line).
fn describe(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Deserialize { err, .. } => match err.field() {
            Some(i) => format!("column {}: {}", i + 1, err.kind()),
            None => err.kind().to_string(),
        },
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("{len} fields where the header has {expected_len}"),
        other => format!("{other:?}"),
    }
}

/// A float as Rust's `Display` writes it: the shortest text that reads back to it.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct Plain(pub f64);

impl Serialize for Plain {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// A float with `N` decimals (`Fixed::<8>`: scores, where the last digits are noise).
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct Fixed<const N: usize>(pub f64);

impl<const N: usize> Serialize for Fixed<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{:.*}", N, self.0))
    }
}

/// A metric that may be undefined (one class absent): `n/a` in the file. Reading also
/// takes an empty field and `NaN` as undefined.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrNa(pub Option<f64>);

/// How an undefined metric is written.
pub const NA: &str = "n/a";

impl Serialize for OrNa {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(v) => s.collect_str(&v),
            None => s.serialize_str(NA),
        }
    }
}

impl<'de> Deserialize<'de> for OrNa {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<OrNa, D::Error> {
        let text = String::deserialize(d)?;
        match text.as_str() {
            "" | NA | "NaN" | "nan" => Ok(OrNa(None)),
            v => v
                .parse()
                .map(|v| OrNa(Some(v)))
                .map_err(|_| serde::de::Error::custom(format!("{v:?} is not a number or {NA}"))),
        }
    }
}

impl fmt::Display for OrNa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(v) => write!(f, "{v}"),
            None => f.write_str(NA),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Row {
        path: String,
        score: Fixed<3>,
        auc: OrNa,
        x: Plain,
    }

    fn row(path: &str) -> Row {
        Row {
            path: path.into(),
            score: Fixed(0.5),
            auc: OrNa(None),
            x: Plain(1.0),
        }
    }

    #[test]
    fn paths_with_commas_quotes_newlines_and_unicode_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.csv");
        let paths = [
            "a.png",
            "a,b.png",
            "say \"x\".png",
            "two\nlines.png",
            "cr\r.png",
            "ünï 画像.png",
            "",
        ];
        write(&file, paths.iter().map(|p| row(p))).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("path,score,auc,x\na.png,0.500,n/a,1\n\"a,b.png\""),
            "{text}"
        );
        let back: Vec<Row> = read(&file).unwrap();
        assert_eq!(back, paths.iter().map(|p| row(p)).collect::<Vec<_>>());
    }

    #[test]
    fn malformed_files_name_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.csv");
        for (text, want) in [
            (
                "path,score,auc,x\na,0.5,n/a,1\nb,zero,n/a,1\n",
                "line 3: column 2",
            ),
            (
                "path,score,auc,x\na,0.5,n/a\n",
                "line 2: 3 fields where the header has 4",
            ),
            (
                "path,score,auc,x\na,0.5,high,1\n",
                "\"high\" is not a number",
            ),
            ("path,score\na,0.5\n", "line 2: missing field `auc`"),
        ] {
            std::fs::write(&file, text).unwrap();
            let err = format!("{:#}", read::<Row>(&file).unwrap_err());
            assert!(
                err.contains("bad.csv") && err.contains(want),
                "{text:?}: {err}"
            );
        }
    }

    #[test]
    fn numbers_keep_their_formats() {
        for (value, plain, fixed) in [
            (1.0, "1", "1.000"),
            (1e-7, "0.0000001", "0.000"),
            (0.8125, "0.8125", "0.812"),
        ] {
            assert_eq!(
                line(&(Plain(value), Fixed::<3>(value))).unwrap(),
                format!("{plain},{fixed}\n")
            );
        }
        assert_eq!(line(&(OrNa(None), OrNa(Some(2.5)))).unwrap(), "n/a,2.5\n");
    }

    #[test]
    fn a_trailing_list_fills_the_per_scale_columns() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w.csv");
        let header = ["kind".to_string(), "w_0.5".into(), "w_1".into()];
        write_with_header(&file, &header, [("epoch", vec![Plain(0.25), Plain(0.75)])]).unwrap();
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "kind,w_0.5,w_1\nepoch,0.25,0.75\n"
        );
    }
}
