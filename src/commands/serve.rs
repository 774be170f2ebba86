//! `npr serve`: glue between the flags and [`crate::serve`].
use std::io::Write as _;

use anyhow::Result;

use super::Outcome;
use crate::cli::ServeArgs;
use crate::model::detector::parse_device;
use crate::serve::{self, ServeOptions};

pub fn run(args: &ServeArgs) -> Result<Outcome> {
    let device = parse_device(&args.device.device)?;
    // The intra-op team sized from the usable cores (README.md, "Threads on CPU"); the
    // server decodes on its own request threads, so no loader threads are budgeted.
    crate::threads::apply(device, 1)?;
    let options = ServeOptions {
        checkpoint: args.checkpoint.clone(),
        addr: args.addr.clone(),
        root: args.root.clone(),
        batch_size: args.batch_size,
        queue: args.queue,
        device,
    };
    serve::run(&options, |bound| {
        if !bound.ip().is_loopback() {
            eprintln!(
                "warning: listening on {bound}: anyone who can reach this machine can use the page and the API"
            );
        }
        println!("npr serve: http://{bound}/ (Ctrl-C stops)");
        let _ = std::io::stdout().flush();
    })?;
    eprintln!("npr serve: stopped");
    Ok(Outcome::Interrupted)
}
