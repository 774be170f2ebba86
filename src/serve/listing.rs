//! Folder mode's listing, walked once and then at most once per [`REFRESH`].
//!
//! Walking and canonicalising a large tree takes seconds (2 s for 220k files), so it must
//! not run once per request: the listing is computed at startup and kept; a request after
//! it has gone stale refreshes it, and concurrent requests wait for that one walk instead
//! of starting their own.
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{json, Value};
use tokio::sync::Mutex;

use super::root::FolderRoot;

/// How old a listing may be before a request refreshes it.
pub const REFRESH: Duration = Duration::from_secs(30);

/// The cached listing of one root.
pub struct Listing {
    root: Arc<FolderRoot>,
    max: usize,
    refresh: Duration,
    /// The last walk's JSON and when it finished; the lock makes refreshes single-flight.
    cached: Mutex<Option<(Instant, Arc<Value>)>>,
}

impl Listing {
    /// At most `max` images, walked again when older than `refresh` ([`REFRESH`]).
    pub fn new(root: Arc<FolderRoot>, max: usize, refresh: Duration) -> Self {
        Listing {
            root,
            max,
            refresh,
            cached: Mutex::new(None),
        }
    }

    pub fn root(&self) -> &Arc<FolderRoot> {
        &self.root
    }

    /// The listing (`{"root", "images", "not_listed"}`), walked again only when stale.
    pub async fn get(&self) -> Result<Arc<Value>> {
        let mut cached = self.cached.lock().await;
        if let Some((at, value)) = cached.as_ref() {
            if at.elapsed() < self.refresh {
                return Ok(value.clone());
            }
        }
        let (root, max) = (self.root.clone(), self.max);
        let (images, more) = tokio::task::spawn_blocking(move || root.list(max))
            .await
            .context("the listing task failed")??;
        let value = Arc::new(json!({
            "root": self.root.path().display().to_string(),
            "images": images,
            "not_listed": more,
        }));
        *cached = Some((Instant::now(), value.clone()));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(v: &Value) -> usize {
        v["images"].as_array().unwrap().len()
    }

    #[tokio::test]
    async fn the_tree_is_walked_again_only_when_stale() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.png"), b"x").unwrap();
        let root = Arc::new(FolderRoot::new(dir.path()).unwrap());
        let cached = Listing::new(root.clone(), 10, REFRESH);
        let fresh = Listing::new(root, 10, Duration::ZERO);
        assert_eq!(
            (
                count(&cached.get().await.unwrap()),
                count(&fresh.get().await.unwrap())
            ),
            (1, 1)
        );
        std::fs::write(dir.path().join("b.png"), b"x").unwrap();
        assert_eq!(
            count(&cached.get().await.unwrap()),
            1,
            "served from the first walk"
        );
        assert_eq!(count(&fresh.get().await.unwrap()), 2, "stale: walked again");
    }
}
