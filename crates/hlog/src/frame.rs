//! Page frames: aligned, zero-initialised memory (heap, or an anonymous mapping backed by
//! transparent huge pages for frames of 2 MiB and more) viewed as a slice of `AtomicU64`.
//!
//! All the crate's `unsafe` lives here. A frame is shared by every thread that reads or writes
//! the page it holds, so its bytes are only ever accessed through atomic 8-byte words (relaxed
//! loads and stores compile to plain moves); nobody ever forms a `&mut [u8]` to frame memory.
//! Which page a frame holds, and when it may be zeroed for reuse, is the log's business
//! (epoch protection plus `safe_head`), not this module's.

use memmap2::MmapMut;
use std::alloc::{self, Layout};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};

/// The size of a transparent huge page on x86-64 and most aarch64 kernels. Frames this large
/// or larger are anonymous mappings advised `MADV_HUGEPAGE` before their first touch: random
/// record accesses over a large log otherwise miss the TLB on nearly every operation.
const HUGE_PAGE: usize = 2 << 20;

/// Where a frame's bytes live.
enum Memory {
    /// Heap memory from `alloc_zeroed`, freed with this layout.
    Heap(Layout),
    /// An anonymous mapping (zeroed by the kernel); the frame starts at a huge-page boundary
    /// inside it. Unmapped on drop.
    Mapped(#[allow(dead_code)] MmapMut),
}

/// One page frame: `len` bytes (a multiple of 8), aligned to a chosen power of two.
pub(crate) struct Frame {
    ptr: NonNull<AtomicU64>,
    words: usize,
    alignment: usize,
    memory: Memory,
}

// SAFETY: the frame owns its allocation; all access goes through `&[AtomicU64]`, which is
// `Send` and `Sync`.
unsafe impl Send for Frame {}
// SAFETY: as above: shared access only hands out `&[AtomicU64]`.
unsafe impl Sync for Frame {}

impl Frame {
    /// Allocates a zeroed frame of `bytes` bytes (a non-zero multiple of 8) aligned to
    /// `alignment` (a power of two, at least 8). Returns `None` on a bad layout.
    pub(crate) fn new(bytes: usize, alignment: usize) -> Option<Frame> {
        if bytes == 0 || bytes % 8 != 0 || alignment < 8 {
            return None;
        }
        if bytes >= HUGE_PAGE && alignment <= HUGE_PAGE {
            let map = MmapMut::map_anon(bytes + HUGE_PAGE).ok()?;
            #[cfg(target_os = "linux")]
            {
                // Advisory: where transparent huge pages are off, nothing changes.
                let _ = map.advise(memmap2::Advice::HugePage);
            }
            let base = map.as_ptr() as usize;
            let start = base.next_multiple_of(HUGE_PAGE) - base;
            // SAFETY: `start < HUGE_PAGE`, so `start + bytes` lies within the mapping.
            let raw = unsafe { map.as_ptr().add(start) }.cast_mut();
            let ptr = NonNull::new(raw.cast::<AtomicU64>())?;
            return Some(Frame {
                ptr,
                words: bytes / 8,
                alignment: HUGE_PAGE,
                memory: Memory::Mapped(map),
            });
        }
        let layout = Layout::from_size_align(bytes, alignment).ok()?;
        // SAFETY: `layout` has a non-zero size.
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        let Some(ptr) = NonNull::new(raw.cast::<AtomicU64>()) else {
            alloc::handle_alloc_error(layout)
        };
        Some(Frame {
            ptr,
            words: bytes / 8,
            alignment,
            memory: Memory::Heap(layout),
        })
    }

    /// The frame as atomic words.
    #[inline]
    pub(crate) fn words(&self) -> &[AtomicU64] {
        // SAFETY: `ptr` points to `words * 8` zero-initialised bytes aligned to at least 8,
        // owned by `self` and alive for the borrow; an all-zero bit pattern is a valid
        // `AtomicU64`, and every access to the memory goes through these atomics.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.words) }
    }

    /// Zeroes the whole frame (relaxed stores; the caller orders them with the publication of
    /// the page that reuses the frame).
    pub(crate) fn zero(&self) {
        for w in self.words() {
            w.store(0, Ordering::Relaxed);
        }
    }

    /// Copies the bytes `[from, from + out.len())` of the frame into `out` (`from` and the
    /// length multiples of 8, in range), with relaxed word loads.
    pub(crate) fn copy_out(&self, from: usize, out: &mut [u8]) {
        let words = &self.words()[from / 8..(from + out.len()) / 8];
        for (w, chunk) in words.iter().zip(out.chunks_exact_mut(8)) {
            chunk.copy_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
        }
    }
}

impl Frame {
    /// Like [`Frame::copy_out`], with acquire loads: a reader copying records that are still
    /// being published (the mutable region) sees each record's body once it sees the header
    /// word its writer stored last with release ordering.
    pub(crate) fn copy_out_acquire(&self, from: usize, out: &mut [u8]) {
        let words = &self.words()[from / 8..(from + out.len()) / 8];
        for (w, chunk) in words.iter().zip(out.chunks_exact_mut(8)) {
            chunk.copy_from_slice(&w.load(Ordering::Acquire).to_le_bytes());
        }
    }
}

impl Frame {
    /// Hints the CPU to load the cache line holding word `word` of the frame (nothing if it is
    /// out of range). A pure hint: it never faults and changes nothing; a no-op on targets
    /// without a prefetch instruction.
    #[inline]
    pub(crate) fn prefetch(&self, word: usize) {
        if word >= self.words {
            return;
        }
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `word < self.words`, so the pointer stays inside the frame's allocation;
        // `prefetch` only hints the cache hierarchy (no access in the language's sense, no
        // fault), and SSE is part of the x86-64 baseline.
        unsafe {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            _mm_prefetch::<_MM_HINT_T0>(self.ptr.as_ptr().add(word).cast::<i8>());
        }
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        if let Memory::Heap(layout) = self.memory {
            // SAFETY: `ptr` came from `alloc_zeroed(layout)` and is freed exactly once.
            unsafe { alloc::dealloc(self.ptr.as_ptr().cast::<u8>(), layout) }
        }
        // A mapping unmaps itself when `memory` drops.
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("bytes", &(self.words * 8))
            .field("alignment", &self.alignment)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_copy_zero() {
        assert!(Frame::new(0, 4096).is_none());
        assert!(Frame::new(12, 4096).is_none());
        let f = Frame::new(8192, 4096).unwrap();
        assert_eq!(f.words().as_ptr() as usize % 4096, 0);
        f.words()[1].store(u64::from_le_bytes(*b"abcdefgh"), Ordering::Relaxed);
        let mut out = [0u8; 16];
        f.copy_out(0, &mut out);
        assert_eq!(&out[8..], b"abcdefgh");
        f.zero();
        f.copy_out(0, &mut out);
        assert_eq!(out, [0; 16]);
    }
}
