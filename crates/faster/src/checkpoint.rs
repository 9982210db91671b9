//! Checkpoints: the store's side of the CPR state machine ([`faster_cpr::CheckpointHooks`]),
//! the options a caller picks, and the handle it waits on.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use faster_cpr::{Action, CheckpointHooks, SessionCut};
use faster_device::{Device, DeviceOptions, FileDevice};
use faster_recovery::{
    CheckpointKind, CheckpointMeta, CheckpointToken, IndexPart, LogMode, SessionRecord,
};

use crate::background::Background;
use crate::error::{Error, Result};
use crate::session_id::SessionId;
use crate::shared::Inner;

/// How a checkpoint makes the log durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum LogCapture {
    /// Fold-over (the default): make the whole log read-only up to the tail, flush it to the
    /// log device and fsync. Records below the cut are copied before their next update.
    #[default]
    FoldOver,
    /// Snapshot: flush nothing extra; write the in-memory part of the log,
    /// `[flushed, final)`, to a snapshot file in the checkpoint directory and fsync it. The
    /// mutable region stays mutable.
    Snapshot,
}

/// The options of [`crate::FasterKv::checkpoint_with`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct CheckpointOptions {
    /// What to capture.
    pub kind: CheckpointKind,
    /// How to capture the log (ignored for [`CheckpointKind::IndexOnly`]).
    pub log: LogCapture,
}

impl CheckpointOptions {
    /// A full fold-over checkpoint.
    pub fn full() -> Self {
        Self::default()
    }

    /// An index-only checkpoint.
    pub fn index_only() -> Self {
        CheckpointOptions {
            kind: CheckpointKind::IndexOnly,
            ..Self::default()
        }
    }

    /// A log-only checkpoint.
    pub fn log_only() -> Self {
        CheckpointOptions {
            kind: CheckpointKind::LogOnly,
            ..Self::default()
        }
    }

    /// The same options with the log captured by `log`.
    pub fn with_log(mut self, log: LogCapture) -> Self {
        self.log = log;
        self
    }
}

/// A completed checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointInfo {
    /// The checkpoint's name (its directory under `<store>/checkpoints/`).
    pub token: String,
    /// The version it captured; sessions now work in `version + 1`.
    pub version: u64,
    /// Every session's cut: the serial of its last operation in the checkpoint. After
    /// recovering this checkpoint, exactly the operations with serials up to these are
    /// present.
    pub sessions: Vec<(SessionId, u64)>,
    /// How long the checkpoint took, from request to durable metadata.
    pub duration: Duration,
    /// Bytes written for the index (0 for a log-only checkpoint).
    pub index_bytes: u64,
    /// Bytes of log made durable by this checkpoint (the flush or the snapshot).
    pub log_bytes: u64,
}

/// A running checkpoint ([`crate::FasterKv::checkpoint`]): it runs on its own thread; sessions
/// keep working.
#[derive(Debug)]
pub struct CheckpointHandle {
    task: Background<CheckpointInfo>,
}

impl CheckpointHandle {
    /// Waits for the checkpoint to end: its info, or why it failed
    /// ([`Error::CheckpointTimeout`], [`Error::CheckpointFailed`]).
    pub fn wait(self) -> Result<CheckpointInfo> {
        self.task.wait(Error::CheckpointPanicked)
    }

    /// Whether the checkpoint has ended ([`CheckpointHandle::wait`] will not block).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }
}

/// Starts the checkpoint thread.
pub(crate) fn start(inner: Arc<Inner>, options: CheckpointOptions) -> Result<CheckpointHandle> {
    let action = match options.kind {
        CheckpointKind::Full => Action::Full,
        CheckpointKind::IndexOnly => Action::IndexOnly,
        CheckpointKind::LogOnly => Action::LogOnly,
    };
    if action == Action::LogOnly && crate::shared::lock(&inner.last_index).is_none() {
        return Err(Error::InvalidConfig(
            "a log-only checkpoint needs an earlier full or index-only checkpoint".into(),
        ));
    }
    // Claim the state machine on the caller's thread, so that a second request fails at
    // once with `CheckpointInProgress`; the checkpoint itself runs on its own thread.
    let started = inner.cpr.begin::<Error>(action).map_err(Error::from_cpr)?;
    inner.checkpointing.claim();
    let task = Background::spawn("faster-checkpoint", "starting the checkpoint thread", {
        let inner = inner.clone();
        move || {
            let r = run(&inner, action, options, started);
            inner.checkpointing.end();
            r
        }
    });
    if task.is_err() {
        inner.checkpointing.end();
    }
    Ok(CheckpointHandle { task: task? })
}

fn run(
    inner: &Arc<Inner>,
    action: Action,
    options: CheckpointOptions,
    claimed: faster_cpr::Started,
) -> Result<CheckpointInfo> {
    let started = Instant::now();
    let mut hooks = StoreHooks::new(inner.clone(), action, options);
    let done = inner
        .cpr
        .finish(claimed, inner.checkpoint_timeout, &mut hooks)
        .map_err(Error::from_cpr)?;
    let token = CheckpointToken::for_version(done.version);
    Ok(CheckpointInfo {
        token: token.as_str().to_string(),
        version: done.version,
        sessions: visible(inner, &done.sessions)
            .iter()
            .map(|c| (SessionId::from_raw(c.id), c.serial))
            .collect(),
        duration: started.elapsed(),
        index_bytes: hooks.index_bytes,
        log_bytes: hooks.log_bytes,
    })
}

/// The cuts of the users' sessions: the store's own (the compaction's) are left out, since
/// their operations never change what a key holds.
fn visible(inner: &Inner, cuts: &[SessionCut]) -> Vec<SessionCut> {
    let internal = crate::shared::lock(&inner.internal_sessions);
    cuts.iter()
        .filter(|c| !internal.contains(&c.id))
        .copied()
        .collect()
}

/// The store's work in the driver's phases.
struct StoreHooks {
    inner: Arc<Inner>,
    action: Action,
    options: CheckpointOptions,
    token: CheckpointToken,
    begin: u64,
    start: u64,
    flushed: u64,
    final_address: u64,
    snapshot: Option<(u64, u64)>,
    index_part: Option<IndexPart>,
    index_bytes: u64,
    log_bytes: u64,
    /// The driver's epoch guard while it flushes (an observer: it never holds a phase).
    flush_guard: Option<faster_epoch::Guard<faster_epoch::Participant>>,
    /// The end of the log capture: the tail when WAIT_FLUSH began (the fold-over flush's
    /// target, the snapshot's end).
    flush_target: Option<faster_hlog::Address>,
    flushed_before: u64,
}

impl StoreHooks {
    fn new(inner: Arc<Inner>, action: Action, options: CheckpointOptions) -> Self {
        StoreHooks {
            inner,
            action,
            options,
            token: CheckpointToken::for_version(0),
            begin: 0,
            start: 0,
            flushed: 0,
            final_address: 0,
            snapshot: None,
            index_part: None,
            index_bytes: 0,
            log_bytes: 0,
            flush_guard: None,
            flush_target: None,
            flushed_before: 0,
        }
    }

    fn file_device(&self, dir: &std::path::Path, base: &str) -> Result<FileDevice> {
        self.inner.layout.ensure_dir(dir)?;
        let options = DeviceOptions::default()
            .with_base_name(base)
            .with_segment_size(self.inner.checkpoint_segment_size);
        Ok(FileDevice::open(dir, options)?)
    }

    fn meta(&self, sessions: &[SessionCut]) -> CheckpointMeta {
        let hlog = &self.inner.hlog;
        let (kind, log_mode) = match self.action {
            Action::IndexOnly => (CheckpointKind::IndexOnly, None),
            Action::LogOnly => (CheckpointKind::LogOnly, Some(self.log_mode())),
            _ => (CheckpointKind::Full, Some(self.log_mode())),
        };
        let final_address = if log_mode.is_some() {
            self.final_address
        } else {
            self.start
        };
        CheckpointMeta {
            token: self.token,
            version: self.token.version(),
            kind,
            log_mode,
            created_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
            begin_address: self.begin,
            start_address: self.start,
            flushed_address: if log_mode.is_some() {
                self.flushed
            } else {
                self.begin.max(self.flushed.min(self.start))
            },
            final_address,
            snapshot_start: self.snapshot.map(|s| s.0),
            snapshot_segment_size: self.snapshot.map(|s| s.1),
            log_bytes_written: self.log_bytes,
            index: self.index_part.clone(),
            index_bytes_written: self.index_bytes,
            sessions: visible(&self.inner, sessions)
                .iter()
                .map(|c| SessionRecord {
                    id: c.id,
                    serial: c.serial,
                    issued: c.issued,
                })
                .collect(),
            page_size: hlog.page_size(),
            log_segment_size: self.inner.log_segment_size,
        }
    }

    /// Writes the metadata, makes the index the one later log-only checkpoints use, and
    /// reclaims space: checkpoints beyond those kept, the log below what the kept ones need.
    /// A failed reclaim leaves more on disk, nothing lost; the checkpoint stands.
    fn commit(&self, meta: &CheckpointMeta) -> Result<()> {
        self.inner.layout.write_meta(meta)?;
        self.publish_index();
        if let Err(e) = crate::space::reclaim(&self.inner, Some(self.token)) {
            log::warn!(
                "reclaiming disk space after checkpoint {} failed: {e}",
                self.token
            );
        }
        Ok(())
    }

    /// Makes this checkpoint's index the one later log-only checkpoints use, once its
    /// metadata is durable and before the state machine returns to rest (so a checkpoint
    /// requested right after this one ends sees it).
    fn publish_index(&self) {
        if self.action != Action::LogOnly
            && let Some(part) = self.index_part.clone()
        {
            *crate::shared::lock(&self.inner.last_index) = Some(part);
        }
    }

    fn log_mode(&self) -> LogMode {
        match self.options.log {
            LogCapture::FoldOver => LogMode::FoldOver,
            LogCapture::Snapshot => LogMode::Snapshot,
        }
    }
}

impl CheckpointHooks for StoreHooks {
    type Error = Error;

    fn start(&mut self, _action: Action, version: u64) -> Result<()> {
        self.token = CheckpointToken::for_version(version);
        let hlog = &self.inner.hlog;
        self.begin = hlog.begin_address().raw();
        self.start = hlog.tail_address().raw();
        self.flushed = hlog.flushed_until_address().raw();
        if self.action == Action::LogOnly {
            self.index_part = crate::shared::lock(&self.inner.last_index).clone();
        }
        let dir = self.inner.layout.checkpoint_dir(&self.token);
        Ok(self.inner.layout.ensure_dir(&dir)?)
    }

    fn write_index(&mut self, _version: u64) -> Result<()> {
        let dir = self.inner.layout.index_dir(&self.token);
        let device = self.file_device(&dir, "index")?;
        let info = self.inner.index.checkpoint(&device, 0)?;
        device.flush()?;
        self.index_bytes = info.end_offset;
        self.index_part = Some(IndexPart {
            token: self.token,
            info,
            start_address: self.start,
            segment_size: self.inner.checkpoint_segment_size,
        });
        if self.action == Action::IndexOnly {
            self.commit(&self.meta(&[]))?;
        }
        Ok(())
    }

    fn write_log(&mut self, _version: u64) -> Result<bool> {
        let inner = self.inner.clone();
        let hlog = &inner.hlog;
        let mut guard = match self.flush_guard.take() {
            Some(g) => g,
            None => inner.epoch.register_observer()?.into_guard(),
        };
        match self.options.log {
            LogCapture::FoldOver => {
                let target = match self.flush_target {
                    Some(t) => t,
                    None => {
                        self.flushed_before = hlog.flushed_until_address().raw();
                        let t = hlog.shift_read_only_to_tail(&mut guard);
                        self.flush_target = Some(t);
                        t
                    }
                };
                if !hlog.try_flush_until(&mut guard, target)? {
                    self.flush_guard = Some(guard);
                    return Ok(false);
                }
                hlog.device().flush()?;
                self.final_address = target.raw();
                self.flushed = hlog.flushed_until_address().raw().min(target.raw());
                self.log_bytes = target.raw().saturating_sub(self.flushed_before);
            }
            LogCapture::Snapshot => {
                // The snapshot ends at the tail as of WAIT_FLUSH; records allocated below it
                // may still be being written (by sessions already in v + 1): wait until they
                // are, so the copy holds no half-written record.
                let tail = *self.flush_target.get_or_insert_with(|| hlog.tail_address());
                if !hlog.try_wait_written(&mut guard, tail) {
                    self.flush_guard = Some(guard);
                    return Ok(false);
                }
                // Nothing flushed yet means the snapshot starts at the log's beginning.
                let from = hlog
                    .flushed_until_address()
                    .max(hlog.begin_address())
                    .min(tail);
                hlog.device().flush()?;
                let dir = self.inner.layout.snapshot_dir(&self.token);
                let device = self.file_device(&dir, "snapshot")?;
                let info = hlog.snapshot_to(&mut guard, &device, from, tail)?;
                self.final_address = tail.raw();
                self.flushed = from.raw();
                self.snapshot = Some((info.base.raw(), self.inner.checkpoint_segment_size));
                self.log_bytes = info.bytes_written;
            }
        }
        Ok(true)
    }

    fn write_metadata(&mut self, _version: u64, sessions: &[SessionCut]) -> Result<()> {
        self.commit(&self.meta(sessions))
    }

    fn abort(&mut self, _version: u64) {
        if let Err(e) = self.inner.layout.remove_checkpoint(&self.token) {
            log::warn!(
                "could not remove the abandoned checkpoint {}: {e}",
                self.token
            );
        }
    }

    fn help(&mut self) -> bool {
        self.inner.help_io()
    }

    /// A closed store never completes the operations a checkpoint may wait for.
    fn cancelled(&mut self) -> bool {
        self.inner.is_closed()
    }
}
