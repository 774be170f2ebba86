//! The CPU thread budget (README.md, "Threads on CPU"): libtorch's intra-op threads and
//! the loader's decode threads are sized together from the cores this process may use.
//!
//! Why it matters: libtorch runs every operator on an OpenMP team, and OpenMP threads
//! spin at each barrier before they sleep. When another process takes one of two cores,
//! the spinning threads steal the time the lagging thread needs, and a run does not lose
//! half its speed but most of it (measured in BENCHMARKS.md, "CPU under contention").
//! So npr (1) sizes the OpenMP team to the usable cores and caps the decode threads of
//! a CPU run at the same number, and (2) starts its model-running commands with a short
//! OpenMP spin (`GOMP_SPINCOUNT`), which libgomp reads only when it is loaded: the
//! process re-executes itself once with the variable set. Every choice can be overridden
//! from the environment, and a value set by the user is never replaced.
use std::ffi::OsString;

/// libtorch intra-op threads (default: the usable cores).
pub const THREADS_ENV: &str = "NPR_THREADS";
/// Decode threads of the loader (default: `data.workers`, capped at the usable cores on CPU).
pub const LOADER_THREADS_ENV: &str = "NPR_LOADER_THREADS";
/// libgomp's spin count before a waiting thread sleeps (its default is 300,000).
pub const SPIN_ENV: &str = "GOMP_SPINCOUNT";
/// The standard OpenMP switch; when the user sets it, npr leaves the spin count alone.
pub const WAIT_POLICY_ENV: &str = "OMP_WAIT_POLICY";
/// The spin count npr starts with: long enough to bridge the gap between two small
/// operators on an idle machine, short enough that waiting threads sleep when a core is
/// taken (BENCHMARKS.md, "CPU under contention").
pub const SPIN_COUNT: &str = "1000";
/// Set in the re-executed process, so that it never re-executes again.
const REEXEC_MARK: &str = "NPR_REEXEC";

/// How many threads of each kind a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThreadBudget {
    /// libtorch intra-op (OpenMP) threads.
    pub torch: usize,
    /// The loader's decode threads.
    pub loader: usize,
}

/// What the user asked for: `NPR_THREADS`, `NPR_LOADER_THREADS`, and the config's
/// `data.workers`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Requested {
    pub torch: Option<usize>,
    pub loader: Option<usize>,
    pub workers: usize,
}

/// The budget for `cores` usable cores. On CPU the model needs every core, so decode
/// threads beyond the core count only oversubscribe: they are capped there. On a GPU the
/// loader is what keeps the device fed, so `data.workers` stands.
pub fn budget(cores: usize, on_cpu: bool, requested: Requested) -> ThreadBudget {
    let cores = cores.max(1);
    let loader = requested.loader.unwrap_or(if on_cpu {
        requested.workers.min(cores)
    } else {
        requested.workers
    });
    ThreadBudget {
        torch: requested.torch.unwrap_or(cores),
        loader: loader.max(1),
    }
}

/// The cores this process may use (CPU affinity and cgroup quota included).
pub fn usable_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Reads `NPR_THREADS` and `NPR_LOADER_THREADS`; a value that is not a positive integer
/// is a usage error that names the variable.
pub fn requested(workers: usize) -> anyhow::Result<Requested> {
    Ok(Requested {
        torch: positive_env(THREADS_ENV)?,
        loader: positive_env(LOADER_THREADS_ENV)?,
        workers,
    })
}

fn positive_env(name: &str) -> anyhow::Result<Option<usize>> {
    match std::env::var(name) {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n >= 1 => Ok(Some(n)),
            _ => Err(crate::usage!(
                "{name}={v:?}: expected a whole number of threads ≥ 1"
            )),
        },
        Err(_) => Err(crate::usage!(
            "{name}: not valid UTF-8; expected a whole number ≥ 1"
        )),
    }
}

/// Sizes libtorch's intra-op team and returns the budget for a run on `device`.
pub fn apply(device: tch::Device, workers: usize) -> anyhow::Result<ThreadBudget> {
    let on_cpu = device == tch::Device::Cpu;
    let budget = budget(usable_cores(), on_cpu, requested(workers)?);
    tch::set_num_threads(budget.torch as i32);
    Ok(budget)
}

/// Whether the process must re-execute itself to start libgomp with a short spin: only
/// when neither `GOMP_SPINCOUNT` nor `OMP_WAIT_POLICY` is set and it has not done so.
pub fn needs_short_spin(get: impl Fn(&str) -> Option<OsString>) -> bool {
    get(SPIN_ENV).is_none() && get(WAIT_POLICY_ENV).is_none() && get(REEXEC_MARK).is_none()
}

/// Re-executes this binary with `GOMP_SPINCOUNT` set (see the module comment). Call it
/// first thing in `main`, before any thread starts, for commands that run a model. It
/// returns only when nothing needs doing or the exec failed (then the run goes on with
/// libgomp's default, after a warning).
pub fn start_with_short_spin() {
    if !needs_short_spin(|k| std::env::var_os(k)) {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(SPIN_ENV, SPIN_COUNT)
        .env(REEXEC_MARK, "1")
        .exec();
    eprintln!("warning: could not restart with {SPIN_ENV}={SPIN_COUNT} ({err}); libgomp's default spin stays");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_follows_the_cores_and_the_overrides() {
        let req = |torch, loader, workers| Requested {
            torch,
            loader,
            workers,
        };
        // (cores, on_cpu, requested) → (torch, loader)
        let table = [
            (2, true, req(None, None, 8), (2, 2)), // CPU: decode threads capped at the cores
            (2, true, req(None, None, 1), (2, 1)), // fewer workers than cores stay
            (16, false, req(None, None, 8), (16, 8)), // GPU: data.workers stands
            (2, true, req(Some(1), None, 8), (1, 2)), // NPR_THREADS
            (2, true, req(None, Some(4), 8), (2, 4)), // NPR_LOADER_THREADS beats the cap
            (0, true, req(None, None, 0), (1, 1)), // never zero threads
        ];
        for (cores, on_cpu, requested, (torch, loader)) in table {
            assert_eq!(
                budget(cores, on_cpu, requested),
                ThreadBudget { torch, loader },
                "{cores} cores, cpu {on_cpu}, {requested:?}"
            );
        }
    }

    #[test]
    fn a_user_setting_or_an_earlier_restart_means_no_restart() {
        let env = |set: &'static [&'static str]| {
            move |k: &str| set.contains(&k).then(|| OsString::from("1"))
        };
        assert!(needs_short_spin(env(&[])));
        assert!(!needs_short_spin(env(&[SPIN_ENV])));
        assert!(!needs_short_spin(env(&[WAIT_POLICY_ENV])));
        assert!(!needs_short_spin(env(&[REEXEC_MARK])));
    }
}
