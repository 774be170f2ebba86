//! Counts per generator and label, and the table `npr` prints after discovery.
use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::Sample;

/// Counts per generator and label.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub rows: Vec<SummaryRow>,
    pub real: usize,
    pub fake: usize,
    pub skipped: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SummaryRow {
    pub generator: String,
    pub real: usize,
    pub fake: usize,
}

impl Summary {
    pub fn of(samples: &[Sample], skipped: usize) -> Self {
        let mut counts: BTreeMap<&str, [usize; 2]> = BTreeMap::new();
        for s in samples {
            counts.entry(&s.generator).or_default()[usize::from(s.label.min(1))] += 1;
        }
        let rows: Vec<SummaryRow> = counts
            .into_iter()
            .map(|(g, [r, f])| SummaryRow {
                generator: g.to_string(),
                real: r,
                fake: f,
            })
            .collect();
        let real = rows.iter().map(|r| r.real).sum();
        let fake = rows.iter().map(|r| r.fake).sum();
        Summary {
            rows,
            real,
            fake,
            skipped,
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let width = self
            .rows
            .iter()
            .map(|r| r.generator.chars().count())
            .max()
            .unwrap_or(0)
            .max(9);
        let line = |name: &str, [a, b, c]: [&dyn fmt::Display; 3]| {
            format!("{name:<width$} {a:>8} {b:>8} {c:>8}")
        };
        let mut lines = vec![line("generator", [&"real", &"fake", &"total"])];
        for r in &self.rows {
            lines.push(line(&r.generator, [&r.real, &r.fake, &(r.real + r.fake)]));
        }
        lines.push(line(
            "all",
            [&self.real, &self.fake, &(self.real + self.fake)],
        ));
        f.write_str(&lines.join("\n"))?;
        if self.skipped > 0 {
            write!(f, "\n({} file(s) skipped during discovery)", self.skipped)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::data::discover::discover;
    use crate::data::fixtures::{touch_png, Tree};

    #[test]
    fn summary_counts_and_prints_a_table() {
        let tree = Tree::new();
        for f in [
            "car/0_real/a.png",
            "car/0_real/b.png",
            "car/1_fake/c.png",
            "cat/1_fake/d.png",
        ] {
            touch_png(&tree.path(f));
        }
        let d = discover(tree.root(), None).unwrap();
        assert_eq!((d.summary.real, d.summary.fake), (2, 2));
        assert_eq!(
            d.summary.to_string(),
            "generator     real     fake    total\n\
             car              2        1        3\n\
             cat              0        1        1\n\
             all              2        2        4"
        );
        let json = serde_json::to_value(&d.summary).unwrap();
        assert_eq!(json["rows"][0]["generator"], "car");
    }
}
