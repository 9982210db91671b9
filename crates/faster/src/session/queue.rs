//! Operations waiting for disk reads: the per-session table of pending requests and the
//! channel their I/O completions come back on.
//!
//! A pending operation owns its key, its input and its context (the caller's callback). Its
//! disk read's completion runs on whichever thread drives the device (this session in
//! [`crate::Session::complete_pending`], or another thread helping inside an allocation); it
//! only sends the record read back to the owning session's channel, so all store work for
//! the operation (comparing keys, following the chain, installing an RMW's new value) happens
//! in the owning session, under its guard.

use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, Sender};

use faster_hlog::{Address, DiskRecord, Hlog, Result as HlogResult};
use faster_index::KeyHash;

use crate::error::{Error, Result};
use crate::rmw::Rmw;

/// The context of a pending read: called once with the value (or `None`) or the error.
pub(crate) type ReadCtx = Box<dyn FnOnce(Result<Option<Vec<u8>>>) + Send>;
/// The context of a pending RMW: called once when the update is installed, or with the error.
pub(crate) type RmwCtx = Box<dyn FnOnce(Result<()>) + Send>;

/// What a pending operation does once its value is known.
pub(crate) enum Kind {
    /// A read: deliver the value.
    Read(ReadCtx),
    /// An RMW: compute and install the new value, then report.
    Rmw {
        input: Vec<u8>,
        rmw: Box<dyn Rmw + Send>,
        snapshot: u64,
        ctx: RmwCtx,
    },
}

/// An operation waiting for a disk read.
pub(crate) struct PendingOp {
    pub(crate) key: Vec<u8>,
    pub(crate) hash: KeyHash,
    /// The CPR version the operation was issued in (WAIT_PENDING waits for the old ones).
    pub(crate) version: u64,
    pub(crate) kind: Kind,
}

impl PendingOp {
    /// Delivers `error` to the operation's context.
    pub(crate) fn fail(self, error: Error) {
        match self.kind {
            Kind::Read(ctx) => ctx(Err(error)),
            Kind::Rmw { ctx, .. } => ctx(Err(error)),
        }
    }
}

type Completion = (u64, HlogResult<DiskRecord>);

/// A session's pending operations.
pub(crate) struct Pending {
    ops: HashMap<u64, PendingOp>,
    next_id: u64,
    tx: Sender<Completion>,
    rx: Receiver<Completion>,
}

impl Pending {
    pub(crate) fn new() -> Self {
        let (tx, rx) = mpsc::channel();
        Pending {
            ops: HashMap::new(),
            next_id: 0,
            tx,
            rx,
        }
    }

    /// Number of operations waiting.
    pub(crate) fn len(&self) -> usize {
        self.ops.len()
    }

    /// Number of waiting operations issued in `version` or earlier (versions compare
    /// wrap-safely within half the version space).
    pub(crate) fn count_up_to(&self, version: u64) -> usize {
        self.ops
            .values()
            .filter(|op| version.wrapping_sub(op.version) < (1 << 39))
            .count()
    }

    /// Number of waiting operations that write (RMWs).
    pub(crate) fn writes(&self) -> usize {
        self.ops
            .values()
            .filter(|op| matches!(op.kind, Kind::Rmw { .. }))
            .count()
    }

    /// Issues the disk read of `addr` for a new pending operation. On failure the operation
    /// is dropped, its context not called, and the error returned.
    pub(crate) fn start(&mut self, hlog: &Hlog, addr: Address, op: PendingOp) -> Result<()> {
        let id = self.next_id;
        self.next_id += 1;
        self.issue(hlog, id, addr)?;
        self.ops.insert(id, op);
        Ok(())
    }

    /// Issues the next disk read of a pending operation (already removed from the table,
    /// and put back here). On failure its context gets the error and this returns `false`.
    pub(crate) fn resume(&mut self, hlog: &Hlog, id: u64, addr: Address, op: PendingOp) -> bool {
        match self.issue(hlog, id, addr) {
            Ok(()) => {
                self.ops.insert(id, op);
                true
            }
            Err(e) => {
                op.fail(e);
                false
            }
        }
    }

    fn issue(&self, hlog: &Hlog, id: u64, addr: Address) -> Result<()> {
        let tx = self.tx.clone();
        hlog.read_async(addr, move |r| {
            // The session may be gone; then nobody waits for the result.
            let _ = tx.send((id, r));
        })?;
        Ok(())
    }

    /// The next delivered completion and its operation, without blocking.
    pub(crate) fn next_completion(&mut self) -> Option<(u64, PendingOp, HlogResult<DiskRecord>)> {
        while let Ok((id, r)) = self.rx.try_recv() {
            if let Some(op) = self.ops.remove(&id) {
                return Some((id, op, r));
            }
        }
        None
    }

    /// Fails every waiting operation with `error()`.
    pub(crate) fn fail_all(&mut self, error: impl Fn() -> Error) {
        for (_, op) in self.ops.drain() {
            op.fail(error());
        }
    }
}
