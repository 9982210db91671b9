//! [`AlignedBuf`], an owned zero-initialised heap buffer with a chosen alignment, and
//! [`IoSource`], the trait of byte sources a write may take ownership of.

use std::alloc::{self, Layout};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

use crate::error::{DeviceError, Result};

/// An owned, zero-initialised heap buffer whose start address is a multiple of a chosen
/// power-of-two alignment.
///
/// Its address never changes while it lives, even when the `AlignedBuf` value itself is moved,
/// which is what lets a device hand the address to the kernel.
pub struct AlignedBuf {
    ptr: NonNull<u8>,
    len: usize,
    layout: Layout,
}

// SAFETY: `AlignedBuf` uniquely owns its allocation (like `Box<[u8]>`); no aliasing pointers
// to it exist outside of `&self`/`&mut self` borrows.
unsafe impl Send for AlignedBuf {}
// SAFETY: shared access only hands out `&[u8]`, which is `Sync`.
unsafe impl Sync for AlignedBuf {}

impl AlignedBuf {
    /// Allocates `len` zero bytes aligned to `alignment` (a power of two).
    ///
    /// Fails with [`DeviceError::InvalidOptions`] if `alignment` is not a power of two or the size
    /// overflows; aborts (like `Vec`) if the allocator is out of memory.
    pub fn new(len: usize, alignment: usize) -> Result<Self> {
        // Never ask the allocator for zero bytes: an empty buffer still owns a 1-byte block.
        let layout = Layout::from_size_align(len.max(1), alignment).map_err(|_| {
            DeviceError::InvalidOptions(format!(
                "buffer of {len} bytes with alignment {alignment} (must be a power of two)"
            ))
        })?;
        // SAFETY: `layout` has a non-zero size.
        let raw = unsafe { alloc::alloc_zeroed(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            alloc::handle_alloc_error(layout)
        };
        Ok(AlignedBuf { ptr, len, layout })
    }

    /// Allocates an aligned buffer holding a copy of `data`.
    pub fn from_slice(data: &[u8], alignment: usize) -> Result<Self> {
        let mut buf = AlignedBuf::new(data.len(), alignment)?;
        buf.copy_from_slice(data);
        Ok(buf)
    }

    /// The alignment the buffer was allocated with.
    pub fn alignment(&self) -> usize {
        self.layout.align()
    }

    /// Raw pointer to the first byte.
    pub fn as_ptr(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    /// Raw mutable pointer to the first byte.
    pub fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}

impl Deref for AlignedBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: `ptr` points to an allocation of at least `len` initialised (zeroed) bytes that
        // we own; the borrow of `self` keeps it alive and unaliased by mutable borrows.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for AlignedBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `deref`, and `&mut self` guarantees exclusive access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl Drop for AlignedBuf {
    fn drop(&mut self) {
        // SAFETY: `ptr` was returned by `alloc_zeroed(self.layout)` and is freed exactly once.
        unsafe { alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

impl Clone for AlignedBuf {
    fn clone(&self) -> Self {
        AlignedBuf::from_slice(self, self.alignment()).expect("layout was valid at allocation")
    }
}

impl fmt::Debug for AlignedBuf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlignedBuf")
            .field("ptr", &self.ptr)
            .field("len", &self.len)
            .field("alignment", &self.alignment())
            .finish()
    }
}

impl PartialEq for AlignedBuf {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for AlignedBuf {}

/// A source of bytes that a write request takes ownership of until it completes.
///
/// # Safety
///
/// Implementors promise that, from the moment the value is handed to a device until the value
/// is dropped, every call of [`as_bytes`](IoSource::as_bytes) returns the same address and length,
/// and the bytes behind it stay allocated and are not modified by anyone. The device reads them
/// asynchronously (for io_uring, the kernel reads them after `as_bytes` has returned).
pub unsafe trait IoSource: Send + 'static {
    /// The bytes to write.
    fn as_bytes(&self) -> &[u8];
}

// SAFETY: the heap allocation of an `AlignedBuf` never moves, and the box owns it exclusively,
// so nobody can modify it while the device holds the box.
unsafe impl IoSource for AlignedBuf {
    fn as_bytes(&self) -> &[u8] {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_and_zeroed() {
        for align in [1usize, 8, 512, 4096, 65536] {
            let buf = AlignedBuf::new(10_000, align).unwrap();
            assert_eq!(buf.as_ptr() as usize % align, 0);
            assert_eq!(buf.len(), 10_000);
            assert!(buf.iter().all(|&b| b == 0));
        }
    }

    #[test]
    fn bad_alignment_is_an_error() {
        assert!(matches!(
            AlignedBuf::new(16, 3),
            Err(DeviceError::InvalidOptions(_))
        ));
    }

    #[test]
    fn zero_length_and_clone() {
        let empty = AlignedBuf::new(0, 4096).unwrap();
        assert!(empty.is_empty());
        let mut a = AlignedBuf::new(4096, 4096).unwrap();
        a[17] = 42;
        let b = a.clone();
        assert_eq!(a, b);
        assert_eq!(b.as_ptr() as usize % 4096, 0);
        assert_ne!(a.as_ptr(), b.as_ptr());
    }

    #[test]
    fn address_is_stable_across_moves() {
        let buf = AlignedBuf::new(512, 512).unwrap();
        let p = buf.as_ptr();
        let boxed: Box<dyn IoSource> = Box::new(buf);
        assert_eq!(boxed.as_bytes().as_ptr(), p);
    }
}
