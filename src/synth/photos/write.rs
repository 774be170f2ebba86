//! Writes a photo benchmark's images: one photograph per worker (decoded when its crops are
//! made) for the reals and classical fakes, then each network's fakes in fixed batches.
use std::collections::BTreeMap;
use std::fs;

use anyhow::{Context, Result};
use rayon::prelude::*;

use super::family::PhotoFamily;
use super::plan::{Job, Usable};
use super::{render, PhotoOptions, MARGIN, NEURAL_BATCH};
use crate::progress::Progress;
use crate::synth::encode_png;
use crate::synth::family::TconvKernel;
use crate::upsample::Esrgan;

/// The transposed-convolution family's kernels (the procedural benchmark's).
pub(super) fn kernel() -> TconvKernel {
    crate::synth::Recipe::new(24, 0.0, 0.0, None).kernel
}

/// Writes every image of `jobs`.
pub(super) fn images(
    opts: &PhotoOptions,
    jobs: &[Job],
    usable: &[Usable],
    families: &[PhotoFamily],
    kernel: &TconvKernel,
) -> Result<()> {
    let side = opts.size as usize + 2 * MARGIN;
    let size = opts.size as usize;
    let progress = Progress::new(
        format!("synth {}", opts.out.display()),
        jobs.len() as u64,
        "images",
    );
    let write = |job: &Job, img: &image::RgbImage| -> Result<()> {
        let path = opts.out.join(&job.path);
        fs::write(&path, encode_png(img)?)
            .with_context(|| format!("writing {}", path.display()))?;
        progress.inc(1);
        Ok(())
    };
    // One photograph per task: its reals and classical fakes are written, its neural
    // fakes' 8-bit inputs kept for the network's batches.
    let mut by_photo: Vec<Vec<usize>> = vec![Vec::new(); usable.len()];
    for (i, job) in jobs.iter().enumerate() {
        by_photo[job.photo].push(i);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads)
        .build()
        .context("starting the synth worker threads")?;
    let lows: Vec<Vec<(usize, Vec<u8>)>> = pool.install(|| {
        by_photo
            .par_iter()
            .enumerate()
            .map(|(photo, mine)| {
                let halved = usable[photo].halved()?;
                let mut lows = Vec::new();
                for &i in mine {
                    let job = &jobs[i];
                    let r = halved.region(job.x, job.y, side);
                    match job.family {
                        None => write(job, &render::real(&r, size))?,
                        Some(f @ PhotoFamily::Classical(c)) => write(
                            job,
                            &render::classical(c, &render::low_res(&r, f), side, size, kernel),
                        )?,
                        Some(f @ PhotoFamily::Neural { .. }) => {
                            lows.push((i, render::pack(&render::low_res(&r, f))))
                        }
                    }
                }
                Ok(lows)
            })
            .collect::<Result<_>>()
    })?;
    let mut low_of: BTreeMap<usize, Vec<u8>> = lows.into_iter().flatten().collect();
    // Neural fakes: batches of one network, in job order.
    for &fam in families {
        let PhotoFamily::Neural { capacity, scale } = fam else {
            continue;
        };
        let mine: Vec<usize> = (0..jobs.len())
            .filter(|&i| jobs[i].family == Some(fam))
            .collect();
        if mine.is_empty() {
            continue;
        }
        let net = Esrgan::load(&opts.upsamplers, capacity, scale)?;
        let n = fam.low_res(side);
        for batch in mine.chunks(NEURAL_BATCH) {
            let lows: Vec<_> = batch
                .iter()
                .map(|i| render::unpack(n, &low_of.remove(i).expect("kept in the first pass")))
                .collect();
            let imgs = render::neural(&net, &lows, size)?;
            for (&i, img) in batch.iter().zip(&imgs) {
                write(&jobs[i], img)?;
            }
        }
    }
    drop(progress);
    Ok(())
}
