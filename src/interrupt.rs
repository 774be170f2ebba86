//! SIGINT and SIGTERM as a request to stop cleanly (README "Running on shared machines").
//!
//! Schedulers send SIGTERM before they preempt or time out a job. `npr train` finishes the
//! current step, writes `last.safetensors` and exits with `128 + signal` (130 after SIGINT,
//! 143 after SIGTERM), the shell's convention, so a job script can tell an interruption from
//! a failure. A second signal (more than a second after the first) exits at once without
//! saving. `npr ablate` forwards the signal to the cell it is running and starts no new cell.
//!
//! While a run starts ([`starting`] until [`started`]: the lock, the data and its checks,
//! the run folder) there is nothing to save, and a check of a large data set can take
//! minutes: the first signal ends the process at once with `128 + signal`, after removing
//! what the start created, so no folder that looks like a run is left behind.
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, AtomicPtr, Ordering};

use anyhow::Result;

/// The first stop signal received (0: none).
static SIGNAL: AtomicI32 = AtomicI32::new(0);
/// When it arrived (monotonic milliseconds).
static FIRST_AT_MS: AtomicI64 = AtomicI64::new(0);

/// `npr serve` has nothing to save: its first message says what it does instead.
static SERVING: AtomicBool = AtomicBool::new(false);

/// A repeat within this window is the same request delivered twice (a scheduler signals
/// every process of a job while `npr ablate` also forwards it to its cell), not an abort.
const REPEAT_WINDOW_MS: i64 = 1000;

fn monotonic_ms() -> i64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec and is async-signal-safe.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t.tv_sec * 1000 + t.tv_nsec / 1_000_000
}

/// What a signal during start-up removes, prepared as C strings in advance (the handler
/// may not allocate): files, then a folder (`rmdir(2)`: only when it is then empty).
struct StartUpCleanup {
    files: Vec<CString>,
    dir: Option<CString>,
}

/// Set while a run starts (see the module doc); null otherwise. Replaced values are leaked,
/// never freed, since the handler may be reading them: a few hundred bytes per start.
static STARTING: AtomicPtr<StartUpCleanup> = AtomicPtr::new(std::ptr::null_mut());

/// The handler does only what is async-signal-safe: atomics, `clock_gettime(2)`,
/// `write(2)`, `unlink(2)`, `rmdir(2)`, `_exit(2)`.
extern "C" fn on_signal(sig: libc::c_int) {
    let now = monotonic_ms();
    let first = SIGNAL
        .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok();
    let starting = STARTING.load(Ordering::SeqCst);
    if first && !starting.is_null() {
        // SAFETY: a leaked, never freed `StartUpCleanup` (see STARTING).
        stop_during_start_up(unsafe { &*starting }, sig);
    }
    if first {
        FIRST_AT_MS.store(now, Ordering::SeqCst);
    } else if now - FIRST_AT_MS.load(Ordering::SeqCst) < REPEAT_WINDOW_MS {
        return;
    }
    let msg: &[u8] = if first && SERVING.load(Ordering::SeqCst) {
        b"\ninterrupt: answering the requests in flight, then stopping (signal again to abort)\n"
    } else if first {
        b"\ninterrupt: finishing the current step and saving (signal again to abort)\n"
    } else {
        b"\nsecond interrupt: exiting without saving\n"
    };
    // SAFETY: write(2) and _exit(2) are async-signal-safe; `msg` is a static byte string.
    unsafe {
        libc::write(libc::STDERR_FILENO, msg.as_ptr().cast(), msg.len());
        if !first {
            libc::_exit(128 + sig);
        }
    }
}

/// Removes what the start created and exits: nothing was trained, nothing is saved.
fn stop_during_start_up(cleanup: &StartUpCleanup, sig: libc::c_int) -> ! {
    let msg: &[u8] = b"\ninterrupt: stopped during start-up; nothing to save\n";
    // SAFETY: write(2), unlink(2), rmdir(2) and _exit(2) are async-signal-safe; the strings
    // are NUL-terminated and live for the whole process.
    unsafe {
        libc::write(libc::STDERR_FILENO, msg.as_ptr().cast(), msg.len());
        for file in &cleanup.files {
            libc::unlink(file.as_ptr());
        }
        if let Some(dir) = &cleanup.dir {
            libc::rmdir(dir.as_ptr());
        }
        libc::_exit(128 + sig)
    }
}

/// Start-up mode (see the module doc), with the handler installed: a signal from now on
/// removes `files` and then `dir` if it is empty, and exits. Called again, it replaces
/// what is removed.
pub fn starting(files: &[PathBuf], dir: Option<&Path>) -> Result<()> {
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes());
    let cleanup = StartUpCleanup {
        files: files.iter().map(|f| c(f)).collect::<Result<_, _>>()?,
        dir: dir.map(c).transpose()?,
    };
    install()?;
    STARTING.store(Box::into_raw(Box::new(cleanup)), Ordering::SeqCst);
    Ok(())
}

/// The run has started: a signal asks it to stop cleanly again (finish the step, save).
pub fn started() {
    STARTING.store(std::ptr::null_mut(), Ordering::SeqCst);
}

/// Installs the handler for SIGINT and SIGTERM (idempotent). Without it a scheduler's
/// SIGTERM would lose the work since the last checkpoint, so failing to install is an error.
pub fn install() -> Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction with a valid handler and an empty mask is well formed;
        // `on_signal` only touches async-signal-safe state.
        let rc = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut())
        };
        if rc != 0 {
            anyhow::bail!(
                "cannot install the signal handler that saves the run on SIGINT/SIGTERM: {}",
                std::io::Error::last_os_error()
            );
        }
    }
    Ok(())
}

/// [`install`] for `npr serve`, whose stop answers the requests in flight and saves nothing.
pub fn install_for_server() -> Result<()> {
    SERVING.store(true, Ordering::SeqCst);
    install()
}

/// The stop signal received so far, if any.
pub fn requested() -> Option<i32> {
    Some(SIGNAL.load(Ordering::SeqCst)).filter(|&sig| sig != 0)
}

/// The exit status after a clean stop: 128 + the signal (130 when stopped by a test hook).
pub fn exit_code() -> i32 {
    128 + requested().unwrap_or(libc::SIGINT)
}
