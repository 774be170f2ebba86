//! Writes a photo benchmark's images: one photograph per worker (decoded when its crops are
//! made) for the reals and classical fakes, then each network's fakes in fixed batches.
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};
use rayon::prelude::*;

use super::family::PhotoFamily;
use super::plan::{Job, Usable};
use super::{render, PhotoOptions, NEURAL_BATCH};
use crate::progress::Progress;
use crate::synth::encode_png;
use crate::synth::family::TconvKernel;
use crate::upsample::Esrgan;

/// The network of every neural family among `families`, in their order: loaded before
/// anything is written, so missing or broken model files stop the run up front.
pub(super) fn load_networks(
    root: &Path,
    families: &[PhotoFamily],
) -> Result<Vec<(PhotoFamily, Esrgan)>> {
    families
        .iter()
        .filter_map(|&fam| match fam {
            PhotoFamily::Neural { capacity, scale } => {
                Some(Esrgan::load(root, capacity, scale).map(|net| (fam, net)))
            }
            PhotoFamily::Classical(_) => None,
        })
        .collect()
}

/// Writes every image of `jobs`; the neural fakes with `nets` ([`load_networks`]).
pub(super) fn images(
    opts: &PhotoOptions,
    jobs: &[Job],
    usable: &[Usable],
    nets: &[(PhotoFamily, Esrgan)],
    kernel: &TconvKernel,
    pool: &rayon::ThreadPool,
) -> Result<()> {
    let side = render::region_side(opts.size);
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
    for (fam, net) in nets {
        let mine: Vec<usize> = (0..jobs.len())
            .filter(|&i| jobs[i].family == Some(*fam))
            .collect();
        let n = fam.low_res(side);
        for batch in mine.chunks(NEURAL_BATCH) {
            let lows: Vec<_> = batch
                .iter()
                .map(|i| render::unpack(n, &low_of.remove(i).expect("kept in the first pass")))
                .collect();
            let imgs = render::neural(net, &lows, size)?;
            for (&i, img) in batch.iter().zip(&imgs) {
                write(&jobs[i], img)?;
            }
        }
    }
    drop(progress);
    Ok(())
}
