//! Operations that wait for disk reads without blocking: `read_async`, `rmw_async`, and
//! `complete_pending`, which finishes them.

use super::queue::{Kind, Pending, PendingOp};
use super::single::rmw_blocking;
use super::{Parts, Session, Status};
use crate::error::{Error, Result};
use crate::ops::read::{self, ReadOutcome};
use crate::ops::rmw::{self, FromDisk, RmwOutcome};
use crate::ops::{self, Chase, Ctx, Cx, Shift};
use crate::rmw::Rmw;

impl Session {
    /// Reads `key` without blocking on disk: `ctx` gets the value (or `None`, or the error)
    /// exactly once — before this returns [`Status::Done`], or from
    /// [`Session::complete_pending`] after [`Status::Pending`]. If this returns `Err`, `ctx`
    /// is never called.
    pub fn read_async(
        &mut self,
        key: &[u8],
        ctx: impl FnOnce(Result<Option<Vec<u8>>>) + Send + 'static,
    ) -> Result<Status> {
        let probe = self.probe_of(key);
        let mut ctx = Some(ctx);
        self.op(|p| {
            Ok(match read::read(&p.op.reborrow(), key, probe)? {
                ReadOutcome::Shift => Err(Shift),
                ReadOutcome::Done(v) => {
                    if let Some(ctx) = ctx.take() {
                        ctx(Ok(v));
                    }
                    Ok(Status::Done)
                }
                ReadOutcome::Disk(addr) => {
                    let Some(ctx) = ctx.take() else {
                        return Ok(Ok(Status::Done));
                    };
                    let op = PendingOp {
                        key: key.to_vec(),
                        hash: probe.hash,
                        version: p.cx_version(),
                        kind: Kind::Read(Box::new(ctx)),
                    };
                    p.pending.start(&p.op.inner.hlog, addr, op)?;
                    Ok(Status::Pending)
                }
            })
        })
    }

    /// Read-modify-write without blocking on disk: `ctx` is called exactly once when the
    /// update is installed (or fails) — before this returns [`Status::Done`], or from
    /// [`Session::complete_pending`] after [`Status::Pending`]. If this returns `Err`, `ctx`
    /// is never called.
    ///
    /// While a checkpoint is in its PREPARE phase, an RMW whose old value is on disk does
    /// not go pending: it completes blocking and returns [`Status::Done`] (a write pending
    /// across the checkpoint's cut could otherwise complete after newer writes to its key).
    pub fn rmw_async<R: Rmw + Send + 'static>(
        &mut self,
        key: &[u8],
        input: &[u8],
        rmw: R,
        ctx: impl FnOnce(Result<()>) + Send + 'static,
    ) -> Result<Status> {
        let probe = self.probe_of(key);
        let mut ctx = Some(ctx);
        let mut rmw = Some(rmw);
        self.op(|p| {
            let Some(f) = rmw.as_ref() else {
                return Ok(Ok(Status::Done));
            };
            if p.op.cx.no_pending_writes {
                let done = rmw_blocking::<false, _>(p, key, probe, input, f)?;
                if done.is_ok() {
                    if let Some(ctx) = ctx.take() {
                        ctx(Ok(()));
                    }
                }
                return Ok(done.map(|()| Status::Done));
            }
            Ok(
                match rmw::rmw(&mut p.op, p.scratch, key, probe, input, f)? {
                    Err(Shift) => Err(Shift),
                    Ok(RmwOutcome::Done) => {
                        if let Some(ctx) = ctx.take() {
                            ctx(Ok(()));
                        }
                        Ok(Status::Done)
                    }
                    Ok(RmwOutcome::Disk { addr, snapshot }) => {
                        let (Some(ctx), Some(f)) = (ctx.take(), rmw.take()) else {
                            return Ok(Ok(Status::Done));
                        };
                        let op = PendingOp {
                            key: key.to_vec(),
                            hash: probe.hash,
                            version: p.cx_version(),
                            kind: Kind::Rmw {
                                input: input.to_vec(),
                                rmw: Box::new(f),
                                snapshot,
                                ctx: Box::new(ctx),
                            },
                        };
                        p.pending.start(&p.op.inner.hlog, addr, op)?;
                        Ok(Status::Pending)
                    }
                },
            )
        })
    }

    /// Finishes pending operations whose disk reads have completed, calling their contexts;
    /// with `wait`, blocks until none is left. Returns how many finished.
    ///
    /// An operation may need several disk reads (its chain continues on disk, or an RMW
    /// finds that a newer record appeared meanwhile and starts over); it stays pending until
    /// the last. Errors of an operation go to its context; an `Err` from this method is a
    /// device failure while driving I/O, or [`Error::Closed`] (every waiting context is then
    /// called with [`Error::Closed`]).
    ///
    /// This is also where a session acknowledges a checkpoint's WAIT_PENDING phase, once its
    /// operations issued before its cut have finished.
    pub fn complete_pending(&mut self, wait: bool) -> Result<usize> {
        if let Err(e) = self.enter() {
            self.pending.fail_all(|| Error::Closed);
            return Err(e);
        }
        let r = match self.parts() {
            Some(mut p) => finish_pending(&mut p, wait, |pending| pending.len() == 0),
            None => Err(Error::Closed),
        };
        self.exit();
        r
    }
}

/// Processes pending completions (driving the device) until `done(pending)` holds, or
/// once if not `wait`. Returns how many operations finished.
pub(super) fn finish_pending(
    p: &mut Parts<'_>,
    wait: bool,
    done: impl Fn(&Pending) -> bool,
) -> Result<usize> {
    let mut finished = 0;
    loop {
        let device = p.op.inner.hlog.device();
        let polled = device.poll()?;
        while let Some((id, op, r)) = p.pending.next_completion() {
            finished += process(p, id, op, r);
        }
        if done(p.pending) || !wait {
            return Ok(finished);
        }
        if polled == 0 {
            p.op.guard.refresh();
            if device.in_flight() > 0 {
                device.wait()?;
            } else {
                std::thread::yield_now();
            }
        }
    }
}

/// Handles the completion of a pending operation's disk read: follows the chain, or
/// finishes the operation. Returns 1 if the operation finished (its context was called).
fn process(
    p: &mut Parts<'_>,
    id: u64,
    op: PendingOp,
    r: faster_hlog::Result<faster_hlog::DiskRecord>,
) -> usize {
    let rec = match r {
        Ok(rec) => rec,
        Err(e) => {
            op.fail(e.into());
            return 1;
        }
    };
    let PendingOp {
        key,
        hash,
        version,
        kind,
    } = op;
    let step = ops::chase_step(&p.op.inner.hlog, &key, &rec);
    drop(rec);
    // The operation goes on with another disk read at `addr`: 0, or 1 if that read could
    // not be issued (the context got the error).
    let resume = |p: &mut Parts<'_>, key, kind, addr| {
        let op = PendingOp {
            key,
            hash,
            version,
            kind,
        };
        usize::from(!p.pending.resume(&p.op.inner.hlog, id, addr, op))
    };
    match (step, kind) {
        (Chase::Next(addr), kind) => resume(p, key, kind, addr),
        (Chase::Done(v, _), Kind::Read(ctx)) => {
            ctx(Ok(v));
            1
        }
        (
            Chase::Done(old, old_version),
            Kind::Rmw {
                input,
                rmw,
                snapshot,
                ctx,
            },
        ) => {
            // Pending writes never exist in PREPARE (the only phase that detects shifts):
            // the session finishes them before it acknowledges PREPARE and does not send
            // writes pending during it. So completions run without shift detection.
            let mut c = Ctx {
                inner: p.op.inner,
                guard: &mut *p.op.guard,
                cx: Cx {
                    detect_shift: false,
                    ..p.op.cx
                },
            };
            let read = FromDisk {
                old,
                old_version,
                snapshot,
            };
            match rmw::rmw_after_disk(&mut c, p.scratch, &key, hash, &input, &*rmw, read) {
                Ok(Ok(RmwOutcome::Done)) => {
                    ctx(Ok(()));
                    1
                }
                Ok(Err(Shift)) => unreachable!("shift detection is off for completions"),
                Ok(Ok(RmwOutcome::Disk { addr, snapshot })) => {
                    let kind = Kind::Rmw {
                        input,
                        rmw,
                        snapshot,
                        ctx,
                    };
                    resume(p, key, kind, addr)
                }
                Err(e) => {
                    ctx(Err(e));
                    1
                }
            }
        }
    }
}
