//! The write side of an index checkpoint: copies words into a few reused, aligned buffers,
//! checksums them and writes them to the device, a few requests in flight.
//!
//! The checkpoint competes with the store's workers for CPU time, cache and memory bandwidth,
//! so the copy is kept cheap:
//!
//! * buffers come from a small pool and go back to it when the device drops them, so the
//!   checkpoint allocates (and the kernel zero-fills and maps) a few MiB once, not the size of
//!   the index every time;
//! * pieces are small enough ([`PIECE_BYTES`]) that a buffer stays in the checkpoint core's
//!   private cache while it is filled, hashed and handed to the device;
//! * the main table is copied bucket by bucket in a tight loop ([`copy_buckets`]) that reads
//!   ahead with a non-temporal prefetch on x86-64, so streaming the table through the shared
//!   last-level cache evicts less of the workers' working set.

use std::sync::mpsc;

use faster_device::{AlignedBuf, Device, IoSource};
use xxhash_rust::xxh3::Xxh3Default;

use crate::bucket::{BUCKET_BYTES, HashBucket, WORDS_PER_BUCKET};
use crate::error::{IndexError, Result};
use crate::sync::Ordering;

/// Bytes per write request (rounded up to the device alignment): small enough to stay in a
/// core's private cache between the copy, the checksum and the write.
const PIECE_BYTES: usize = 1 << 20;
/// Write requests in flight at once (and buffers in the pool).
const MAX_IN_FLIGHT: usize = 4;
/// How many buckets ahead of the copy the prefetch reads.
#[cfg(target_arch = "x86_64")]
const PREFETCH_BUCKETS: usize = 16;

/// `PIECE_BYTES` rounded up to a multiple of `alignment`.
fn piece_len(alignment: usize) -> usize {
    PIECE_BYTES.div_ceil(alignment) * alignment
}

/// The first `len` bytes of a pool buffer, lent to the device for one write; the buffer goes
/// back to the pool when the device drops the value.
struct Lent {
    buf: Option<AlignedBuf>,
    len: usize,
    home: mpsc::Sender<AlignedBuf>,
}

impl Drop for Lent {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            // The pool is gone only when the writer is, and then the buffer is not needed.
            let _ = self.home.send(buf);
        }
    }
}

// SAFETY: the `AlignedBuf` inside never moves (its heap block is fixed), `Lent` owns it
// exclusively until its drop and `len` never changes, so the bytes `as_bytes` names stay
// allocated and unmodified, at the same address and length, while the device holds the value.
unsafe impl IoSource for Lent {
    fn as_bytes(&self) -> &[u8] {
        let all = self.buf.as_deref().unwrap_or(&[]);
        &all[..self.len.min(all.len())]
    }
}

/// Writes regions piece by piece, a few requests in flight, collecting their completions.
pub(crate) struct Writer<'d> {
    device: &'d dyn Device,
    piece: usize,
    tx: mpsc::Sender<faster_device::Result<()>>,
    rx: mpsc::Receiver<faster_device::Result<()>>,
    pool_tx: mpsc::Sender<AlignedBuf>,
    pool_rx: mpsc::Receiver<AlignedBuf>,
    /// Buffers allocated so far (at most `MAX_IN_FLIGHT`).
    allocated: usize,
    in_flight: usize,
    error: Option<IndexError>,
}

impl<'d> Writer<'d> {
    pub(crate) fn new(device: &'d dyn Device) -> Self {
        let (tx, rx) = mpsc::channel();
        let (pool_tx, pool_rx) = mpsc::channel();
        Writer {
            device,
            piece: piece_len(device.alignment()),
            tx,
            rx,
            pool_tx,
            pool_rx,
            allocated: 0,
            in_flight: 0,
            error: None,
        }
    }

    /// Writes the buckets of `table` at `offset` (each as eight little-endian words, see
    /// [`HashBucket::word`]), zero-padded to the alignment; returns the xxh3 of the unpadded
    /// bytes. Errors are kept for [`finish`](Self::finish).
    pub(crate) fn table(&mut self, offset: u64, table: &[HashBucket]) -> u64 {
        let bytes = (table.len() * BUCKET_BYTES) as u64;
        self.region(offset, bytes, |first_word, out| {
            let first = first_word / WORDS_PER_BUCKET;
            copy_buckets(&table[first..first + out.len() / BUCKET_BYTES], out);
        })
    }

    /// Writes `bytes` bytes of words `word(0), word(1), ..` (little-endian) at `offset`,
    /// zero-padded to the alignment; returns the xxh3 of the unpadded bytes. Errors are kept
    /// for [`finish`](Self::finish).
    pub(crate) fn words(
        &mut self,
        offset: u64,
        bytes: u64,
        mut word: impl FnMut(usize) -> u64,
    ) -> u64 {
        self.region(offset, bytes, |first, out| {
            for (j, chunk) in out.chunks_exact_mut(8).enumerate() {
                chunk.copy_from_slice(&word(first + j).to_le_bytes());
            }
        })
    }

    /// Fills and writes `bytes` bytes at `offset` a piece at a time: `fill(first_word, out)`
    /// writes the words from `first_word` on into `out` (a whole number of buckets long);
    /// returns the xxh3 of the unpadded bytes.
    fn region(&mut self, offset: u64, bytes: u64, mut fill: impl FnMut(usize, &mut [u8])) -> u64 {
        let align = self.device.alignment();
        let mut hasher = Xxh3Default::new();
        let mut done = 0u64;
        while done < bytes && self.error.is_none() {
            let len = (bytes - done).min(self.piece as u64) as usize;
            let padded = len.div_ceil(align) * align;
            let mut buf = match self.buffer() {
                Ok(b) => b,
                Err(e) => {
                    self.error = Some(e);
                    break;
                }
            };
            fill((done / 8) as usize, &mut buf[..len]);
            // A reused buffer holds old bytes past `len`: the padding must be zeros.
            buf[len..padded].fill(0);
            hasher.update(&buf[..len]);
            let tx = self.tx.clone();
            let source = Lent {
                buf: Some(buf),
                len: padded,
                home: self.pool_tx.clone(),
            };
            let submitted = self.device.write(
                offset + done,
                Box::new(source),
                Box::new(move |r| {
                    let _ = tx.send(r);
                }),
            );
            match submitted {
                Ok(()) => self.in_flight += 1,
                Err(e) => self.error = Some(e.into()),
            }
            done += len as u64;
            if let Err(e) = self.reap(MAX_IN_FLIGHT - 1) {
                self.error.get_or_insert(e);
            }
        }
        hasher.digest()
    }

    /// A free piece buffer: from the pool, newly allocated while fewer than
    /// `MAX_IN_FLIGHT` exist, or the next one a completed write returns.
    fn buffer(&mut self) -> Result<AlignedBuf> {
        loop {
            if let Ok(buf) = self.pool_rx.try_recv() {
                return Ok(buf);
            }
            if self.allocated < MAX_IN_FLIGHT {
                self.allocated += 1;
                return Ok(AlignedBuf::new(self.piece, self.device.alignment())?);
            }
            // Every buffer is lent out: wait for a write to complete (the device drops the
            // source, returning the buffer, before it runs the callback).
            let before = self.in_flight;
            self.reap(before.saturating_sub(1))?;
            if before == 0 {
                // Nothing in flight and nothing in the pool: a device kept a source after
                // completing its write. Never expected; allocate rather than wait forever.
                return Ok(AlignedBuf::new(self.piece, self.device.alignment())?);
            }
        }
    }

    /// Waits until at most `limit` writes are in flight.
    fn reap(&mut self, limit: usize) -> Result<()> {
        let mut first_error = None;
        while self.in_flight > limit {
            while let Ok(r) = self.rx.try_recv() {
                self.in_flight -= 1;
                if let Err(e) = r {
                    first_error.get_or_insert(e);
                }
            }
            // `wait` returns 0 when another thread is running our callbacks right now.
            if self.in_flight > limit && self.device.wait()? == 0 {
                std::thread::yield_now();
            }
        }
        first_error.map_or(Ok(()), |e| Err(e.into()))
    }

    /// Waits for every write; the first error of the whole checkpoint, if any.
    pub(crate) fn finish(mut self) -> Result<()> {
        let drained = self.reap(0);
        match self.error.take() {
            Some(e) => Err(e),
            None => drained,
        }
    }
}

/// Copies `src` into `out` (`src.len() * 64` bytes), each bucket as eight little-endian words
/// loaded with `Relaxed` ordering (the copy is fuzzy; see the module docs of
/// [`crate::checkpoint`]).
fn copy_buckets(src: &[HashBucket], out: &mut [u8]) {
    debug_assert_eq!(out.len(), src.len() * BUCKET_BYTES);
    for (i, (bucket, dst)) in src
        .iter()
        .zip(out.chunks_exact_mut(BUCKET_BYTES))
        .enumerate()
    {
        prefetch_nta(src, i + PREFETCH_AHEAD);
        for (k, word) in dst.chunks_exact_mut(8).enumerate() {
            word.copy_from_slice(&bucket.word(k).load(Ordering::Relaxed).to_le_bytes());
        }
    }
}

/// How many buckets ahead [`prefetch_nta`] is asked for (0 where it is a no-op).
#[cfg(target_arch = "x86_64")]
const PREFETCH_AHEAD: usize = PREFETCH_BUCKETS;
#[cfg(not(target_arch = "x86_64"))]
const PREFETCH_AHEAD: usize = 0;

/// Hints the CPU to fetch `src[i]` (if it exists) with minimal cache pollution.
#[cfg(all(target_arch = "x86_64", not(loom)))]
#[inline(always)]
fn prefetch_nta(src: &[HashBucket], i: usize) {
    use core::arch::x86_64::{_MM_HINT_NTA, _mm_prefetch};
    if let Some(b) = src.get(i) {
        // SAFETY: `_mm_prefetch` only hints the cache and never faults; SSE is part of the
        // x86-64 baseline; the pointer is that of a live bucket anyway.
        unsafe { _mm_prefetch::<_MM_HINT_NTA>((b as *const HashBucket).cast::<i8>()) }
    }
}

/// Portable fallback: no prefetch.
#[cfg(not(all(target_arch = "x86_64", not(loom))))]
#[inline(always)]
fn prefetch_nta(_src: &[HashBucket], _i: usize) {}

#[cfg(all(test, not(loom)))]
mod tests {
    use faster_device::{DeviceOptions, MemoryDevice, MemoryStore, read_sync};

    use super::*;
    use crate::bucket::new_buckets;

    /// More pieces than pool buffers, so buffers are reused; a short region written from a
    /// reused buffer is zero-padded, and the checksums cover exactly the unpadded bytes.
    #[test]
    fn reused_buffers_are_zero_padded_and_checksummed() {
        let dev = MemoryDevice::open(MemoryStore::new(), DeviceOptions::default()).unwrap();
        let n = 3 * MAX_IN_FLIGHT * PIECE_BYTES / BUCKET_BYTES + 5;
        let table = new_buckets(n);
        for (i, b) in table.iter().enumerate() {
            for k in 0..WORDS_PER_BUCKET {
                b.word(k)
                    .store(!(i as u64 * 8 + k as u64), Ordering::Relaxed);
            }
        }
        let mut w = Writer::new(&dev);
        let table_bytes = (n * BUCKET_BYTES) as u64;
        let sum = w.table(0, &table);
        let at = table_bytes.div_ceil(4096) * 4096;
        let words_sum = w.words(at, 24, |i| u64::MAX - i as u64);
        w.finish().unwrap();

        let all = read_sync(&dev, 0, AlignedBuf::new(at as usize + 4096, 4096).unwrap()).unwrap();
        let expect: Vec<u8> = (0..n as u64 * 8).flat_map(|i| (!i).to_le_bytes()).collect();
        assert_eq!(&all[..table_bytes as usize], &expect[..]);
        assert!(
            all[table_bytes as usize..at as usize]
                .iter()
                .all(|&b| b == 0)
        );
        assert_eq!(sum, xxhash_rust::xxh3::xxh3_64(&expect));
        let tail: Vec<u8> = (0..3u64)
            .flat_map(|i| (u64::MAX - i).to_le_bytes())
            .collect();
        assert_eq!(&all[at as usize..at as usize + 24], &tail[..]);
        assert!(all[at as usize + 24..].iter().all(|&b| b == 0));
        assert_eq!(words_sum, xxhash_rust::xxh3::xxh3_64(&tail));
    }
}
