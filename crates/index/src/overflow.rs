//! The overflow-bucket allocator: a pool of `HashBucket`s that never move, grown on demand.
//!
//! Buckets are addressed by a *logical address* `1..=capacity` (`0` means "no bucket", which is
//! what an empty overflow word holds). They live in chunks that double in size (chunk `c`
//! holds `FIRST_CHUNK << c` buckets, so 31 chunks cover more than [`MAX_OVERFLOW_BUCKETS`]),
//! mapped on first use and installed by compare-and-swap into a fixed array of chunk
//! pointers, so a bucket's memory address never changes until the allocator drops, and the
//! pool costs nothing until it is used. The capacity is a limit, not a reservation.
//!
//! New buckets come from a bump counter (the *high-water mark*: every bucket ever handed out
//! has an address `<= high_water()`). A bucket that lost the race to be linked into a chain
//! (and was therefore never published) goes back onto a lock-free free list, a Treiber stack
//! whose head carries a 16-bit counter against ABA and whose links live in the free buckets'
//! overflow words, marked with `FREE_LINK`. When the counter reaches the capacity and the
//! free list is empty, allocation fails with [`IndexError::OverflowExhausted`].
//!
//! [`MAX_OVERFLOW_BUCKETS`]: crate::MAX_OVERFLOW_BUCKETS

use crate::bucket::{FREE_LINK, HashBucket, OVERFLOW_MASK};
use crate::error::{IndexError, Result};
use crate::sync::{AtomicPtr, AtomicU64, Ordering};
use crate::table::Table;

/// Buckets in the first chunk (64 KiB; tiny under loom); chunk `c` holds `FIRST_CHUNK << c`.
pub(crate) const FIRST_CHUNK: u64 = if cfg!(loom) { 2 } else { 1024 };
/// Chunks: `FIRST_CHUNK * (2^31 - 1)` buckets in all, more than any capacity.
const CHUNKS: usize = 31;

const COUNTER_ONE: u64 = 1 << 48;

/// The chunk of bucket `addr` (`>= 1`) and the bucket's offset in it.
#[inline]
fn locate(addr: u64) -> (usize, usize) {
    let i = addr - 1;
    let q = i / FIRST_CHUNK + 1;
    let c = 63 - q.leading_zeros() as u64;
    let first = FIRST_CHUNK * ((1 << c) - 1);
    (c as usize, (i - first) as usize)
}

pub(crate) struct OverflowAllocator {
    capacity: u64,
    /// Buckets the memory limit allows (`<= capacity`), and that limit in bytes.
    limit: AtomicU64,
    limit_bytes: AtomicU64,
    chunks: [AtomicPtr<Table>; CHUNKS],
    /// Number of buckets handed out by the bump counter.
    next: AtomicU64,
    /// Free-list head: bucket address in bits `0..48`, ABA counter in bits `48..64`.
    free: AtomicU64,
}

impl OverflowAllocator {
    /// An allocator of at most `capacity` buckets (no chunk mapped yet).
    pub(crate) fn new(capacity: u64) -> Self {
        OverflowAllocator {
            capacity,
            limit: AtomicU64::new(capacity),
            limit_bytes: AtomicU64::new(u64::MAX),
            chunks: std::array::from_fn(|_| AtomicPtr::new(std::ptr::null_mut())),
            next: AtomicU64::new(0),
            free: AtomicU64::new(0),
        }
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Every bucket handed out so far has an address in `1..=high_water()`.
    #[inline]
    pub(crate) fn high_water(&self) -> u64 {
        self.next.load(Ordering::Acquire)
    }

    /// The bucket at `addr`, if its chunk is installed.
    #[inline]
    pub(crate) fn try_get(&self, addr: u64) -> Option<&HashBucket> {
        if addr == 0 || addr > self.capacity {
            return None;
        }
        let (chunk, offset) = locate(addr);
        let p = self.chunks.get(chunk)?.load(Ordering::Acquire);
        if p.is_null() {
            return None;
        }
        // SAFETY: a non-null chunk pointer comes from `Box::into_raw` of a `Table` (see
        // `ensure_chunk`); it is installed once and freed only in `Drop`, which cannot run
        // while `&self` is borrowed.
        let table = unsafe { &*p };
        table.get(offset)
    }

    /// The bucket at `addr`, which must have been allocated and published (read from an
    /// overflow word, whose release store happened after the chunk was installed).
    #[inline]
    pub(crate) fn get(&self, addr: u64) -> &HashBucket {
        self.try_get(addr)
            .expect("overflow pointer to a bucket whose chunk is not installed")
    }

    /// Allocates an empty bucket (all words zero): [`IndexError::OverflowExhausted`] past the
    /// capacity, [`IndexError::OutOfMemory`] if a new chunk cannot be mapped.
    pub(crate) fn allocate(&self) -> Result<u64> {
        if let Some(addr) = self.pop_free() {
            return Ok(addr);
        }
        let mut n = self.next.load(Ordering::Relaxed);
        let limit = self.limit.load(Ordering::Relaxed);
        let addr = loop {
            if n >= limit {
                // A bucket may have been freed meanwhile.
                return self.pop_free().ok_or_else(|| self.full(n));
            }
            // The chunk first: a bucket is counted only once its memory exists.
            self.ensure_chunk(n + 1)?;
            match self
                .next
                .compare_exchange(n, n + 1, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => break n + 1,
                Err(found) => n = found,
            }
        };
        Ok(addr)
    }

    /// The error of an allocation past the limit, `n` buckets in use.
    fn full(&self, n: u64) -> IndexError {
        let limit = self.limit.load(Ordering::Relaxed);
        if limit < self.capacity {
            let bucket = crate::bucket::BUCKET_BYTES as u64;
            IndexError::MemoryLimit {
                limit: self.limit_bytes.load(Ordering::Relaxed),
                needed: (self.limit_bytes.load(Ordering::Relaxed) / bucket - limit + n + 1)
                    .saturating_mul(bucket),
                what: "a new overflow bucket",
            }
        } else {
            IndexError::OverflowExhausted {
                capacity: self.capacity,
            }
        }
    }

    /// Bounds the buckets by a memory limit of `bytes` for a generation whose main table
    /// has `table_buckets` buckets.
    pub(crate) fn set_limit(&self, bytes: u64, table_buckets: u64) {
        let bucket = crate::bucket::BUCKET_BYTES as u64;
        let buckets = (bytes / bucket).saturating_sub(table_buckets);
        self.limit_bytes.store(bytes, Ordering::Relaxed);
        self.limit
            .store(buckets.min(self.capacity), Ordering::Relaxed);
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
    fn ensure_chunk(&self, addr: u64) -> Result<()> {
        let (chunk, _) = locate(addr);
        let slot = &self.chunks[chunk];
        if !slot.load(Ordering::Acquire).is_null() {
            return Ok(());
        }
        let table = Table::new((FIRST_CHUNK << chunk) as usize, "overflow buckets")?;
        let fresh = Box::into_raw(Box::new(table));
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
            drop(unsafe { Box::from_raw(fresh) });
        }
        Ok(())
    }

    /// Recovery: marks buckets `1..=n` as handed out and installs their chunks.
    pub(crate) fn reserve_prefix(&self, n: u64) -> Result<()> {
        debug_assert!(n <= self.capacity);
        if n > 0 {
            let (last, _) = locate(n);
            for chunk in 0..=last {
                self.ensure_chunk(FIRST_CHUNK * ((1 << chunk) - 1) + 1)?;
            }
        }
        self.next.store(n, Ordering::Release);
        Ok(())
    }

    /// Bytes of bucket memory mapped so far.
    pub(crate) fn mapped_bytes(&self) -> u64 {
        let mut bytes = 0;
        for (c, chunk) in self.chunks.iter().enumerate() {
            if !chunk.load(Ordering::Acquire).is_null() {
                bytes += (FIRST_CHUNK << c) * crate::bucket::BUCKET_BYTES as u64;
            }
        }
        bytes
    }

    /// Returns every chunk's memory to the operating system (see [`Table::release`]).
    pub(crate) fn release(&self) {
        for chunk in &self.chunks {
            let p = chunk.load(Ordering::Acquire);
            if !p.is_null() {
                // SAFETY: as in `try_get`.
                unsafe { &*p }.release();
            }
        }
    }
}

impl Drop for OverflowAllocator {
    fn drop(&mut self) {
        for chunk in self.chunks.iter() {
            let p = chunk.load(Ordering::Acquire);
            if !p.is_null() {
                // SAFETY: installed chunks come from `Box::into_raw` in `ensure_chunk`;
                // `&mut self` means no reference into them is alive.
                drop(unsafe { Box::from_raw(p) });
            }
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn bump_free_reuse_and_exhaustion() {
        let a = OverflowAllocator::new(FIRST_CHUNK + 1);
        let first = a.allocate().unwrap();
        assert_eq!(first, 1);
        let p = a.get(first) as *const HashBucket;
        a.free(first);
        assert_ne!(a.get(first).overflow.load(Ordering::Relaxed), 0);
        assert_eq!(a.allocate().unwrap(), first);
        assert_eq!(a.get(first) as *const HashBucket, p, "buckets never move");
        assert_eq!(a.get(first).overflow.load(Ordering::Relaxed), 0);
        for expect in 2..=FIRST_CHUNK + 1 {
            assert_eq!(a.allocate().unwrap(), expect);
        }
        assert!(matches!(
            a.allocate(),
            Err(IndexError::OverflowExhausted { capacity }) if capacity == FIRST_CHUNK + 1
        ));
        a.free(5);
        assert_eq!(a.allocate().unwrap(), 5);
        assert!(a.try_get(0).is_none());
        assert!(a.try_get(FIRST_CHUNK + 2).is_none());
        assert_eq!(a.high_water(), FIRST_CHUNK + 1);
    }

    #[test]
    fn chunks_double_and_cover_every_address() {
        assert_eq!(locate(1), (0, 0));
        assert_eq!(locate(FIRST_CHUNK), (0, FIRST_CHUNK as usize - 1));
        assert_eq!(locate(FIRST_CHUNK + 1), (1, 0));
        assert_eq!(locate(3 * FIRST_CHUNK), (1, 2 * FIRST_CHUNK as usize - 1));
        assert_eq!(locate(3 * FIRST_CHUNK + 1), (2, 0));
        let (c, _) = locate(crate::MAX_OVERFLOW_BUCKETS);
        assert!(c < CHUNKS);
        let a = OverflowAllocator::new(5 * FIRST_CHUNK);
        for expect in 1..=5 * FIRST_CHUNK {
            assert_eq!(a.allocate().unwrap(), expect);
        }
        // Chunks 0, 1 and 2 (1 + 2 + 4 units): nothing beyond what was asked for.
        assert_eq!(a.mapped_bytes(), 7 * FIRST_CHUNK * 64);
        let b = OverflowAllocator::new(crate::MAX_OVERFLOW_BUCKETS);
        assert_eq!(
            b.mapped_bytes(),
            0,
            "a large capacity costs nothing up front"
        );
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
