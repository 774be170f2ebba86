//! Peak memory of this process, for `npr bench` (BENCHMARKS.md says which figure is which).
//!
//! - Host: the resident-set high-water mark, `VmHWM` in `/proc/self/status` (Linux), and
//!   the resident set now, `VmRSS`; their difference from a reading taken before the
//!   model existed is what the model and its batches added on top of libtorch itself.
//! - CUDA: the GPU memory NVML attributes to this process (`nvidia-smi
//!   --query-compute-apps`): the caching allocator's reservation plus the CUDA context.
//!   The allocator keeps its largest reservation until the process exits, so a reading
//!   after the timed steps is the peak. `None` where nvidia-smi is missing or does not
//!   list this process (e.g. a PID namespace hides it).
use std::process::Command;

/// `VmHWM` and `VmRSS` in MiB; `None` off Linux.
pub fn host_mib() -> Option<(f64, f64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        parse_kib(&line[name.len()..]).map(|kib| kib / 1024.0)
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

/// `"   123456 kB"` → 123456.
fn parse_kib(rest: &str) -> Option<f64> {
    let mut parts = rest.split_whitespace();
    let value: f64 = parts.next()?.parse().ok()?;
    (parts.next()? == "kB").then_some(value)
}

/// GPU memory NVML attributes to this process, MiB.
pub fn gpu_mib() -> Option<f64> {
    let out = Command::new("nvidia-smi")
        .args([
            "--query-compute-apps=pid,used_memory",
            "--format=csv,noheader,nounits",
        ])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    used_by(&String::from_utf8_lossy(&out.stdout), std::process::id())
}

/// The `used_memory` of `pid` in nvidia-smi's `pid, used_memory` CSV, summed over devices.
fn used_by(csv: &str, pid: u32) -> Option<f64> {
    let rows: Vec<f64> = csv
        .lines()
        .filter_map(|l| {
            let (p, m) = l.split_once(',')?;
            (p.trim().parse::<u32>().ok()? == pid)
                .then(|| m.trim().parse::<f64>().ok())
                .flatten()
        })
        .collect();
    (!rows.is_empty()).then(|| rows.iter().sum())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kib_fields_parse_and_other_units_do_not() {
        let cases = [
            ("   123456 kB", Some(123456.0)),
            ("\t42 kB", Some(42.0)),
            ("   12 MB", None),
            ("", None),
            (" x kB", None),
        ];
        for (text, want) in cases {
            assert_eq!(parse_kib(text), want, "{text:?}");
        }
    }

    #[test]
    fn nvidia_smi_rows_are_matched_by_pid_and_summed() {
        let csv = "101, 500\n202, 1200\n202, 300\n";
        let cases = [(202, Some(1500.0)), (101, Some(500.0)), (7, None)];
        for (pid, want) in cases {
            assert_eq!(used_by(csv, pid), want, "pid {pid}");
        }
        assert_eq!(used_by("No running processes found\n", 1), None);
    }

    #[test]
    fn this_process_has_a_resident_set() {
        if let Some((peak, now)) = host_mib() {
            assert!(peak >= now && now > 0.0, "VmHWM {peak} VmRSS {now}");
        }
    }
}
