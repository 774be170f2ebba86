//! `npr serve`: glue between the flags and [`crate::serve`].
use std::io::Write as _;

use anyhow::Result;

use super::Outcome;
use crate::cli::ServeArgs;
use crate::model::detector::parse_device;
use crate::serve::options::seconds;
use crate::serve::{self, NetLimits, ServeOptions};

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
        allow_hosts: args.allow_hosts.clone(),
        net: NetLimits {
            header_timeout: seconds(args.header_timeout),
            body_timeout: seconds(args.body_timeout),
            max_connections: args.max_connections,
            ..NetLimits::default()
        },
    };
    serve::run(&options, |ready| {
        let bound = ready.addr;
        if !bound.ip().is_loopback() {
            eprintln!(
                "warning: listening on {bound}: anyone who can reach this machine can use the page and the API"
            );
        }
        println!("npr serve: http://{bound}/ (Ctrl-C stops)");
        eprintln!("npr serve: preprocessing {}", ready.policy);
        eprintln!(
            "npr serve: answering Host {} (more with --allow-host)",
            ready.hosts.join(", ")
        );
        let _ = std::io::stdout().flush();
    })?;
    eprintln!("npr serve: stopped");
    Ok(Outcome::Interrupted)
}
