//! Single operations: read, upsert, delete and RMW of one key, with the 8-byte fast paths.

use faster_index::KeyHash;

use super::{Parts, Session};
use crate::error::Result;
use crate::ops::read::{self, ReadInto, ReadOutcome};
use crate::ops::rmw::{self, FromDisk, RmwOutcome};
use crate::ops::{self, Flow, Probe, Shift, fast, write};
use crate::rmw::Rmw;

impl Session {
    /// The probe of a per-operation call: the key's hash, with its index bucket prefetched,
    /// so that the bucket's line loads while the session's bookkeeping runs.
    #[inline(always)]
    pub(super) fn probe_of(&self, key: &[u8]) -> Probe<'static> {
        let hash = KeyHash::of(key);
        self.inner.index.prefetch(hash);
        Probe::of(hash)
    }

    /// Sets `key` to `value`. Never waits for disk reads.
    ///
    /// Errors: [`Error::KeyTooLarge`](crate::Error::KeyTooLarge) / [`Error::ValueTooLarge`](crate::Error::ValueTooLarge) if the record would not fit
    /// in a page, [`Error::Closed`](crate::Error::Closed), and the layers' errors (for example a failed flush that
    /// keeps the log from evicting).
    pub fn upsert(&mut self, key: &[u8], value: &[u8]) -> Result<()> {
        self.upsert_hashed::<true>(key, self.probe_of(key), value)
    }

    /// Deletes `key` (a no-op if it has no value). Never waits for disk reads.
    pub fn delete(&mut self, key: &[u8]) -> Result<()> {
        self.delete_hashed(key, self.probe_of(key))
    }

    /// Reads `key`: its value, or `None` if it is missing or deleted. Blocks on the disk reads
    /// it needs (and only on those: other pending operations stay pending).
    pub fn read(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let probe = self.probe_of(key);
        let word8 = <[u8; 8]>::try_from(key).ok();
        self.op(|p| {
            if let Some(k) = word8 {
                if let Some((word, len)) = fast::read_word8(&p.op, k, probe) {
                    return Ok(Ok(Some(word.to_le_bytes()[..len].to_vec())));
                }
            }
            Ok(match read::read(&p.op.reborrow(), key, probe)? {
                ReadOutcome::Done(v) => Ok(v),
                ReadOutcome::Disk(addr) => {
                    Ok(ops::lookup_blocking(&mut p.op.reborrow(), key, addr)?)
                }
                ReadOutcome::Shift => Err(Shift),
            })
        })
    }

    /// Reads `key` like [`Session::read`], but hands the value to `f` as a borrowed slice
    /// (`None`: missing or deleted) instead of returning a new vector, and returns what `f`
    /// returns. The value is copied into a buffer of the session, so a read from memory does
    /// not allocate. The slice is only valid during the call.
    ///
    /// Same semantics as [`Session::read`] otherwise: it takes the next serial number and
    /// blocks on the disk reads it needs; `f` is called exactly once if this returns `Ok`,
    /// and never if it returns `Err`.
    ///
    /// ```
    /// # use faster::{Config, FasterKv, LogDevice};
    /// # let dir = tempfile::tempdir()?;
    /// # let config = Config::new(dir.path()).with_log_device(LogDevice::Memory)
    /// #     .with_log_memory(1 << 20).with_page_size(64 << 10).with_table_bits(10);
    /// let store = FasterKv::open(config)?;
    /// let mut s = store.start_session();
    /// s.upsert(b"n", &7u64.to_le_bytes())?;
    /// let n = s.read_with(b"n", |v| v.map(|b| u64::from_le_bytes(b.try_into().unwrap())))?;
    /// assert_eq!(n, Some(7));
    /// assert_eq!(s.read_with(b"missing", |v| v.is_none())?, true);
    /// assert_eq!(s.serial(), 3);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[inline]
    pub fn read_with<T>(&mut self, key: &[u8], f: impl FnOnce(Option<&[u8]>) -> T) -> Result<T> {
        self.read_hashed_with::<true, _>(key, self.probe_of(key), f)
    }

    /// Read-modify-write of `key` with `input` through `rmw` (see [`Rmw`]). Blocks on the disk
    /// reads it needs.
    pub fn rmw<R: Rmw + ?Sized>(&mut self, key: &[u8], input: &[u8], rmw: &R) -> Result<()> {
        self.rmw_hashed::<true, _>(key, self.probe_of(key), input, rmw)
    }

    /// [`Session::upsert`] of a key whose hash is known. `INLINE`: the operation's body is
    /// inlined here (a per-operation call, or a batch of one kind), or called out of line
    /// (a mixed batch, see [`Session::batch`]).
    #[inline]
    pub(super) fn upsert_hashed<const INLINE: bool>(
        &mut self,
        key: &[u8],
        probe: Probe<'_>,
        value: &[u8],
    ) -> Result<()> {
        if let (Ok(k), Ok(v)) = (<[u8; 8]>::try_from(key), <[u8; 8]>::try_from(value)) {
            // 8-byte key and value: the fast path, and the general one out of line.
            // `inline(always)`: LLVM otherwise keeps the closure out of line (it is called
            // from the slow paths too), with a call and its captures built on the stack.
            return self.op(
                #[inline(always)]
                |p| {
                    if fast::upsert_word8(&p.op, k, probe, v) {
                        Ok(Ok(()))
                    } else {
                        write::upsert_call(&mut p.op.reborrow(), key, probe, value)
                    }
                },
            );
        }
        self.op(|p| {
            if INLINE {
                write::upsert(&mut p.op, key, probe, value)
            } else {
                write::upsert_call(&mut p.op.reborrow(), key, probe, value)
            }
        })
    }

    /// [`Session::delete`] of a key whose hash is known.
    #[inline]
    pub(super) fn delete_hashed(&mut self, key: &[u8], probe: Probe<'_>) -> Result<()> {
        self.op(|p| write::delete(&mut p.op.reborrow(), key, probe))
    }

    /// [`Session::read`] of a key whose hash is known, handing the value to `out` as a
    /// borrowed slice (copied into the session's scratch buffer, or read from disk) instead
    /// of a new vector. `INLINE` as for [`Session::upsert_hashed`].
    #[inline]
    pub(super) fn read_hashed_with<const INLINE: bool, T>(
        &mut self,
        key: &[u8],
        probe: Probe<'_>,
        out: impl FnOnce(Option<&[u8]>) -> T,
    ) -> Result<T> {
        /// Where the value ended up.
        enum Got {
            Scratch,
            Small(u64, usize),
            Owned(Option<Vec<u8>>),
        }
        let word8 = <[u8; 8]>::try_from(key).ok();
        let got = self.op(
            #[inline(always)]
            |p| {
                let inline = match word8 {
                    Some(k) => {
                        if let Some((word, len)) = fast::read_word8(&p.op, k, probe) {
                            return Ok(Ok(Got::Small(word, len)));
                        }
                        // The general path out of line, after the fast one.
                        false
                    }
                    None => INLINE,
                };
                Ok(
                    match if inline {
                        read::read_into(&p.op, key, probe, p.scratch)?
                    } else {
                        read::read_into_call(&p.op.reborrow(), key, probe, p.scratch)?
                    } {
                        ReadInto::Found => Ok(Got::Scratch),
                        ReadInto::Small(word, len) => Ok(Got::Small(word, len)),
                        ReadInto::Missing => Ok(Got::Owned(None)),
                        ReadInto::Disk(addr) => Ok(Got::Owned(ops::lookup_blocking(
                            &mut p.op.reborrow(),
                            key,
                            addr,
                        )?)),
                        ReadInto::Shift => Err(Shift),
                    },
                )
            },
        )?;
        Ok(match got {
            Got::Scratch => out(Some(&self.scratch)),
            Got::Small(word, len) => out(Some(&word.to_le_bytes()[..len])),
            Got::Owned(v) => out(v.as_deref()),
        })
    }

    /// [`Session::rmw`] of a key whose hash is known.
    #[inline]
    pub(super) fn rmw_hashed<const INLINE: bool, R: Rmw + ?Sized>(
        &mut self,
        key: &[u8],
        probe: Probe<'_>,
        input: &[u8],
        rmw: &R,
    ) -> Result<()> {
        if let Ok(k) = <[u8; 8]>::try_from(key) {
            // An 8-byte key: the fast path, and the general one out of line (as for upserts).
            return self.op(
                #[inline(always)]
                |p| {
                    if fast::rmw_word8(&p.op, k, probe, input, rmw) {
                        Ok(Ok(()))
                    } else {
                        rmw_blocking::<false, R>(p, key, probe, input, rmw)
                    }
                },
            );
        }
        self.op(|p| rmw_blocking::<INLINE, R>(p, key, probe, input, rmw))
    }
}

/// Runs an RMW to its end, blocking on the disk reads it needs. `INLINE`: the in-memory
/// part ([`rmw::rmw`]) is inlined here, or called out of line (see
/// [`Session::upsert_hashed`]).
pub(super) fn rmw_blocking<const INLINE: bool, R: Rmw + ?Sized>(
    p: &mut Parts<'_>,
    key: &[u8],
    probe: Probe<'_>,
    input: &[u8],
    f: &R,
) -> Result<Flow<()>> {
    let first = if INLINE {
        rmw::rmw(&mut p.op, p.scratch, key, probe, input, f)?
    } else {
        rmw::rmw_call(&mut p.op.reborrow(), p.scratch, key, probe, input, f)?
    };
    let mut outcome = match first {
        Ok(o) => o,
        Err(Shift) => return Ok(Err(Shift)),
    };
    while let RmwOutcome::Disk { addr, snapshot } = outcome {
        let (old, old_version) = ops::lookup_blocking_versioned(&mut p.op.reborrow(), key, addr)?;
        let read = FromDisk {
            old,
            old_version,
            snapshot,
        };
        outcome = match rmw::rmw_after_disk(
            &mut p.op.reborrow(),
            p.scratch,
            key,
            probe.hash,
            input,
            f,
            read,
        )? {
            Ok(o) => o,
            Err(Shift) => return Ok(Err(Shift)),
        };
    }
    Ok(Ok(()))
}
