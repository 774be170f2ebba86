//! Progress of the check's long passes (examining every file, hashing): silent for the
//! first seconds, so small data sets print nothing; then a bar on a terminal, or one
//! plain line every few seconds where stderr is a log (CI, Slurm), as the trainer does.
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long a pass runs before it shows progress.
const QUIET_FOR: Duration = Duration::from_secs(3);
/// Time between two plain lines.
const LINE_EVERY: Duration = Duration::from_secs(10);

pub struct Progress {
    /// What is counted, e.g. "files hashed".
    what: &'static str,
    total: u64,
    started: Instant,
    /// On a terminal: a bar that counts from the start (so its ETA does), drawn once the
    /// pass has taken [`QUIET_FOR`]. None elsewhere: then plain lines.
    bar: Option<ProgressBar>,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    done: u64,
    bytes: u64,
    shown: bool,
    last_line: Option<Instant>,
}

impl Progress {
    pub fn new(what: &'static str, total: u64) -> Progress {
        let terminal = !ProgressDrawTarget::stderr().is_hidden();
        let template =
            format!("split check [{{bar:30}}] {{pos}}/{{len}} {what} {{msg}} ETA {{eta}}");
        let style = ProgressStyle::with_template(&template).expect("a valid template");
        let bar = terminal.then(|| {
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden())
                .with_style(style.progress_chars("=> "))
        });
        Progress {
            what,
            total,
            started: Instant::now(),
            bar,
            state: Mutex::default(),
        }
    }

    /// `files` more done, `bytes` more read.
    pub fn add(&self, files: u64, bytes: u64) {
        let Ok(mut guard) = self.state.lock() else {
            return;
        };
        let s = &mut *guard;
        s.done += files;
        s.bytes += bytes;
        if let Some(bar) = &self.bar {
            bar.set_position(s.done);
        }
        let elapsed = self.started.elapsed();
        if elapsed < QUIET_FOR {
            return;
        }
        match &self.bar {
            Some(bar) => {
                if !s.shown {
                    s.shown = true;
                    bar.set_draw_target(ProgressDrawTarget::stderr());
                }
                bar.set_message(megabytes(s.bytes));
            }
            None if s.last_line.is_none_or(|t| t.elapsed() >= LINE_EVERY) => {
                s.last_line = Some(Instant::now());
                eprintln!("{}", line(self.what, s.done, self.total, s.bytes, elapsed));
            }
            None => {}
        }
    }

    /// Clears the bar; a log that got progress lines gets the last one too.
    pub fn finish(self) {
        let s = self.state.into_inner().unwrap_or_else(|e| e.into_inner());
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        } else if s.last_line.is_some() {
            let elapsed = self.started.elapsed();
            eprintln!("{}", line(self.what, s.done, self.total, s.bytes, elapsed));
        }
    }
}

/// `split check: 12000/50000 files hashed (24 %), 1.2 GB read, 9 s, ETA 29 s`.
fn line(what: &str, done: u64, total: u64, bytes: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64();
    let share = 100.0 * done as f64 / total.max(1) as f64;
    let read = match bytes {
        0 => String::new(),
        b => format!(", {} read", megabytes(b)),
    };
    let eta = match done {
        0 => String::new(),
        d => format!(
            ", ETA {:.0} s",
            secs * (total.saturating_sub(d)) as f64 / d as f64
        ),
    };
    format!("split check: {done}/{total} {what} ({share:.0} %){read}, {secs:.0} s{eta}")
}

/// Bytes in MB or GB, one decimal.
pub fn megabytes(bytes: u64) -> String {
    let mb = bytes as f64 / 1e6;
    if mb >= 1000.0 {
        format!("{:.1} GB", mb / 1000.0)
    } else {
        format!("{mb:.1} MB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_line_says_how_far_and_how_long() {
        let ten = Duration::from_secs(10);
        assert_eq!(
            line("files hashed", 12_000, 48_000, 1_234_000_000, ten),
            "split check: 12000/48000 files hashed (25 %), 1.2 GB read, 10 s, ETA 30 s"
        );
        assert_eq!(
            line("files examined", 0, 10, 0, ten),
            "split check: 0/10 files examined (0 %), 10 s"
        );
        assert_eq!(megabytes(2_500_000), "2.5 MB");
    }
}
