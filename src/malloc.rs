//! glibc's malloc told to keep tensor memory (README.md, "Inference speed").
//!
//! libtorch allocates every CPU tensor with `posix_memalign`. glibc serves large blocks
//! (above 128 KiB at first, at most 32 MiB even after its own adjustment) with a fresh
//! `mmap` and unmaps them on free, and gives freed heap tops back to the kernel; every new
//! activation then costs a page fault per 4 KiB touched, and the kernel zeroes each page.
//! npr serves every block from the heap (`M_MMAP_MAX` = 0) and keeps up to 128 MiB of free
//! heap top for the next batch. Measured on the 2-core VM (BENCHMARKS.md, "CPU
//! inference: `npr test` against `validate()`"): `npr test` on 64-px images, 0.9 million
//! minor faults and 1.9 s of system time for 2,800 images before, 0.13 million and 0.4 s
//! after, 1.45× the images per second; at 224 px, training and inference steps 2.5–2.9×
//! faster. The price is peak
//! host memory: freed blocks stay in the process (+12 % at 64 px, +60 % at 224 px).
//!
//! A user who sets any of `MALLOC_MMAP_MAX_`, `MALLOC_MMAP_THRESHOLD_`,
//! `MALLOC_TRIM_THRESHOLD_` or a `glibc.malloc` tunable keeps glibc's reading of the
//! environment; nothing is changed then.

/// No block is served by `mmap`: all come from the heap and are reused.
const MMAP_MAX: i32 = 0;
/// Free memory at the top of the heap kept for the next batch instead of returned.
const TRIM_THRESHOLD: i32 = 128 << 20;

/// Whether npr should set its parameters: only when the user has set none.
pub fn should_tune(get: impl Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    let user_tunables =
        get("GLIBC_TUNABLES").is_some_and(|t| t.to_string_lossy().contains("glibc.malloc"));
    !user_tunables
        && [
            "MALLOC_MMAP_MAX_",
            "MALLOC_MMAP_THRESHOLD_",
            "MALLOC_TRIM_THRESHOLD_",
        ]
        .iter()
        .all(|k| get(k).is_none())
}

/// Sets the parameters for commands that run a model on tensors; call it before any
/// thread starts. Elsewhere than glibc it does nothing.
pub fn keep_tensor_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if should_tune(|k| std::env::var_os(k)) {
        // SAFETY: mallopt only changes allocator parameters; no thread has started yet.
        let ok = unsafe {
            libc::mallopt(libc::M_MMAP_MAX, MMAP_MAX) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
        };
        if !ok {
            eprintln!("note: glibc refused the malloc parameters; CPU runs may be slower");
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
        for set in [
            "MALLOC_MMAP_MAX_",
            "MALLOC_MMAP_THRESHOLD_",
            "MALLOC_TRIM_THRESHOLD_",
        ] {
            let one = |k: &str| (k == set).then(|| "1".into());
            assert!(!should_tune(one), "{set} set by the user");
        }
        let tunables = |v: &'static str| move |k: &str| (k == "GLIBC_TUNABLES").then(|| v.into());
        assert!(!should_tune(tunables("glibc.malloc.mmap_max=4")));
        assert!(
            should_tune(tunables("glibc.pthread.rseq=0")),
            "other tunables do not count"
        );
    }
}
