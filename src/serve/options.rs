//! What `npr serve` was asked for, typed and checked before anything is loaded or bound.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;

/// The flags of `npr serve`, as the server takes them.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub checkpoint: PathBuf,
    pub addr: String,
    pub root: Option<PathBuf>,
    pub batch_size: usize,
    pub queue: usize,
    pub device: tch::Device,
    /// `Host` names accepted besides the loopback names and the bound address.
    pub allow_hosts: Vec<String>,
    pub net: NetLimits,
}

/// How long and how many clients may hold the server (README.md, `npr serve`): a client
/// that sends slowly or not at all loses its connection instead of holding it forever.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetLimits {
    /// From the moment a connection waits for a request until its header is complete:
    /// a half-sent header and an idle keep-alive connection both end here.
    pub header_timeout: Duration,
    /// From the handler's start until the whole upload is in memory (408 after it).
    pub body_timeout: Duration,
    /// Open connections at most; the next one waits in the kernel's accept queue.
    pub max_connections: usize,
    /// After SIGINT/SIGTERM: how long requests in flight may still finish.
    pub shutdown_grace: Duration,
}

impl Default for NetLimits {
    fn default() -> Self {
        NetLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            max_connections: 256,
            shutdown_grace: Duration::from_secs(2),
        }
    }
}

impl NetLimits {
    /// Every out-of-range value at once, each with its flag.
    pub fn validate(&self) -> Result<()> {
        let mut wrong = Vec::new();
        let secs = |d: Duration| d.as_secs_f64();
        for (flag, d) in [
            ("--header-timeout", self.header_timeout),
            ("--body-timeout", self.body_timeout),
        ] {
            if !(0.05..=3600.0).contains(&secs(d)) {
                wrong.push(format!("{flag} {}: expected 0.05 to 3600 seconds", secs(d)));
            }
        }
        if !(1..=65536).contains(&self.max_connections) {
            wrong.push(format!(
                "--max-connections {}: expected 1 to 65536",
                self.max_connections
            ));
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(crate::usage!("{}", wrong.join("; ")))
        }
    }
}

/// Seconds from a flag (`0.5`, `10`) as a duration; bad values are caught by
/// [`NetLimits::validate`] (a negative or NaN number becomes zero here).
pub fn seconds(value: f64) -> Duration {
    Duration::try_from_secs_f64(value).unwrap_or(Duration::ZERO)
}

/// Parses `--addr`: `HOST:PORT` with an IP address, or `localhost:PORT`.
pub fn parse_addr(addr: &str) -> Result<SocketAddr> {
    let normalised = match addr.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}"),
        None => addr.to_string(),
    };
    normalised.parse().map_err(|_| {
        crate::usage!("--addr {addr:?}: expected IP:PORT, e.g. 127.0.0.1:8080 or [::1]:8080 (0.0.0.0:8080 listens on every interface)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_out_of_range_are_named() {
        assert!(NetLimits::default().validate().is_ok());
        let bad = NetLimits {
            header_timeout: seconds(0.0),
            body_timeout: seconds(-1.0),
            max_connections: 0,
            ..NetLimits::default()
        };
        let message = format!("{:#}", bad.validate().unwrap_err());
        for flag in ["--header-timeout", "--body-timeout", "--max-connections"] {
            assert!(message.contains(flag), "{message}");
        }
    }
}
