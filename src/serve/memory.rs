//! Memory comes back after a burst (README.md, `npr serve`).
//!
//! The process allocator keeps freed pages for the next step and never returns them on a
//! timer (`src/malloc.rs`): right for a training run, wrong for a server that decoded a
//! few large images an hour ago and sits idle since. jemalloc's own decay would not help
//! either: without its background thread it only purges when the arena is used again.
//! So the server purges explicitly: once requests have been answered and none has
//! arrived for [`QUIET`], every arena returns its unused pages to the kernel
//! (`arena.<all>.purge`). The cost is a page fault per page the next request touches —
//! nothing beside a forward pass, and only after a quiet second.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the server must have been quiet before it purges.
pub const QUIET: Duration = Duration::from_secs(1);

/// Marks activity; a background task purges after it.
#[derive(Debug)]
pub struct Reclaimer {
    start: Instant,
    /// Milliseconds since `start` at the last request's end.
    last_ms: AtomicU64,
    /// A request ended since the last purge.
    dirty: AtomicBool,
}

impl Reclaimer {
    /// Starts the purging task on the current tokio runtime.
    pub fn spawn() -> Arc<Self> {
        let me = Arc::new(Reclaimer {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            dirty: AtomicBool::new(false),
        });
        let task = me.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(QUIET / 2);
            loop {
                tick.tick().await;
                if task.due() {
                    let _ = tokio::task::spawn_blocking(purge_all_arenas).await;
                }
            }
        });
        me
    }

    /// A request has ended: memory it freed may be returned once things are quiet.
    pub fn touched(&self) {
        self.last_ms.store(self.now_ms(), Ordering::Relaxed);
        self.dirty.store(true, Ordering::Relaxed);
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Quiet long enough after activity: clears the mark and says to purge.
    fn due(&self) -> bool {
        let quiet = self
            .now_ms()
            .saturating_sub(self.last_ms.load(Ordering::Relaxed));
        quiet >= QUIET.as_millis() as u64 && self.dirty.swap(false, Ordering::Relaxed)
    }
}

/// `arena.<MALLCTL_ARENAS_ALL>.purge`: every arena's unused dirty and muzzy pages go back
/// to the kernel. Returns whether jemalloc accepted the call.
pub fn purge_all_arenas() -> bool {
    // MALLCTL_ARENAS_ALL is 4096 in jemalloc 5.
    let name = c"arena.4096.purge";
    // SAFETY: a NUL-terminated name, no old or new value (a void mallctl).
    let rc = unsafe {
        tikv_jemalloc_sys::mallctl(
            name.as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    };
    rc == 0
}

#[cfg(test)]
mod tests {
    #[test]
    fn jemalloc_accepts_the_purge() {
        let big = vec![1u8; 64 << 20];
        drop(std::hint::black_box(big));
        assert!(super::purge_all_arenas());
    }
}
