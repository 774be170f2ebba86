//! The process allocator: jemalloc, for libtorch's tensors too (README.md, "Inference
//! speed").
//!
//! libtorch allocates every CPU tensor with `posix_memalign`. glibc serves blocks above
//! its mmap threshold (at most 32 MiB) with a fresh `mmap` and unmaps them on free, so
//! every activation of every step costs a page fault per 4 KiB touched, and the kernel
//! zeroes each page: on the 2-core VM, 0.9 million minor faults and 1.9 s of system time
//! for `npr test` on 2,800 64-px images, and more system time than computing at 224 px.
//! npr links jemalloc with its unprefixed symbols, so the binary's `malloc`, `free` and
//! `posix_memalign` serve libtorch as well, and tells it never to return freed pages to
//! the kernel on a timer (`dirty_decay_ms:-1,muzzy_decay_ms:-1`): a step reuses the
//! memory of the step before. Measured against glibc on the same VM (BENCHMARKS.md, "CPU
//! inference: `npr test` against `validate()`"): at 224 px, training and inference steps
//! 2.9–3.1× faster with 16 % less peak memory. The price: memory a run has freed stays
//! with the process until it exits — except in `npr serve`, which purges the arenas once
//! it has been quiet for a second after requests (`src/serve/memory.rs`).
//!
//! `MALLOC_CONF` in the environment is read after the options below and wins, e.g.
//! `MALLOC_CONF=dirty_decay_ms:10000,muzzy_decay_ms:0` for jemalloc's own defaults.

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's options, compiled in (a NUL-terminated C string).
pub const OPTIONS: &[u8] = b"dirty_decay_ms:-1,muzzy_decay_ms:-1\0";

/// A pointer to [`OPTIONS`], shaped as jemalloc's `const char *malloc_conf`.
#[repr(transparent)]
pub struct ConfPointer(*const u8);

// SAFETY: it points to an immutable byte string that lives for the whole program.
unsafe impl Sync for ConfPointer {}

/// Read by jemalloc at its first allocation; this strong definition replaces jemalloc's
/// weak, empty one.
#[no_mangle]
#[used]
#[allow(non_upper_case_globals)]
pub static malloc_conf: ConfPointer = ConfPointer(OPTIONS.as_ptr());
