//! Where a long step stands, on stderr (stdout and the output files never change): a bar on
//! a terminal, a plain line every `NPR_PROGRESS_EVERY` seconds (default 30) otherwise, so
//! CI and Slurm logs show it too; nothing for a step that ends within [`QUIET`]. The bar
//! has the trainer's layout (`src/train/trainer.rs` uses [`bar_style`] and [`say`]).
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// A step that ends within this time shows nothing: a bar that flashes or one log line
/// per short step is noise.
pub const QUIET: Duration = Duration::from_secs(3);
/// Plain lines: seconds between two lines, unless `NPR_PROGRESS_EVERY` says otherwise
/// (`0`: a line at every update, from the start).
pub const EVERY_ENV: &str = "NPR_PROGRESS_EVERY";
const DEFAULT_EVERY: Duration = Duration::from_secs(30);

/// The layout of every bar: `PREFIX [=====>    ] 120/500 UNIT MESSAGE ETA 42s`.
pub fn bar_style(unit: &str) -> ProgressStyle {
    ProgressStyle::with_template(&format!(
        "{{prefix}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{msg}} ETA {{eta}}"
    ))
    .expect("a valid template")
    .progress_chars("=> ")
}

/// A log line that does not tear the bar (a plain line when the bar is hidden).
pub fn say(bar: &ProgressBar, line: String) {
    if bar.is_hidden() {
        eprintln!("{line}");
    } else {
        bar.println(line);
    }
}

/// One long step's progress; cheap enough to advance once per file. Shareable across
/// threads (`npr synth` advances it from its worker pool).
pub struct Progress {
    label: String,
    unit: &'static str,
    total: Option<u64>,
    pos: AtomicU64,
    started: Instant,
    /// Milliseconds after `started` when the next line is due (or the bar is shown).
    next_ms: AtomicU64,
    /// Whether a line or the bar has been shown: only then does [`Progress::finish`] say
    /// how the step ended.
    shown: AtomicBool,
    mode: Mode,
}

enum Mode {
    Silent,
    /// On a terminal: an indicatif bar, hidden until [`QUIET`] has passed.
    Bar(ProgressBar),
    /// Elsewhere: a line every `every`.
    Lines {
        every: Duration,
    },
}

impl Progress {
    /// A step of `total` units (`images`, `steps`), labelled e.g. `synth [none]` (a test
    /// set at a perturbation level).
    pub fn new(label: impl Into<String>, total: u64, unit: &'static str) -> Progress {
        Progress::start(label.into(), Some(total), unit)
    }

    /// A step whose total is not known in advance (files found while walking a tree).
    pub fn counter(label: impl Into<String>, unit: &'static str) -> Progress {
        Progress::start(label.into(), None, unit)
    }

    /// Plain lines only, never a bar: for a step inside one that has its bar on screen
    /// (validation during training), which reports in logs but must not draw over it.
    pub fn lines_only(label: impl Into<String>, total: u64, unit: &'static str) -> Progress {
        let mut p = Progress::new(label, total, unit);
        if let Mode::Bar(_) = p.mode {
            p.mode = Mode::Silent;
        }
        p
    }

    fn start(label: String, total: Option<u64>, unit: &'static str) -> Progress {
        let every = every();
        let mode = match std::io::stderr().is_terminal() {
            true => Mode::Bar(hidden_bar(&label, total, unit)),
            false => Mode::Lines { every },
        };
        let first = if every.is_zero() {
            Duration::ZERO
        } else {
            QUIET
        };
        Progress {
            label,
            unit,
            total,
            pos: AtomicU64::new(0),
            started: Instant::now(),
            next_ms: AtomicU64::new(first.as_millis() as u64),
            shown: AtomicBool::new(false),
            mode,
        }
    }

    /// `n` more units done.
    pub fn inc(&self, n: u64) {
        let pos = self.pos.fetch_add(n, Ordering::Relaxed) + n;
        if let Mode::Bar(bar) = &self.mode {
            bar.set_position(pos);
        }
        if matches!(self.mode, Mode::Silent) {
            return;
        }
        let now = self.started.elapsed();
        let due = self.next_ms.load(Ordering::Relaxed);
        if (now.as_millis() as u64) < due {
            return;
        }
        // One thread wins the slot; the others carry on.
        let next = match &self.mode {
            Mode::Lines { every } => (now + *every).as_millis() as u64,
            _ => u64::MAX,
        };
        if self
            .next_ms
            .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        self.shown.store(true, Ordering::Relaxed);
        match &self.mode {
            Mode::Bar(bar) => {
                bar.set_draw_target(ProgressDrawTarget::stderr());
                // Redrawn between updates too: rate, ETA and spinner stay current.
                bar.enable_steady_tick(Duration::from_millis(500));
            }
            Mode::Lines { .. } => eprintln!("{}", self.line(pos, now)),
            Mode::Silent => {}
        }
    }

    /// A line that does not tear the bar.
    pub fn println(&self, line: String) {
        match &self.mode {
            Mode::Bar(bar) => say(bar, line),
            _ => eprintln!("{line}"),
        }
    }

    /// Ends the step; a step that showed progress says how it ended (`label: 5000 images
    /// in 52s, 96 images/s`). Dropping a `Progress` ends it without that line.
    pub fn finish(self) {
        if self.shown.load(Ordering::Relaxed) && !matches!(self.mode, Mode::Silent) {
            let (pos, elapsed) = (self.pos.load(Ordering::Relaxed), self.started.elapsed());
            self.println(finished_line(&self.label, self.unit, pos, elapsed));
        }
    }

    fn line(&self, pos: u64, elapsed: Duration) -> String {
        progress_line(&self.label, self.unit, pos, self.total, elapsed)
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Mode::Bar(bar) = &self.mode {
            bar.finish_and_clear();
        }
    }
}

/// An indicatif bar (or a spinner, without a total) that draws nothing until shown; the
/// rate sits where the trainer's bar has its message.
fn hidden_bar(label: &str, total: Option<u64>, unit: &str) -> ProgressBar {
    let template = match total {
        Some(_) => {
            format!("{{prefix}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{rate}} {unit}/s ETA {{eta}}")
        }
        None => format!("{{prefix}} {{spinner}} {{pos}} {unit} {{rate}} {unit}/s ({{elapsed}})"),
    };
    let rate = |state: &ProgressState, w: &mut dyn std::fmt::Write| {
        let _ = write!(w, "{:.0}", state.per_sec());
    };
    let style = ProgressStyle::with_template(&template)
        .expect("a valid template")
        .progress_chars("=> ")
        .with_key("rate", rate);
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::hidden());
    bar.set_style(style);
    bar.set_prefix(label.to_string());
    bar
}

/// Seconds between plain lines, from `NPR_PROGRESS_EVERY` (a bad value is named once and
/// ignored: a display setting must not stop a long run).
fn every() -> Duration {
    static EVERY: OnceLock<Duration> = OnceLock::new();
    *EVERY.get_or_init(|| match std::env::var(EVERY_ENV) {
        Err(_) => DEFAULT_EVERY,
        Ok(v) => v
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map_or_else(
                || {
                    eprintln!(
                        "warning: {EVERY_ENV}={v:?} is not a number of seconds; using {}",
                        DEFAULT_EVERY.as_secs()
                    );
                    DEFAULT_EVERY
                },
                Duration::from_secs_f64,
            ),
    })
}

/// `label: 1200/5000 images (24%), 96 images/s, ETA 40s` (without a total: `label: 1200
/// files, 96 files/s`).
fn progress_line(
    label: &str,
    unit: &str,
    pos: u64,
    total: Option<u64>,
    elapsed: Duration,
) -> String {
    let rate = pos as f64 / elapsed.as_secs_f64().max(1e-3);
    match total {
        Some(total) => {
            let pct = 100.0 * pos as f64 / total.max(1) as f64;
            let eta = match rate > 0.0 {
                true => human(Duration::from_secs_f64(
                    total.saturating_sub(pos) as f64 / rate,
                )),
                false => "unknown".into(),
            };
            format!("{label}: {pos}/{total} {unit} ({pct:.0}%), {rate:.0} {unit}/s, ETA {eta}")
        }
        None => format!("{label}: {pos} {unit}, {rate:.0} {unit}/s"),
    }
}

/// `label: 5000 images in 52s, 96 images/s`.
fn finished_line(label: &str, unit: &str, pos: u64, elapsed: Duration) -> String {
    let rate = pos as f64 / elapsed.as_secs_f64().max(1e-3);
    format!(
        "{label}: {pos} {unit} in {}, {rate:.0} {unit}/s",
        human(elapsed)
    )
}

/// `42s`, `3m05s`, `2h04m`.
fn human(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_say_where_the_step_stands_and_when_it_ends() {
        let s = Duration::from_secs;
        assert_eq!(
            progress_line("test [none]", "images", 1200, Some(5000), s(12)),
            "test [none]: 1200/5000 images (24%), 100 images/s, ETA 38s"
        );
        assert_eq!(
            progress_line("listing images under /data", "files", 30_000, None, s(3)),
            "listing images under /data: 30000 files, 10000 files/s"
        );
        // Nothing done yet: no rate, so no ETA to promise.
        assert_eq!(
            progress_line("report", "steps", 0, Some(9), s(5)),
            "report: 0/9 steps (0%), 0 steps/s, ETA unknown"
        );
        assert_eq!(
            finished_line("synth out", "images", 5000, s(125)),
            "synth out: 5000 images in 2m05s, 40 images/s"
        );
    }

    #[test]
    fn durations_read_at_a_glance() {
        let s = Duration::from_secs;
        assert_eq!(human(s(0)), "0s");
        assert_eq!(human(s(59)), "59s");
        assert_eq!(human(s(185)), "3m05s");
        assert_eq!(human(s(7440)), "2h04m");
    }

    #[test]
    fn a_silent_or_unseen_step_prints_nothing_and_counts_from_any_thread() {
        let p = Progress::lines_only("x", 8, "images");
        std::thread::scope(|scope| {
            for _ in 0..4 {
                scope.spawn(|| p.inc(2));
            }
        });
        assert_eq!(p.pos.load(Ordering::Relaxed), 8);
        // Under QUIET (unless NPR_PROGRESS_EVERY=0): nothing was shown, so no closing line.
        if !every().is_zero() {
            assert!(!p.shown.load(Ordering::Relaxed));
        }
        p.finish();
    }
}
