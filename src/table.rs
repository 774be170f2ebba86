//! CSV tables through the `csv` crate: one serde row type per file, its columns declared
//! once in that type (ARCHITECTURE.md, Outputs). Quoting follows RFC 4180 (a field is
//! quoted only when it holds a comma, quote or line break), so paths with any of those
//! round-trip.
//!
//! Numbers keep the format the files have always had, chosen per field with
//! `serialize_with`: [`plain`] is Rust's shortest round-trip `Display` (`1`, `0.8125`),
//! [`fixed`] a fixed number of decimals, and [`or_na`] writes `n/a` for an undefined
//! metric. Files with per-scale columns (`train_log.csv`, `scale_selection.csv`) write their
//! header with [`write_with_header`]: the row type ends in a list, one field per scale.
use std::path::Path;

use anyhow::{Context, Result};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Writes `rows` with the header from the row type's field names, atomically.
pub fn write<T: Serialize>(path: &Path, rows: impl IntoIterator<Item = T>) -> Result<()> {
    // The header comes with the first row: a table without rows is an empty file.
    write_rows(path, csv::Writer::from_writer(Vec::new()), rows)
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
    write_rows(path, w, rows)
}

/// One row, formatted as the line it is in the file (for files appended row by row).
pub fn line<T: Serialize>(row: &T) -> Result<String> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    w.serialize(row)?;
    Ok(String::from_utf8(w.into_inner()?)?)
}

fn write_rows<T: Serialize>(
    path: &Path,
    mut w: csv::Writer<Vec<u8>>,
    rows: impl IntoIterator<Item = T>,
) -> Result<()> {
    for row in rows {
        w.serialize(row)
            .with_context(|| format!("formatting a row of {}", path.display()))?;
    }
    let bytes = w
        .into_inner()
        .with_context(|| format!("formatting {}", path.display()))?;
    crate::atomic::write(path, &bytes)
}

/// The rows of a CSV file, matched to `T`'s fields by column name (extra columns are
/// ignored). A malformed file is refused with its name, the line and the field at fault.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let rows = csv::Reader::from_path(path).and_then(|mut r| r.deserialize().collect());
    rows.with_context(|| format!("reading {}", path.display()))
}

/// A float as Rust's `Display` writes it (`1`, `0.0000001`): the shortest text that reads
/// back to the same value. For `#[serde(serialize_with = "table::plain")]`.
pub fn plain<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

/// [`plain`], or an empty field where the value is absent.
pub fn plain_or_empty<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(v) => s.collect_str(v),
        None => s.serialize_str(""),
    }
}

/// A float with `N` decimals (scores, where the last digits are noise).
pub fn fixed<const N: usize, S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{v:.N$}"))
}

/// `N` decimals, or an empty field where the value is absent or not finite.
pub fn fixed_or_empty<const N: usize, S: Serializer>(
    v: &Option<f64>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match v.filter(|v| v.is_finite()) {
        Some(v) => fixed::<N, S>(&v, s),
        None => s.serialize_str(""),
    }
}

/// One column per value (the trailing per-scale columns), as [`fixed_or_empty`].
pub fn fixed_columns<const N: usize, S: Serializer>(
    values: &[f64],
    s: S,
) -> Result<S::Ok, S::Error> {
    let text = |v: &f64| match v.is_finite() {
        true => format!("{v:.N$}"),
        false => String::new(),
    };
    s.collect_seq(values.iter().map(text))
}

/// How an undefined metric is written.
pub const NA: &str = "n/a";

/// A metric that may be undefined (one class absent): `n/a` in the file. Reading also
/// takes an empty field and `NaN` as undefined. For `#[serde(with = "table::or_na")]`.
pub mod or_na {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.collect_str(v),
            None => s.serialize_str(NA),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        let text = String::deserialize(d)?;
        match text.as_str() {
            "" | NA | "NaN" | "nan" => Ok(None),
            v => v
                .parse()
                .map(Some)
                .map_err(|_| serde::de::Error::custom(format!("{v:?} is not a number or {NA}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Row {
        path: String,
        #[serde(serialize_with = "fixed::<3, _>")]
        score: f64,
        #[serde(with = "or_na")]
        auc: Option<f64>,
        #[serde(serialize_with = "plain")]
        x: f64,
    }

    fn row(path: &str) -> Row {
        Row {
            path: path.into(),
            score: 0.5,
            auc: None,
            x: 1.0,
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
                "(line: 3, byte: 29): field 1",
            ),
            (
                "path,score,auc,x\na,0.5,n/a\n",
                "found record with 3 fields",
            ),
            (
                "path,score,auc,x\na,0.5,high,1\n",
                "(line: 2, byte: 17): \"high\" is not a number",
            ),
            (
                "path,score\na,0.5\n",
                "(line: 2, byte: 11): missing field `auc`",
            ),
        ] {
            std::fs::write(&file, text).unwrap();
            let err = format!("{:#}", read::<Row>(&file).unwrap_err());
            assert!(
                err.contains("bad.csv") && err.contains(want),
                "{text:?}: {err}"
            );
        }
    }

    #[derive(Serialize)]
    struct Formats {
        #[serde(serialize_with = "plain")]
        plain: f64,
        #[serde(serialize_with = "fixed::<3, _>")]
        fixed: f64,
        #[serde(serialize_with = "fixed_or_empty::<2, _>")]
        maybe: Option<f64>,
        #[serde(with = "or_na")]
        na: Option<f64>,
    }

    #[test]
    fn numbers_keep_their_formats() {
        for (v, maybe, na, want) in [
            (1.0, None, None, "1,1.000,,n/a\n"),
            (1e-7, Some(f64::NAN), Some(2.5), "0.0000001,0.000,,2.5\n"),
            (0.8125, Some(0.125), Some(1.0), "0.8125,0.812,0.12,1\n"),
        ] {
            let row = Formats {
                plain: v,
                fixed: v,
                maybe,
                na,
            };
            assert_eq!(line(&row).unwrap(), want);
        }
    }

    #[test]
    fn a_trailing_list_fills_the_per_scale_columns() {
        #[derive(Serialize)]
        struct Weights {
            kind: &'static str,
            #[serde(serialize_with = "fixed_columns::<2, _>")]
            w: Vec<f64>,
        }
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("w.csv");
        let header = ["kind".to_string(), "w_0.5".into(), "w_1".into()];
        let rows = [Weights {
            kind: "epoch",
            w: vec![0.25, f64::NAN],
        }];
        write_with_header(&file, &header, rows).unwrap();
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            "kind,w_0.5,w_1\nepoch,0.25,\n"
        );
    }
}
