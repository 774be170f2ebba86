//! `tsne_embeddings`: 2-D t-SNE of pooled features, baseline and the proposal's model.
use anyhow::Result;
use plotters::prelude::*;

use super::render::{axes, chart, colour, legend, panels};
use super::{first_seed, Figure};
use crate::report::runs::Run;

/// A t-SNE panel: title, generator names, points (x, y, generator index, label).
type Embedding = (String, Vec<String>, Vec<(f64, f64, usize, u8)>);

/// The pooled features `npr test` kept (its first images), baseline and the proposal's
/// model side by side: colour = generator, filled = fake, hollow = real.
pub(super) fn draw(runs: &[Run], baseline: &str, attention: &str, seed: u64) -> Result<Figure> {
    let mut panels_data: Vec<Embedding> = Vec::new();
    for v in [baseline, attention] {
        if let Some(e) = first_seed(runs, v)
            .map(|r| embedding(r, seed))
            .transpose()?
        {
            panels_data.extend(e);
        }
    }
    if panels_data.is_empty() {
        return Ok(Err("no pooled features in the runs' attention_weights.npz"));
    }
    panels(panels_data.len(), |i, area| {
        let (title, gens, points) = &panels_data[i];
        let range = |f: fn(&(f64, f64, usize, u8)) -> f64| {
            let lo = points.iter().map(f).fold(f64::INFINITY, f64::min);
            let hi = points.iter().map(f).fold(f64::NEG_INFINITY, f64::max);
            let pad = (hi - lo).max(1e-9) * 0.05;
            (lo - pad)..(hi + pad)
        };
        let caption = format!("t-SNE of pooled features — {title}; filled fake, hollow real");
        let ranges = (range(|p| p.0), range(|p| p.1));
        let mut chart = chart(area, (&caption, 16), (40, 50), ranges)?;
        axes(&mut chart, ("t-SNE 1", "t-SNE 2"), (12, 15), |_| {})?;
        for (g, name) in gens.iter().enumerate() {
            let c = colour(g);
            let mine: Vec<_> = points.iter().filter(|p| p.2 == g).collect();
            if mine.is_empty() {
                continue;
            }
            chart
                .draw_series(mine.iter().map(|p| {
                    let style = if p.3 == 1 {
                        c.filled()
                    } else {
                        c.stroke_width(1)
                    };
                    Circle::new((p.0, p.1), 3, style)
                }))?
                .label(name.clone())
                .legend(move |(x, y)| Circle::new((x + 10, y), 4, c.filled()));
        }
        legend(&mut chart, SeriesLabelPosition::UpperRight, 0.85, 11)?;
        Ok(())
    })
    .map(Ok)
}

/// The run's features embedded, when it kept 10 or more. The start is drawn from ChaCha8
/// seeded by `seed` and the fit runs on one thread, so the picture is reproducible.
fn embedding(run: &Run, seed: u64) -> Result<Option<Embedding>> {
    let Some(w) = run.weights.as_ref().filter(|w| w.features.len() >= 10) else {
        return Ok(None);
    };
    let features: Vec<Vec<f32>> = w.features.iter().map(|(_, f)| f.clone()).collect();
    let points = w
        .features
        .iter()
        .zip(tsne(&features, seed)?)
        .map(|((i, _), (x, y))| {
            let (g, label, _) = &w.images[*i];
            (x, y, *g, *label)
        })
        .collect();
    let title = format!(
        "{}, seed {}, {} images",
        run.variant,
        run.seed,
        features.len()
    );
    Ok(Some((title, w.generators.clone(), points)))
}

/// Barnes–Hut t-SNE to 2-D, seeded and single-threaded (bhtsne gives different results on
/// several threads from the same start).
fn tsne(features: &[Vec<f32>], seed: u64) -> Result<Vec<(f64, f64)>> {
    use rand::{Rng, SeedableRng};
    let n = features.len();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let start: Vec<f32> = (0..2 * n).map(|_| rng.gen_range(-1e-4f32..1e-4)).collect();
    let perplexity = ((n - 1) as f32 / 3.0).min(30.0);
    let samples: Vec<&[f32]> = features.iter().map(Vec::as_slice).collect();
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let flat = pool.install(|| {
        bhtsne::tSNE::<f32, &[f32], 2>::new(&samples)
            .perplexity(perplexity)
            .epochs(1000)
            .initial_embedding(start)
            .barnes_hut(0.5, |a, b| {
                a.iter()
                    .zip(b.iter())
                    .map(|(x, y)| (x - y).powi(2))
                    .sum::<f32>()
                    .sqrt()
            })
            .embedding()
    });
    Ok(flat
        .chunks_exact(2)
        .map(|p| (p[0] as f64, p[1] as f64))
        .collect())
}
