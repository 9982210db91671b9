//! The overflow-bucket allocator: a fixed-capacity pool of `HashBucket`s that never move.
//!
//! Buckets are addressed by a *logical address* `1..=capacity` (`0` means "no bucket", which is
//! what an empty overflow word holds). They live in chunks of `CHUNK_BUCKETS` buckets,
//! allocated on first use and installed by compare-and-swap into a fixed array of chunk
//! pointers, so a bucket's memory address never changes until the allocator drops.
//!
//! New buckets come from a bump counter (the *high-water mark*: every bucket ever handed out
//! has an address `<= high_water()`). A bucket that lost the race to be linked into a chain
//! (and was therefore never published) goes back onto a lock-free free list, a Treiber stack
//! whose head carries a 16-bit counter against ABA and whose links live in the free buckets'
//! overflow words, marked with `FREE_LINK`. When the counter reaches the capacity and the
//! free list is empty, allocation fails with [`IndexError::OverflowExhausted`].

use crate::bucket::{FREE_LINK, HashBucket, OVERFLOW_MASK, new_buckets};
use crate::error::{IndexError, Result};
use crate::sync::{AtomicPtr, AtomicU64, Ordering};

/// Buckets per chunk (64 KiB chunks; tiny under loom).
pub(crate) const CHUNK_BUCKETS: u64 = if cfg!(loom) { 2 } else { 1024 };

const COUNTER_ONE: u64 = 1 << 48;

pub(crate) struct OverflowAllocator {
    capacity: u64,
    chunks: Box<[AtomicPtr<HashBucket>]>,
    /// Number of buckets handed out by the bump counter.
    next: AtomicU64,
    /// Free-list head: bucket address in bits `0..48`, ABA counter in bits `48..64`.
    free: AtomicU64,
}

impl OverflowAllocator {
    /// An allocator of `capacity` buckets (no chunk allocated yet).
    pub(crate) fn new(capacity: u64) -> Self {
        let chunks = capacity.div_ceil(CHUNK_BUCKETS) as usize;
        OverflowAllocator {
            capacity,
            chunks: (0..chunks)
                .map(|_| AtomicPtr::new(std::ptr::null_mut()))
                .collect(),
            next: AtomicU64::new(0),
            free: AtomicU64::new(0),
        }
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Every bucket handed out so far has an address in `1..=high_water()`.
    pub(crate) fn high_water(&self) -> u64 {
        self.next.load(Ordering::Acquire)
    }

    /// The bucket at `addr`, if its chunk is installed.
    pub(crate) fn try_get(&self, addr: u64) -> Option<&HashBucket> {
        if addr > self.capacity {
            return None;
        }
        let i = addr.checked_sub(1)?;
        let chunk = self.chunks.get((i / CHUNK_BUCKETS) as usize)?;
        let p = chunk.load(Ordering::Acquire);
        if p.is_null() {
            return None;
        }
        // SAFETY: a non-null chunk pointer comes from `Box::into_raw` of a boxed slice of
        // `CHUNK_BUCKETS` buckets (see `ensure_chunk`); it is installed once and freed only in
        // `Drop`, which cannot run while `&self` is borrowed. The offset is `< CHUNK_BUCKETS`,
        // and buckets are only accessed through shared references to their atomics.
        Some(unsafe { &*p.add((i % CHUNK_BUCKETS) as usize) })
    }

    /// The bucket at `addr`, which must have been allocated and published (read from an
    /// overflow word, whose release store happened after the chunk was installed).
    pub(crate) fn get(&self, addr: u64) -> &HashBucket {
        self.try_get(addr)
            .expect("overflow pointer to a bucket whose chunk is not installed")
    }

    /// Allocates an empty bucket (all words zero).
    pub(crate) fn allocate(&self) -> Result<u64> {
        if let Some(addr) = self.pop_free() {
            return Ok(addr);
        }
        let mut n = self.next.load(Ordering::Relaxed);
        let addr = loop {
            if n >= self.capacity {
                // A bucket may have been freed meanwhile.
                return self.pop_free().ok_or(IndexError::OverflowExhausted {
                    capacity: self.capacity,
                });
            }
            match self
                .next
                .compare_exchange(n, n + 1, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => break n + 1,
                Err(found) => n = found,
            }
        };
        self.ensure_chunk(addr);
        Ok(addr)
    }

    /// Returns a bucket that was allocated but never published; its entries must be zero.
    pub(crate) fn free(&self, addr: u64) {
        let bucket = self.get(addr);
        let mut head = self.free.load(Ordering::Relaxed);
        loop {
            bucket
                .overflow
                .store(FREE_LINK | (head & OVERFLOW_MASK), Ordering::Relaxed);
            let new = addr | ((head & !OVERFLOW_MASK).wrapping_add(COUNTER_ONE));
            match self
                .free
                .compare_exchange(head, new, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(found) => head = found,
            }
        }
    }

    fn pop_free(&self) -> Option<u64> {
        let mut head = self.free.load(Ordering::Acquire);
        loop {
            let addr = head & OVERFLOW_MASK;
            if addr == 0 {
                return None;
            }
            // May be stale if `addr` was popped meanwhile; the counter makes the CAS fail then.
            let next = self.get(addr).overflow.load(Ordering::Acquire) & OVERFLOW_MASK;
            let new = next | ((head & !OVERFLOW_MASK).wrapping_add(COUNTER_ONE));
            match self
                .free
                .compare_exchange(head, new, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    // Published later by a release CAS of an overflow word.
                    self.get(addr).overflow.store(0, Ordering::Relaxed);
                    return Some(addr);
                }
                Err(found) => head = found,
            }
        }
    }

    /// Installs the chunk holding `addr` if nobody has yet.
    fn ensure_chunk(&self, addr: u64) {
        let slot = &self.chunks[((addr - 1) / CHUNK_BUCKETS) as usize];
        if !slot.load(Ordering::Acquire).is_null() {
            return;
        }
        let fresh = Box::into_raw(new_buckets(CHUNK_BUCKETS as usize)).cast::<HashBucket>();
        if slot
            .compare_exchange(
                std::ptr::null_mut(),
                fresh,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_err()
        {
            // SAFETY: `fresh` came from `Box::into_raw` just above and was never shared.
            unsafe { free_chunk(fresh) };
        }
    }

    /// Recovery: marks buckets `1..=n` as handed out and installs their chunks.
    pub(crate) fn reserve_prefix(&self, n: u64) {
        debug_assert!(n <= self.capacity);
        self.next.store(n, Ordering::Release);
        for chunk in 0..n.div_ceil(CHUNK_BUCKETS) {
            self.ensure_chunk(chunk * CHUNK_BUCKETS + 1);
        }
    }
}

/// Frees a chunk allocated by `ensure_chunk`.
///
/// # Safety
///
/// `p` must come from `Box::into_raw` of a boxed slice of `CHUNK_BUCKETS` buckets, and no
/// reference into it may outlive this call.
unsafe fn free_chunk(p: *mut HashBucket) {
    let slice = std::ptr::slice_from_raw_parts_mut(p, CHUNK_BUCKETS as usize);
    // SAFETY: guaranteed by the caller.
    drop(unsafe { Box::from_raw(slice) });
}

impl Drop for OverflowAllocator {
    fn drop(&mut self) {
        for chunk in self.chunks.iter() {
            let p = chunk.load(Ordering::Acquire);
            if !p.is_null() {
                // SAFETY: installed chunks come from `ensure_chunk`; `&mut self` means no
                // reference into them is alive.
                unsafe { free_chunk(p) };
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn bump_free_reuse_and_exhaustion() {
        let a = OverflowAllocator::new(CHUNK_BUCKETS + 1);
        let first = a.allocate().unwrap();
        assert_eq!(first, 1);
        let p = a.get(first) as *const HashBucket;
        a.free(first);
        assert_ne!(a.get(first).overflow.load(Ordering::Relaxed), 0);
        assert_eq!(a.allocate().unwrap(), first);
        assert_eq!(a.get(first) as *const HashBucket, p, "buckets never move");
        assert_eq!(a.get(first).overflow.load(Ordering::Relaxed), 0);
        for expect in 2..=CHUNK_BUCKETS + 1 {
            assert_eq!(a.allocate().unwrap(), expect);
        }
        assert!(matches!(
            a.allocate(),
            Err(IndexError::OverflowExhausted { capacity }) if capacity == CHUNK_BUCKETS + 1
        ));
        a.free(5);
        assert_eq!(a.allocate().unwrap(), 5);
        assert!(a.try_get(0).is_none());
        assert!(a.try_get(CHUNK_BUCKETS + 2).is_none());
        assert_eq!(a.high_water(), CHUNK_BUCKETS + 1);
    }

    #[test]
    fn zero_capacity() {
        let a = OverflowAllocator::new(0);
        assert!(matches!(
            a.allocate(),
            Err(IndexError::OverflowExhausted { capacity: 0 })
        ));
    }
}
