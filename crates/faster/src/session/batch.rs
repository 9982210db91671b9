//! Batches: windows of operations whose buckets and records are prefetched before they run,
//! and [`BatchOp`], one operation of a mixed batch.

use std::sync::Arc;

use faster_hlog::Address;
use faster_index::KeyHash;

use super::{BATCH_WINDOW, REFRESH_INTERVAL, Session};
use crate::error::Result;
use crate::ops::Probe;
use crate::rmw::Rmw;

impl Session {
    /// Reads every key of `keys`, in order, calling `out(i, value)` for `keys[i]` (`None`:
    /// missing or deleted). The value slice is only valid during the call.
    ///
    /// The batched form of [`Session::read`], with the same semantics: the reads are issued
    /// in order, each takes the next serial number, and a read whose record is on disk
    /// **blocks** until the disk read completes (like [`Session::read`]; other pending
    /// operations stay pending). It is faster than a loop of [`Session::read`] because it
    /// hashes the keys of a window of [`BATCH_WINDOW`] operations and prefetches their index
    /// buckets, then their records, before executing them one by one; and it copies each
    /// value into a buffer of the session rather than a new vector.
    ///
    /// On an error the batch stops: the reads before have been delivered, the failing one
    /// took its serial number (so [`Session::serial`] tells which failed) and the rest were
    /// not issued.
    ///
    /// ```
    /// # use faster::{Config, FasterKv, LogDevice};
    /// # let dir = tempfile::tempdir()?;
    /// # let config = Config::new(dir.path()).with_log_device(LogDevice::Memory)
    /// #     .with_log_memory(1 << 20).with_page_size(64 << 10).with_table_bits(10);
    /// let store = FasterKv::open(config)?;
    /// let mut s = store.start_session();
    /// s.upsert_batch(&[(b"a", b"1"), (b"b", b"2")])?;
    /// let mut got = Vec::new();
    /// s.read_batch(&[b"a", b"x", b"b"], |i, v| got.push((i, v.map(<[u8]>::to_vec))))?;
    /// assert_eq!(got, [(0, Some(b"1".to_vec())), (1, None), (2, Some(b"2".to_vec()))]);
    /// assert_eq!(s.serial(), 5); // one serial number per operation
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_batch<K: AsRef<[u8]>>(
        &mut self,
        keys: &[K],
        mut out: impl FnMut(usize, Option<&[u8]>),
    ) -> Result<()> {
        self.pipeline(
            keys.len(),
            |i| keys[i].as_ref(),
            |s, i, probe| s.read_hashed_with::<true, _>(keys[i].as_ref(), probe, |v| out(i, v)),
        )
    }

    /// Sets each key of `items` to its value, in order: the batched form of
    /// [`Session::upsert`] (see [`Session::read_batch`] for how batches work and how they
    /// stop on an error). Never waits for disk reads.
    ///
    /// ```
    /// # use faster::{Config, FasterKv, LogDevice};
    /// # let dir = tempfile::tempdir()?;
    /// # let config = Config::new(dir.path()).with_log_device(LogDevice::Memory)
    /// #     .with_log_memory(1 << 20).with_page_size(64 << 10).with_table_bits(10);
    /// let store = FasterKv::open(config)?;
    /// let mut s = store.start_session();
    /// let items: Vec<([u8; 8], [u8; 8])> =
    ///     (0..100u64).map(|k| (k.to_le_bytes(), (k * 2).to_le_bytes())).collect();
    /// s.upsert_batch(&items)?;
    /// assert_eq!(s.read(&7u64.to_le_bytes())?, Some(14u64.to_le_bytes().to_vec()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn upsert_batch<K: AsRef<[u8]>, V: AsRef<[u8]>>(&mut self, items: &[(K, V)]) -> Result<()> {
        self.pipeline(
            items.len(),
            |i| items[i].0.as_ref(),
            |s, i, probe| {
                let (k, v) = &items[i];
                s.upsert_hashed::<true>(k.as_ref(), probe, v.as_ref())
            },
        )
    }

    /// Deletes each key of `keys`, in order: the batched form of [`Session::delete`] (see
    /// [`Session::read_batch`] for how batches work and how they stop on an error).
    pub fn delete_batch<K: AsRef<[u8]>>(&mut self, keys: &[K]) -> Result<()> {
        self.pipeline(
            keys.len(),
            |i| keys[i].as_ref(),
            |s, i, probe| s.delete_hashed(keys[i].as_ref(), probe),
        )
    }

    /// Read-modify-writes each key of `items` with its input through `rmw`, in order: the
    /// batched form of [`Session::rmw`], with its semantics (in place under the record lock
    /// in the mutable region, copy-update from read-only records, the fuzzy-region rule; an
    /// old value on disk is read **blocking**). See [`Session::read_batch`] for how batches
    /// work and how they stop on an error.
    ///
    /// ```
    /// # use faster::{AddU64, Config, FasterKv, LogDevice};
    /// # let dir = tempfile::tempdir()?;
    /// # let config = Config::new(dir.path()).with_log_device(LogDevice::Memory)
    /// #     .with_log_memory(1 << 20).with_page_size(64 << 10).with_table_bits(10);
    /// let store = FasterKv::open(config)?;
    /// let mut s = store.start_session();
    /// let one = 1u64.to_le_bytes();
    /// s.rmw_batch(&[(b"hits", one), (b"hits", one), (b"miss", one)], &AddU64)?;
    /// assert_eq!(s.read(b"hits")?, Some(2u64.to_le_bytes().to_vec()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn rmw_batch<K: AsRef<[u8]>, I: AsRef<[u8]>, R: Rmw + ?Sized>(
        &mut self,
        items: &[(K, I)],
        rmw: &R,
    ) -> Result<()> {
        self.pipeline(
            items.len(),
            |i| items[i].0.as_ref(),
            |s, i, probe| {
                let (k, input) = &items[i];
                s.rmw_hashed::<true, _>(k.as_ref(), probe, input.as_ref(), rmw)
            },
        )
    }

    /// Runs a mixed batch of reads, upserts, RMWs (all through `rmw`) and deletes, in order,
    /// through one prefetch pipeline (see [`Session::read_batch`] for how batches work and
    /// how they stop on an error). `out(i, value)` receives the result of each read at
    /// position `i`. Every operation keeps the semantics of its per-op form and takes the next
    /// serial number; old values on disk are read **blocking**.
    ///
    /// ```
    /// # use faster::{AddU64, BatchOp, Config, FasterKv, LogDevice};
    /// # let dir = tempfile::tempdir()?;
    /// # let config = Config::new(dir.path()).with_log_device(LogDevice::Memory)
    /// #     .with_log_memory(1 << 20).with_page_size(64 << 10).with_table_bits(10);
    /// let store = FasterKv::open(config)?;
    /// let mut s = store.start_session();
    /// let one = 1u64.to_le_bytes();
    /// let ops = [
    ///     BatchOp::Upsert(b"a", b"x"),
    ///     BatchOp::Read(b"a"),
    ///     BatchOp::Rmw(b"n", &one),
    ///     BatchOp::Delete(b"a"),
    ///     BatchOp::Read(b"a"),
    /// ];
    /// let mut reads = Vec::new();
    /// s.batch(&ops, &AddU64, |i, v| reads.push((i, v.map(<[u8]>::to_vec))))?;
    /// assert_eq!(reads, [(1, Some(b"x".to_vec())), (4, None)]);
    /// assert_eq!(s.serial(), 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn batch<R: Rmw + ?Sized>(
        &mut self,
        ops: &[BatchOp<'_>],
        rmw: &R,
        mut out: impl FnMut(usize, Option<&[u8]>),
    ) -> Result<()> {
        self.pipeline(
            ops.len(),
            |i| ops[i].key(),
            |s, i, probe| match ops[i] {
                BatchOp::Read(k) => s.read_hashed_with::<false, _>(k, probe, |v| out(i, v)),
                BatchOp::Upsert(k, v) => s.upsert_hashed::<false>(k, probe, v),
                BatchOp::Rmw(k, input) => s.rmw_hashed::<false, _>(k, probe, input, rmw),
                BatchOp::Delete(k) => s.delete_hashed(k, probe),
            },
        )
    }

    /// The batched API's pipeline over `n` operations whose keys `key(i)` gives: per window
    /// of [`BATCH_WINDOW`] operations, hash the keys and prefetch their index buckets; probe
    /// the buckets and prefetch the records they point to; then run `exec(self, i, probe)`
    /// for each operation in order, stopping at the first error. The probe carries the slot
    /// where the key's index entry was found, so the operation re-checks that one word
    /// instead of searching the bucket again ([`faster_index::HashIndex::recheck`]).
    ///
    /// The prefetches and slots are pure hints (an index probe and cache hints, no state
    /// changes), so every operation keeps the exact semantics of its per-op form, which
    /// `exec` runs: a record may move, be evicted or be replaced, and an entry may change,
    /// between its prefetch and its operation.
    fn pipeline<'k>(
        &mut self,
        n: usize,
        key: impl Fn(usize) -> &'k [u8],
        mut exec: impl FnMut(&mut Self, usize, Probe<'_>) -> Result<()>,
    ) -> Result<()> {
        // The hints borrow the index from this handle while `exec` borrows the session. A
        // single operation has nothing to overlap: no handle, no prefetch (and one call site
        // of `exec`, so that it is inlined).
        let inner = (n > 1).then(|| Arc::clone(&self.inner));
        let mut probes = [Probe::of(KeyHash::from_raw(0)); BATCH_WINDOW];
        let mut start = 0;
        while start < n {
            let len = BATCH_WINDOW.min(n - start);
            // A window of several operations runs as one busy stretch of the session (one
            // enter and one exit for the checkpoint state machine); each operation still
            // takes its own serial number and follows a cut it meets
            // ([`Session::op_in_window`]). A single operation has its own enter and exit.
            // The stretch begins before the probes: their slots are only meaningful until
            // the next index growth, and a growth cannot split the table while the session
            // is busy (it waits for the session's acknowledgement, given at the exit).
            let windowed = inner.is_some();
            if windowed {
                // As a single operation does every `REFRESH_INTERVAL` serials: a batch
                // writer that outgrows a running compaction waits for it (idle, here
                // between windows).
                if (self.serial + len as u64) / REFRESH_INTERVAL != self.serial / REFRESH_INTERVAL
                    && self.waits_for_compaction()
                {
                    self.inner.compacting.running.wait_idle();
                }
                if let Err(e) = self.enter() {
                    self.exit();
                    return Err(e);
                }
                self.in_window = true;
            }
            let window = &mut probes[..len];
            for (j, p) in window.iter_mut().enumerate() {
                *p = Probe::of(KeyHash::of(key(start + j)));
                if let Some(inner) = &inner {
                    inner.index.prefetch(p.hash);
                }
            }
            if let Some(inner) = &inner {
                for p in window.iter_mut() {
                    if let Some((slot, entry)) = inner.index.find_entry(p.hash) {
                        p.hint = Some(slot);
                        inner
                            .hlog
                            .prefetch(Address::from_raw_truncated(entry.address()));
                    }
                }
            }
            let mut result = Ok(());
            for (j, p) in window.iter().enumerate() {
                if let Err(e) = exec(self, start + j, *p) {
                    result = Err(e);
                    break;
                }
            }
            if windowed {
                self.in_window = false;
                self.exit();
            }
            result?;
            start += len;
        }
        Ok(())
    }
}

/// One operation of a mixed batch: the batched forms of [`crate::Session::read`],
/// [`crate::Session::upsert`], [`crate::Session::rmw`] and [`crate::Session::delete`], which
/// [`crate::Session::batch`] runs in order through one prefetch pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchOp<'a> {
    /// Read the key; the value goes to the batch's `out` callback.
    Read(&'a [u8]),
    /// Set the key (first) to the value (second).
    Upsert(&'a [u8], &'a [u8]),
    /// Read-modify-write the key (first) with the input (second) through the batch's `Rmw`.
    Rmw(&'a [u8], &'a [u8]),
    /// Delete the key.
    Delete(&'a [u8]),
}

impl<'a> BatchOp<'a> {
    /// The key the operation works on.
    pub fn key(&self) -> &'a [u8] {
        match *self {
            BatchOp::Read(k) | BatchOp::Upsert(k, _) | BatchOp::Rmw(k, _) | BatchOp::Delete(k) => k,
        }
    }
}
