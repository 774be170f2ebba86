//! The command line (README.md, Everyday use): one subcommand per job, clap derive style.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Detectors of AI-generated images from neighbouring-pixel residuals (NPR), single- or
/// multi-scale with scale attention. Runs on CPU and on CUDA.
#[derive(Debug, Parser)]
#[command(name = "npr", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train one model from a YAML config.
    Train(TrainArgs),
    /// Evaluate a checkpoint on one or more test sets.
    Test(TestArgs),
    /// Score single images or folders: fake probability and per-scale weights.
    Predict(PredictArgs),
    /// A local web page and JSON API: an image's score, per-scale weights and residual maps.
    Serve(ServeArgs),
    /// Run the ablation matrix (fusion modes × seeds).
    Ablate(AblateArgs),
    /// Tables, significance tests and figures from finished runs.
    Report(ReportArgs),
    /// Write the synthetic benchmark (ForenSynths layout) with known up-sampling traces.
    Synth(SynthArgs),
    /// Throughput and memory figures.
    Bench(BenchArgs),
}

/// Device selection shared by the commands that run a model.
#[derive(Debug, Clone, Args)]
pub struct DeviceArg {
    /// auto (CUDA when present), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: String,
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// The run's YAML config (see configs/).
    #[arg(long)]
    pub config: PathBuf,
    /// Override a config key, e.g. `--set train.epochs=5` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Run folder (default: runs/<name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArg,
    /// Seed (overrides train.seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Continue from the run folder's last.safetensors. `--resume auto` resumes when it
    /// exists and starts a new run otherwise (one command for a first launch and every
    /// requeue; a finished run is left alone and exits 0).
    #[arg(
        long,
        conflicts_with = "overwrite",
        num_args = 0..=1,
        default_missing_value = "required",
        value_enum,
        value_name = "auto"
    )]
    pub resume: Option<Resume>,
    /// Replace an existing run folder.
    #[arg(long)]
    pub overwrite: bool,
}

/// `--resume` (the run must have a checkpoint) or `--resume auto`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Resume {
    #[value(hide = true)]
    Required,
    Auto,
}

#[derive(Debug, Args)]
pub struct TestArgs {
    /// A run folder (its recipe's weights: `last` for official, `best` for proposal), a
    /// checkpoint (.safetensors) or an official NPR PyTorch checkpoint (.pth).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Test root: one folder per generator, each with 0_real/1_fake (or classes). A dataset
    /// root holding train/val/test is tested on test/. Scored with the checkpoint's test
    /// transform (as `npr predict` and `npr serve`) unless --resize/--no-resize/--crop.
    #[arg(long)]
    pub dataroot: Option<PathBuf>,
    /// Score this split folder of the root instead (e.g. `val`); never chosen implicitly.
    #[arg(long)]
    pub split: Option<String>,
    /// Only these of the config's test sets (comma-separated names).
    #[arg(long, value_delimiter = ',')]
    pub sets: Vec<String>,
    /// Output folder, replaced whole when the test completes (default: next to the
    /// checkpoint, test/; a sweep test_sweep_KIND/, one perturbation test_LEVEL/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Re-encode every image as JPEG at this quality before the model.
    #[arg(long)]
    pub jpeg_quality: Option<u8>,
    /// Gaussian blur σ applied before the model.
    #[arg(long)]
    pub blur_sigma: Option<f64>,
    /// Resize to N×N before the model.
    #[arg(long, conflicts_with = "no_resize")]
    pub resize: Option<u32>,
    /// Feed images at full size (GANGen/AIGCDetect protocol).
    #[arg(long)]
    pub no_resize: bool,
    /// Crop policy (center and tile use the training crop size).
    #[arg(long, value_enum)]
    pub crop: Option<crate::config::CropPolicy>,
    /// Robustness sweep, one metrics block per level: `jpeg=75,80,90,100`, `blur=0,1,2`
    /// or `resize=128,256,512`.
    #[arg(long, conflicts_with_all = ["jpeg_quality", "blur_sigma"])]
    pub sweep: Option<String>,
    /// Batch size.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Loader threads (default: one per usable core; on CPU at most that many, unless
    /// NPR_LOADER_THREADS says otherwise).
    #[arg(long)]
    pub workers: Option<usize>,
    /// Keep pooled features of at most this many images (for t-SNE).
    #[arg(long, default_value_t = 2000)]
    pub max_features: usize,
    #[command(flatten)]
    pub device: DeviceArg,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    /// A run folder, a checkpoint (.safetensors) or an official NPR checkpoint (.pth).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Images or folders.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write, per image, PNGs of the NPR residual at every scale (one contrast
    /// stretch shared by the scales), the image as the model saw it, the fused map the
    /// backbone sees, and a JSON with score, logit and branch weights, into this folder.
    #[arg(long, value_name = "DIR")]
    pub maps: Option<PathBuf>,
    #[command(flatten)]
    pub device: DeviceArg,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A run folder, a checkpoint (.safetensors) or an official NPR checkpoint (.pth).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Address to listen on. Localhost by default; any other address exposes the page
    /// and the API to the network (a warning is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Folder mode: list and score the images below this folder (nothing outside it can
    /// be read: no `..`, no absolute paths, no symlinks leading out).
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// Images scored together by the model worker (same-size images only).
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Requests waiting for the model before new ones get 503 (bounded memory).
    #[arg(long, default_value_t = 64)]
    pub queue: usize,
    /// Also answer requests whose `Host` is NAME (repeatable). By default only the
    /// loopback names and the bound address are accepted, so a web page whose DNS name
    /// is rebound to this machine cannot read the API.
    #[arg(long = "allow-host", value_name = "NAME")]
    pub allow_hosts: Vec<String>,
    /// Seconds a connection may take to send a request's header, also the most a
    /// keep-alive connection may sit idle.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub header_timeout: f64,
    /// Seconds an upload may take to arrive in full (408 after it).
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub body_timeout: f64,
    /// Open connections at most (further ones wait to be accepted).
    #[arg(long, default_value_t = 256)]
    pub max_connections: usize,
    #[command(flatten)]
    pub device: DeviceArg,
}

#[derive(Debug, Args)]
pub struct AblateArgs {
    /// A study file (configs/ablation.yaml: base config, variants as overrides, seeds), or a
    /// plain config that gets the built-in variants baseline, equal, learned, attention.
    #[arg(long)]
    pub config: PathBuf,
    /// Replace the study file's base config (e.g. configs/quick.yaml for a CPU run).
    #[arg(long)]
    pub base: Option<PathBuf>,
    /// Override a base-config key for every cell (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Variants to run (comma-separated names from the study; default: all).
    #[arg(long, value_delimiter = ',')]
    pub variants: Vec<String>,
    /// Seeds (comma-separated; default: the study file's, else 0,1,2).
    #[arg(long, value_delimiter = ',')]
    pub seeds: Vec<u64>,
    /// Run only shard i of n (0-based), e.g. `--shard 1/4` for a cluster array job.
    #[arg(long)]
    pub shard: Option<String>,
    /// Devices to spread the cells over, one cell at a time per device (comma-separated;
    /// default: auto).
    #[arg(long, value_delimiter = ',')]
    pub devices: Vec<String>,
    /// Parent folder of the runs (default: runs/ablation_<name>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Skip `npr test` after training (test sets come from the config).
    #[arg(long)]
    pub no_test: bool,
    /// Train and test on the real data sets of a suites file (configs/test_suites.yaml):
    /// its training set and test suites replace the base config's, under `--data`.
    #[arg(long, requires = "data")]
    pub suites: Option<PathBuf>,
    /// The folder the suites file's paths are relative to.
    #[arg(long, requires = "suites")]
    pub data: Option<PathBuf>,
    /// Check every data folder, print the plan, the images per set and an estimated time
    /// from a short benchmark, and run nothing (exit 2 on a wrong layout, naming what is
    /// missing and where it is expected).
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Tested run folders, or folders holding them (an `npr ablate` output folder).
    #[arg(long, num_args = 1.., required = true)]
    pub runs: Vec<PathBuf>,
    /// Output folder for report.md and its tables.
    #[arg(long)]
    pub out: PathBuf,
    /// The variant every other is compared against.
    #[arg(long, default_value = "baseline")]
    pub baseline: String,
    /// The proposal's model, named in the hypotheses.
    #[arg(long, default_value = "attention")]
    pub attention: String,
    /// Bootstrap resamples per metric, run and set.
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Seed: same seed, byte-identical files.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Image side in pixels.
    #[arg(long)]
    pub size: Option<u32>,
    /// Training images per class and label.
    #[arg(long)]
    pub train_per_class: Option<usize>,
    /// Validation images per class and label.
    #[arg(long)]
    pub val_per_class: Option<usize>,
    /// Test images per family and label.
    #[arg(long)]
    pub test_per_family: Option<usize>,
    /// Number of content classes (1–4).
    #[arg(long)]
    pub classes: Option<usize>,
    /// Worker threads.
    #[arg(long)]
    pub threads: Option<usize>,
    /// `default` (seen: nearest_x2, tconv_x2, both at NPR scale 0.5) or `multiscale`
    /// (seen: nearest_x2, nearest_x4: traces at 0.5 and 0.25).
    #[arg(long, value_enum, default_value = "default")]
    pub preset: SynthPreset,
    /// Families used in train/val ("seen"), comma-separated; overrides the preset's.
    #[arg(long, value_delimiter = ',')]
    pub seen: Vec<String>,
    /// Weight of the fresh full-resolution detail added to fakes after up-sampling.
    #[arg(long)]
    pub detail_weight: Option<f64>,
    /// Sensor-noise σ in grey levels (of 255).
    #[arg(long)]
    pub noise_sigma: Option<f64>,
    /// Mild JPEG compression of every image at this quality.
    #[arg(long)]
    pub jpeg_quality: Option<u8>,
    /// Replace an existing benchmark in --out.
    #[arg(long)]
    pub force: bool,
    /// Build the benchmark from this folder of photographs instead of procedural scenes
    /// (e.g. datasets/photos from scripts/get_photos.sh, or your own): reals are crops
    /// after a ÷2 area down-scale, fakes the same crops brought back from a lower
    /// resolution by each family's up-sampler (ESRGAN networks and the classical ones);
    /// splits by photograph (DATASET_DETAILS.md, photo benchmark).
    #[arg(long, value_name = "DIR")]
    pub reals: Option<PathBuf>,
    /// With --reals: the folder of the ESRGAN model files.
    #[arg(long, value_name = "DIR")]
    pub upsamplers: Option<PathBuf>,
    /// With --reals: reals, and fakes, per training photograph.
    #[arg(long)]
    pub train_per_photo: Option<usize>,
    /// With --reals: reals, and fakes, per validation photograph.
    #[arg(long)]
    pub val_per_photo: Option<usize>,
    /// With --reals: reals, and fakes, per test photograph and family.
    #[arg(long)]
    pub test_per_photo: Option<usize>,
    /// With --reals: the test families, comma-separated (default: every classical family
    /// and every ESRGAN network whose files are present, at ×2, ×3, ×4).
    #[arg(long, value_delimiter = ',')]
    pub families: Vec<String>,
}

/// Which families `npr synth` trains on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SynthPreset {
    Default,
    Multiscale,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Measure the image loader (decode + augment) only.
    #[arg(long)]
    pub loader: bool,
    /// Folder of labelled images: for --loader, and for the end-to-end figures (files →
    /// loader → step / inference) of the model benchmark.
    #[arg(long)]
    pub dataroot: Option<PathBuf>,
    /// Loader threads.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    #[arg(long, default_value_t = 32)]
    pub batch_size: usize,
    #[arg(long, default_value_t = 256)]
    pub load_size: u32,
    #[arg(long, default_value_t = 224)]
    pub crop_size: u32,
    /// Images to time (the loader benchmark; per direction end to end).
    #[arg(long, default_value_t = 2000)]
    pub images: usize,
    /// Timed steps for the model benchmarks.
    #[arg(long, default_value_t = 20)]
    pub steps: usize,
    /// bf16 autocast (CUDA only).
    #[arg(long)]
    pub amp: bool,
    #[command(flatten)]
    pub device: DeviceArg,
    /// Write the figures as JSON to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Measure this model only, in this process (how `npr bench` runs each model).
    #[arg(long, hide = true)]
    pub model: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }
}
