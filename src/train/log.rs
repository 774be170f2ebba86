//! What a run reports as it goes: `train_log.csv`, one [`LogRow`] per log interval and per
//! epoch, and the console lines beside the progress bar.
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use indicatif::ProgressBar;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::trainer::ValStats;
use crate::table;

/// One row of `train_log.csv`. Step rows fill the columns up to `images_per_s`; epoch rows
/// leave that one blank and fill the validation columns, with the mean weight of every
/// branch on real and on fake validation images. `npr report` reads the file back into
/// this type (without the weights).
#[derive(Serialize, Deserialize)]
pub struct LogRow {
    /// `step` or `epoch`.
    pub kind: String,
    pub epoch: usize,
    pub step: i64,
    /// `n/a` in an epoch row when a resume on its last batch saw no training loss.
    pub loss: Num<6>,
    #[serde(serialize_with = "exponent")]
    pub lr: f64,
    pub images_per_s: Num<1>,
    pub val_loss: Num<6>,
    pub val_acc: Num<6>,
    /// `n/a` where AP is undefined (one class absent).
    pub val_ap: Num<6>,
    /// `w_real_{s}`, `w_fake_{s}` for every scale `s` (see [`header`]).
    #[serde(skip_deserializing)]
    pub weights: Vec<Num<6>>,
}

/// The columns: [`LogRow`]'s fields, the weights one column per scale and class.
fn header(scales: &[f64]) -> Vec<String> {
    let weights = scales
        .iter()
        .flat_map(|s| [format!("w_real_{s}"), format!("w_fake_{s}")]);
    let fixed = "kind,epoch,step,loss,lr,images_per_s,val_loss,val_acc,val_ap".split(',');
    fixed.map(String::from).chain(weights).collect()
}

/// The column of the optimizer step, by which a resume cuts the log.
const STEP_COLUMN: usize = 2;

/// A number as the log has always written it, with `N` decimals (`NaN` stays `NaN`); `n/a`
/// where undefined; blank in a column the row does not fill.
#[derive(Clone, Copy)]
pub enum Num<const N: usize> {
    Of(f64),
    Na,
    Blank,
}

impl<const N: usize> Num<N> {
    /// The number; None where undefined or blank.
    pub fn value(self) -> Option<f64> {
        match self {
            Num::Of(v) => Some(v),
            Num::Na | Num::Blank => None,
        }
    }
}

impl<'de, const N: usize> Deserialize<'de> for Num<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Num<N>, D::Error> {
        let text = String::deserialize(d)?;
        match text.as_str() {
            "" => Ok(Num::Blank),
            table::NA => Ok(Num::Na),
            v => v.parse().map(Num::Of).map_err(|_| {
                serde::de::Error::custom(format!("{v:?} is not a number or {}", table::NA))
            }),
        }
    }
}

impl<const N: usize> Serialize for Num<N> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Num::Of(v) => table::fixed::<N, S>(v, s),
            Num::Na => s.serialize_str(table::NA),
            Num::Blank => s.serialize_none(),
        }
    }
}

/// The learning rate as `{:e}` (`2e-4`).
fn exponent<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{v:e}"))
}

/// `train_log.csv`, appended row by row and flushed, so a killed run keeps its rows.
pub struct TrainLog {
    file: File,
    scales: usize,
}

impl TrainLog {
    /// Opens the log for appending. Rows of steps after `through_step` (the checkpoint being
    /// resumed) are removed first, since those steps run again: a resumed log never holds a
    /// step twice. A new run passes 0 and gets a fresh file with the header.
    pub fn open(path: &Path, scales: &[f64], through_step: i64) -> Result<TrainLog> {
        let old = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let text = rows_through(&old, &header(scales), through_step)
            .with_context(|| format!("reading {}", path.display()))?;
        if text != old {
            crate::atomic::write(path, text.as_bytes())?;
        }
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(TrainLog {
            file,
            scales: scales.len(),
        })
    }

    /// A step row: the mean loss and speed of the last log interval.
    pub fn step(&mut self, epoch: usize, step: i64, loss: f64, lr: f64, ips: f64) -> Result<()> {
        self.append(LogRow {
            kind: "step".into(),
            epoch,
            step,
            loss: Num::Of(loss),
            lr,
            images_per_s: Num::Of(ips),
            val_loss: Num::Blank,
            val_acc: Num::Blank,
            val_ap: Num::Blank,
            weights: vec![Num::Blank; 2 * self.scales],
        })
    }

    /// An epoch row: the epoch's mean training loss and its validation figures.
    pub fn epoch(
        &mut self,
        (epoch, step): (usize, i64),
        loss: Option<f64>,
        lr: f64,
        val: &ValStats,
    ) -> Result<()> {
        let weights = val.weights_real.iter().zip(&val.weights_fake);
        self.append(LogRow {
            kind: "epoch".into(),
            epoch,
            step,
            loss: loss.map_or(Num::Na, Num::Of),
            lr,
            images_per_s: Num::Blank,
            val_loss: Num::Of(val.loss),
            val_acc: Num::Of(val.acc),
            val_ap: val.ap.map_or(Num::Na, Num::Of),
            weights: weights
                .flat_map(|(r, f)| [Num::Of(*r), Num::Of(*f)])
                .collect(),
        })
    }

    fn append(&mut self, row: LogRow) -> Result<()> {
        self.file.write_all(table::line(&row)?.as_bytes())?;
        self.file.flush()?;
        Ok(())
    }
}

/// `header`, then the rows of `old` whose step is at most `through_step`; a row whose step
/// cannot be read (one torn by a kill) goes too.
fn rows_through(old: &str, header: &[String], through_step: i64) -> Result<String> {
    let mut rows = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(old.as_bytes());
    let mut kept = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    kept.write_record(header)?;
    for row in rows.records() {
        let row = row?;
        let step = row.get(STEP_COLUMN).and_then(|v| v.parse::<i64>().ok());
        if step.is_some_and(|s| s <= through_step) {
            kept.write_record(&row)?;
        }
    }
    Ok(String::from_utf8(kept.into_inner()?)?)
}

/// A bar on a terminal (hidden otherwise: then [`crate::progress::say`] prints plain lines).
pub fn progress_bar(total: u64, position: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(crate::progress::bar_style("steps"));
    bar.set_position(position);
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bytes the hand-joined rows of the old `CsvLog` wrote for these rows.
    const FOUR_ROWS: &str = "\
kind,epoch,step,loss,lr,images_per_s,val_loss,val_acc,val_ap,w_real_0.5,w_fake_0.5,w_real_1,w_fake_1
step,1,2,0.693147,2e-4,123.5,,,,,,,
epoch,1,3,n/a,2e-4,,0.550000,NaN,n/a,0.500000,0.250000,0.333333,0.666667
step,2,4,0.500000,1.8e-4,100.0,,,,,,,
epoch,2,5,0.450000,1.8e-4,,0.400000,0.875000,0.900000,0.100000,0.200000,0.300000,0.400000
";

    fn val(loss: f64, acc: f64, ap: Option<f64>, real: [f64; 2], fake: [f64; 2]) -> ValStats {
        ValStats {
            loss,
            acc,
            ap,
            weights_real: real.to_vec(),
            weights_fake: fake.to_vec(),
        }
    }

    #[test]
    fn rows_keep_the_old_bytes_and_a_resume_cuts_later_steps() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("train_log.csv");
        let scales = [0.5, 1.0];
        let mut log = TrainLog::open(&path, &scales, 0).unwrap();
        log.step(1, 2, std::f64::consts::LN_2, 2e-4, 123.456)
            .unwrap();
        let first = val(0.55, f64::NAN, None, [0.5, 1.0 / 3.0], [0.25, 2.0 / 3.0]);
        log.epoch((1, 3), None, 2e-4, &first).unwrap();
        log.step(2, 4, 0.5, 1.8e-4, 99.95).unwrap();
        let second = val(0.4, 0.875, Some(0.9), [0.1, 0.3], [0.2, 0.4]);
        log.epoch((2, 5), Some(0.45), 1.8e-4, &second).unwrap();
        drop(log);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), FOUR_ROWS);

        // Resuming the checkpoint of step 3 drops the rows of steps 4 and 5, which run again.
        let mut log = TrainLog::open(&path, &scales, 3).unwrap();
        let cut = FOUR_ROWS.split_inclusive('\n').take(3).collect::<String>();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), cut);
        log.step(2, 4, 0.5, 1.8e-4, 99.95).unwrap();
        let back = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            back,
            FOUR_ROWS.split_inclusive('\n').take(4).collect::<String>()
        );

        // Read back as CSV: every row has the header's columns.
        let mut reader = csv::Reader::from_path(&path).unwrap();
        assert_eq!(reader.headers().unwrap().len(), 13);
        let steps: Vec<String> = reader
            .records()
            .map(|r| r.unwrap()[STEP_COLUMN].to_string())
            .collect();
        assert_eq!(steps, ["2", "3", "4"]);
    }

    #[test]
    fn a_torn_row_is_dropped_on_resume() {
        let header = header(&[1.0]);
        let old = format!(
            "{}\nstep,1,2,0.5,1e-3,9.0,,,,,\nstep,1,\n",
            header.join(",")
        );
        let kept = rows_through(&old, &header, 10).unwrap();
        assert_eq!(kept, old.trim_end_matches("step,1,\n"));
    }
}
