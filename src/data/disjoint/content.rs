//! The only places the check reads a file's bytes: its content hash, and the byte-for-byte
//! comparison of two files whose hashes are equal. Both count what they read ([`Reads`]),
//! so the check can say what a start cost and a test can tell that one read nothing.
use std::fs::File;
use std::hash::Hasher;
use std::io::Read;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use siphasher::sip::SipHasher13;

/// Files opened and bytes read by the check.
#[derive(Debug, Default)]
pub struct Reads {
    files: AtomicU64,
    bytes: AtomicU64,
}

impl Reads {
    pub fn files(&self) -> u64 {
        self.files.load(Ordering::Relaxed)
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    fn opened(&self) {
        self.files.fetch_add(1, Ordering::Relaxed);
    }

    fn read(&self, n: usize) {
        self.bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
}

const CHUNK: usize = 1 << 16;

/// SipHash-1-3 with zero keys of the file's bytes; None when it cannot be read. Spelled
/// out (the `siphasher` crate) rather than std's `DefaultHasher`, whose algorithm may
/// change between Rust releases: the hash is kept between starts (the hash cache).
pub fn content_hash(path: &Path, reads: &Reads) -> Option<u64> {
    let mut file = File::open(path).ok()?;
    reads.opened();
    let mut hasher = SipHasher13::new();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = file.read(&mut buf).ok()?;
        reads.read(n);
        if n == 0 {
            return Some(hasher.finish());
        }
        hasher.write(&buf[..n]);
    }
}

/// True when both files can be read and hold the same bytes.
pub fn same_bytes(a: &Path, b: &Path, reads: &Reads) -> bool {
    let (Ok(mut fa), Ok(mut fb)) = (File::open(a), File::open(b)) else {
        return false;
    };
    reads.opened();
    reads.opened();
    let (mut ba, mut bb) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    loop {
        let (Ok(na), Ok(nb)) = (fill(&mut fa, &mut ba), fill(&mut fb, &mut bb)) else {
            return false;
        };
        reads.read(na + nb);
        if na != nb || ba[..na] != bb[..nb] {
            return false;
        }
        if na == 0 {
            return true;
        }
    }
}

/// Reads until `buf` is full or the file ends; the number of bytes read.
fn fill(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::fixtures::Tree;

    #[test]
    fn hashes_are_stable_and_reads_are_counted() {
        let tree = Tree::new();
        let long: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let a = tree.write("a", &long);
        let b = tree.write("b", &long);
        let mut other = long.clone();
        other[150_000] ^= 1;
        let c = tree.write("c", &other);
        let reads = Reads::default();
        // The value is kept in cache files: it must never change.
        let abc = tree.write("d", b"abc");
        assert_eq!(content_hash(&abc, &reads), Some(0xc03b_c3a0_0426_30f2));
        assert_eq!(content_hash(&a, &reads), content_hash(&b, &reads));
        assert_ne!(content_hash(&a, &reads), content_hash(&c, &reads));
        assert!(same_bytes(&a, &b, &reads));
        assert!(!same_bytes(&a, &c, &reads));
        assert!(!same_bytes(&a, &tree.root().join("missing"), &reads));
        assert_eq!(content_hash(&tree.root().join("missing"), &reads), None);
        // Hashes read whole files; a comparison stops at the first chunk that differs.
        let chunks_to_the_difference = 3 * CHUNK as u64;
        let want = 3 + 6 * 200_000 + 2 * chunks_to_the_difference;
        assert_eq!((reads.files(), reads.bytes()), (9, want));
    }
}
