//! Bucket memory: `n` buckets in one zeroed allocation, for the main table of a generation and
//! for each chunk of its overflow buckets.
//!
//! The buckets are an anonymous mapping, aligned to a huge page and advised `MADV_HUGEPAGE`
//! before the first touch when they span at least one, so that the kernel backs a large table
//! with transparent huge pages: every operation touches a random bucket, and with 4 KiB pages
//! a table of hundreds of megabytes misses the TLB on nearly every one.
//!
//! [`Table::release`] gives the memory back to the operating system while keeping the mapping:
//! a retired generation's buckets then read as empty, and any reference into them stays
//! valid, so releasing early can never be a use after free. Under loom the buckets hold loom
//! atomics, which cannot be zero-initialised, so a table is an ordinary boxed slice there and
//! `release` does nothing.

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
    /// `n` empty buckets, or [`IndexError::OutOfMemory`](crate::IndexError::OutOfMemory) if
    /// they cannot be mapped (`what` names them in the error).
    pub(crate) fn new(n: usize, what: &'static str) -> Result<Self> {
        #[cfg(loom)]
        let _ = what;
        Ok(Table {
            #[cfg(not(loom))]
            memory: zeroed::Buckets::new(n, what)?,
            #[cfg(loom)]
            memory: crate::bucket::new_buckets(n),
        })
    }

    /// Touches every page of the buckets with a store (of the value they hold, zero), so that
    /// the kernel maps and zeroes them now rather than on the first write of whoever fills
    /// the table. A growth does this before sessions stop for its split.
    pub(crate) fn prefault(&self) {
        // One bucket a 4 KiB page (a huge page then counts once per 4 KiB: cheap after the
        // first).
        for bucket in self.iter().step_by(4096 / crate::bucket::BUCKET_BYTES) {
            bucket.overflow.store(0, crate::sync::Ordering::Relaxed);
        }
    }

    /// Returns the buckets' memory to the operating system; they read as empty afterwards
    /// (the mapping stays, so references into it stay valid).
    pub(crate) fn release(&self) {
        #[cfg(not(loom))]
        self.memory.release();
    }
}

impl Deref for Table {
    type Target = [HashBucket];

    #[inline(always)]
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
        /// Offset of the first bucket in `map`: the first huge-page boundary (0 for
        /// allocations smaller than a huge page, which are page-aligned).
        start: usize,
        len: usize,
    }

    impl Buckets {
        pub(crate) fn new(len: usize, what: &'static str) -> Result<Self> {
            let size = std::mem::size_of::<HashBucket>();
            let too_large = || IndexError::OutOfMemory {
                what,
                bytes: (len as u64).saturating_mul(size as u64),
            };
            let bytes = len.checked_mul(size).ok_or_else(too_large)?;
            let huge = bytes >= HUGE_PAGE;
            let slack = if huge { HUGE_PAGE } else { 0 };
            let total = bytes.checked_add(slack).ok_or_else(too_large)?.max(1);
            let map = MmapMut::map_anon(total).map_err(|_| too_large())?;
            #[cfg(target_os = "linux")]
            if huge {
                // Advisory: where transparent huge pages are off, nothing changes.
                let _ = map.advise(memmap2::Advice::HugePage);
            }
            let base = map.as_ptr() as usize;
            let start = if huge {
                base.next_multiple_of(HUGE_PAGE) - base
            } else {
                0
            };
            Ok(Buckets { map, start, len })
        }

        pub(crate) fn release(&self) {
            // SAFETY: `MADV_DONTNEED` on a private anonymous mapping replaces its pages by
            // zero-fill-on-demand pages; the mapping itself stays, so every reference into it
            // stays valid. All access goes through atomics, and all-zero words are valid
            // `AtomicU64`s (empty buckets), so the new contents are valid values too; the
            // caller releases only buckets no thread uses any more (a retired generation).
            let _ = unsafe {
                self.map
                    .unchecked_advise(memmap2::UncheckedAdvice::DontNeed)
            };
        }
    }

    impl Deref for Buckets {
        type Target = [HashBucket];

        #[inline(always)]
        fn deref(&self) -> &[HashBucket] {
            // SAFETY: `start + len * 64 <= map.len()` (a huge page of slack covers the
            // alignment), the bytes are zeroed by the kernel and live as long as `self`,
            // `start` is page-aligned (so 64-aligned for `HashBucket`), and all-zero words are
            // valid `AtomicU64`s: an empty bucket, as `HashBucket::new()` builds. All access
            // goes through the atomics, never through `map` itself.
            unsafe {
                std::slice::from_raw_parts(
                    self.map.as_ptr().add(self.start).cast::<HashBucket>(),
                    self.len,
                )
            }
        }
    }
}
