//! The main table's memory: `2^k` buckets in one zeroed allocation.
//!
//! The table is an anonymous mapping, aligned to a huge page and advised `MADV_HUGEPAGE` before
//! its first touch, so that the kernel backs it with transparent huge pages: every operation touches a random bucket, and with 4 KiB
//! pages a table of hundreds of megabytes misses the TLB on nearly every one. Under loom the
//! buckets hold loom atomics, which cannot be zero-initialised, so the table is an ordinary
//! boxed slice there.

use crate::bucket::HashBucket;
use crate::error::Result;
use std::ops::Deref;

/// `n` empty buckets, dereferencing to `[HashBucket]`.
pub(crate) struct Table {
    #[cfg(not(loom))]
    memory: zeroed::Buckets,
    #[cfg(loom)]
    memory: Box<[HashBucket]>,
}

impl Table {
    /// `n` empty buckets, or [`IndexError::OutOfMemory`] if they cannot be mapped.
    pub(crate) fn new(n: usize) -> Result<Self> {
        Ok(Table {
            #[cfg(not(loom))]
            memory: zeroed::Buckets::new(n)?,
            #[cfg(loom)]
            memory: crate::bucket::new_buckets(n),
        })
    }
}

impl Deref for Table {
    type Target = [HashBucket];

    fn deref(&self) -> &[HashBucket] {
        &self.memory
    }
}

#[cfg(not(loom))]
mod zeroed {
    use crate::bucket::HashBucket;
    use crate::error::{IndexError, Result};
    use memmap2::MmapMut;
    use std::ops::Deref;

    const HUGE_PAGE: usize = 2 << 20;

    /// Buckets in an anonymous mapping: zeroed by the kernel and untouched until used, so
    /// the huge-page advice given before the first touch takes effect.
    pub(crate) struct Buckets {
        map: MmapMut,
        /// Offset of the first bucket in `map`: the first huge-page boundary.
        start: usize,
        len: usize,
    }

    impl Buckets {
        pub(crate) fn new(len: usize) -> Result<Self> {
            let size = std::mem::size_of::<HashBucket>();
            let too_large = || IndexError::OutOfMemory {
                what: "the hash table",
                bytes: (len as u64).saturating_mul(size as u64),
            };
            let bytes = len
                .checked_mul(size)
                .and_then(|b| b.checked_add(HUGE_PAGE))
                .ok_or_else(too_large)?;
            let map = MmapMut::map_anon(bytes).map_err(|_| too_large())?;
            let bytes = bytes - HUGE_PAGE;
            #[cfg(target_os = "linux")]
            if bytes >= HUGE_PAGE {
                // Advisory: where transparent huge pages are off, nothing changes.
                let _ = map.advise(memmap2::Advice::HugePage);
            }
            let base = map.as_ptr() as usize;
            let start = base.next_multiple_of(HUGE_PAGE) - base;
            Ok(Buckets { map, start, len })
        }
    }

    impl Deref for Buckets {
        type Target = [HashBucket];

        fn deref(&self) -> &[HashBucket] {
            // SAFETY: `start + len * 64 <= map.len()` (the mapping has a huge page of slack
            // for the alignment), the bytes are zeroed by the kernel and live as long as
            // `self`, `start` is 2 MiB-aligned (so 64-aligned for `HashBucket`), and all-zero
            // words are valid `AtomicU64`s: an empty bucket, as `HashBucket::new()` builds.
            // All access goes through the atomics, never through `map` itself.
            unsafe {
                std::slice::from_raw_parts(
                    self.map.as_ptr().add(self.start).cast::<HashBucket>(),
                    self.len,
                )
            }
        }
    }
}
