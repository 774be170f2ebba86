//! glibc's malloc told to keep tensor-sized blocks (README.md, "Inference speed").
//!
//! libtorch allocates every CPU tensor with `posix_memalign`. glibc serves blocks above
//! its mmap threshold (128 KiB at start, raised only by what has been freed so far) with
//! a fresh `mmap`, and gives freed heap tops back to the kernel past its trim threshold;
//! every new activation then costs a page fault per 4 KiB touched. Measured on `npr test`
//! (2-core VM, 64-px images, batch 32): 0.9 million minor faults and 1.9 s of system time
//! for 2,800 images; with the thresholds below, 0.13 million and 0.4 s, and 1.45× the
//! images per second, for 12 % more peak memory (BENCHMARKS.md, "CPU inference").
//!
//! A user who sets either `MALLOC_MMAP_THRESHOLD_` or `MALLOC_TRIM_THRESHOLD_` keeps
//! glibc's reading of the environment; nothing is changed then.

/// Blocks up to this size come from the heap and are reused (glibc's ceiling on 64-bit).
const MMAP_THRESHOLD: i32 = 32 << 20;
/// Free memory at the top of the heap kept for the next batch instead of returned.
const TRIM_THRESHOLD: i32 = 256 << 20;

/// Whether npr should set the thresholds: only when the user has set neither.
pub fn should_tune(get: impl Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    get("MALLOC_MMAP_THRESHOLD_").is_none() && get("MALLOC_TRIM_THRESHOLD_").is_none()
}

/// Sets both thresholds for commands that run a model on tensors; call it before any
/// thread starts. Elsewhere than glibc it does nothing.
pub fn keep_tensor_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if should_tune(|k| std::env::var_os(k)) {
        // SAFETY: mallopt only changes allocator parameters; no thread has started yet.
        let ok = unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
        };
        if !ok {
            eprintln!("note: glibc refused the malloc thresholds; CPU runs may be slower");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_setting_wins() {
        let none = |_: &str| None;
        assert!(should_tune(none));
        for set in ["MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"] {
            let one = |k: &str| (k == set).then(|| "1".into());
            assert!(!should_tune(one), "{set} set by the user");
        }
    }
}
