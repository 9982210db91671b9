//! [`FasterKv`]: the store handle: opening a store, sessions, checkpoints, closing.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use faster_hlog::Hlog;
use faster_index::HashIndex;
use faster_recovery::StoreLayout;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::lock::DirLock;
use crate::session::Session;
use crate::shared::{Inner, MARKER, Parts, log_segment_size, new_epoch, open_device};

/// A FASTER key-value store: a cheap handle (`Clone + Send + Sync`, an `Arc` inside).
///
/// Operations go through [`Session`]s ([`FasterKv::start_session`]), one per thread. See the
/// [crate documentation](crate) for the model.
pub struct FasterKv {
    pub(crate) inner: Arc<Inner>,
}

impl FasterKv {
    /// Creates a new store in `config`'s directory (creating the directory if missing); the
    /// log's device lives in `<dir>/log/`.
    ///
    /// The store locks the directory for its life (`<dir>/LOCK`, see [`Error::InUse`]): a
    /// second open of it, in this process or another, fails at once with [`Error::InUse`];
    /// the lock goes when the store is freed (its last handle and session dropped) or its
    /// process dies.
    ///
    /// Fails with [`Error::AlreadyExists`] if the directory already holds a store (recover it
    /// with [`FasterKv::recover`]; nothing is touched), with [`Error::Symlink`] if a path the
    /// store keeps inside the directory is a symbolic link, and with the layers' errors if
    /// the configuration is invalid or the device cannot be opened.
    pub fn open(config: Config) -> Result<FasterKv> {
        config.validate()?;
        let dir = config.dir.clone();
        fs::create_dir_all(&dir).map_err(|source| Error::Io {
            what: "creating the store directory",
            path: dir.clone(),
            source,
        })?;
        let lock = DirLock::acquire(&dir)?;
        let marker = dir.join(MARKER);
        let log_dir = StoreLayout::new(&dir).log_dir();
        if fs::symlink_metadata(&marker).is_ok() || dir_has_entries(&log_dir) {
            return Err(Error::AlreadyExists { path: dir });
        }
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&marker)
        {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                return Err(Error::AlreadyExists { path: dir });
            }
            Err(source) => {
                return Err(Error::Io {
                    what: "creating",
                    path: marker,
                    source,
                });
            }
        }
        let result = Self::build(&config, &log_dir, lock);
        if result.is_err() {
            // Nothing was stored: leave the directory reusable.
            let _ = fs::remove_file(&marker);
        }
        result
    }

    fn build(config: &Config, log_dir: &Path, lock: DirLock) -> Result<FasterKv> {
        let device = open_device(config, log_dir)?;
        let epoch = new_epoch(config)?;
        let hlog = Hlog::new(config.hlog_config(), device, epoch.clone())?;
        let index = HashIndex::new(config.index_config())?;
        let parts = Parts {
            hlog,
            index,
            epoch,
            version: 1,
            last_index: None,
            sessions: Vec::new(),
            lock,
            log_segment_size: log_segment_size(config),
        };
        Ok(Self::assemble(config, parts))
    }

    /// The store made of `parts` (see [`Inner::assemble`]).
    pub(crate) fn assemble(config: &Config, parts: Parts) -> FasterKv {
        FasterKv {
            inner: Arc::new(Inner::assemble(config, parts)),
        }
    }

    /// Starts a session: a thread's context for operations, holding an epoch slot.
    ///
    /// # Panics
    ///
    /// If [`Config::with_max_sessions`] sessions are alive already; use
    /// [`FasterKv::try_start_session`] to get an error instead. On a closed store it returns
    /// a session whose operations fail with [`Error::Closed`].
    pub fn start_session(&self) -> Session {
        match self.try_start_session() {
            Ok(s) => s,
            Err(Error::Closed) => Session::closed(self.inner.clone(), 0),
            Err(e) => panic!("cannot start a session: {e}"),
        }
    }

    /// Starts a session, or fails with [`Error::Epoch`] when the epoch table is full (too
    /// many live sessions), [`Error::Closed`] when the store is closed, and
    /// [`Error::SessionIdsExhausted`] after [`faster_recovery::MAX_SESSION_ID`] sessions.
    pub fn try_start_session(&self) -> Result<Session> {
        if self.inner.is_closed() {
            return Err(Error::Closed);
        }
        let participant = self.inner.epoch.register()?;
        let id = self.next_id()?;
        Ok(Session::new(self.inner.clone(), id, participant))
    }

    /// The next session id (never reused, never past [`faster_recovery::MAX_SESSION_ID`]).
    fn next_id(&self) -> Result<u64> {
        self.inner
            .next_session
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n <= faster_recovery::MAX_SESSION_ID).then_some(n + 1)
            })
            .map_err(|_| Error::SessionIdsExhausted)
    }

    /// Closes the store: from now on every session operation fails with [`Error::Closed`]
    /// (operations already running finish). Memory is freed when the last handle and the
    /// last session are dropped. Dropping the last handle closes the store too.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
    }

    /// Whether the store is closed.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    /// The store's version: the version sessions work in at rest (a new store starts at 1;
    /// each checkpoint, completed or abandoned, moves it on by one). Records carry its low
    /// 32 bits.
    pub fn version(&self) -> u64 {
        self.inner.cpr.state().session_version()
    }

    /// The checkpoint state machine's current state (phase and version).
    pub fn checkpoint_state(&self) -> faster_cpr::SystemState {
        self.inner.cpr.state()
    }

    /// Starts a full fold-over checkpoint of the index and the log, on a thread of its own;
    /// sessions keep working. `handle.wait()` returns its [`crate::CheckpointInfo`] (every
    /// session's cut) once it is durable, or why it failed.
    ///
    /// Callable from any thread, with or without a session. A session on the waiting thread
    /// is acknowledged on its behalf while it is idle, **unless it has pending operations**:
    /// complete them first, or the checkpoint times out. Fails at once with
    /// [`Error::CheckpointInProgress`] if a checkpoint is running.
    ///
    /// ```
    /// # use faster::{Config, FasterKv, LogDevice};
    /// # let dir = tempfile::tempdir()?;
    /// # let config = Config::new(dir.path()).with_log_device(LogDevice::Memory)
    /// #     .with_log_memory(1 << 20).with_page_size(64 << 10).with_table_bits(10);
    /// let store = FasterKv::open(config)?;
    /// let mut s = store.start_session();
    /// s.upsert(b"k", b"v")?;
    /// let info = store.checkpoint()?.wait()?;
    /// assert_eq!(info.sessions, [(s.id(), 1)]); // s's operations up to serial 1 are in it
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn checkpoint(&self) -> Result<crate::CheckpointHandle> {
        self.checkpoint_with(crate::CheckpointOptions::full())
    }

    /// Starts a checkpoint with `options`: full, index-only or log-only, with the log
    /// captured by fold-over or by snapshot (see [`crate::CheckpointOptions`]).
    ///
    /// **One checkpoint at a time.** A request made while a checkpoint runs (of any kind,
    /// requested from any thread) fails at once with [`Error::CheckpointInProgress`]: it
    /// never waits for, joins or drives the running one, whose own thread alone takes it to
    /// its end. Retry after the running checkpoint's handle reports it finished. A
    /// checkpoint that is waiting for sessions when the store is closed fails with
    /// [`Error::Closed`].
    ///
    /// **Index growth, shifts.** A checkpoint never overlaps an index growth or a shift of
    /// the log's begin address (they share the state machine). A request made during one
    /// waits for it to end (both are short: the split of the table; freeing index entries
    /// and deleting files), then starts. A compaction's copying does not hold checkpoints up;
    /// a request made while the checkpoint a compaction takes after its shift runs
    /// ([`Config::with_checkpoint_after_compaction`]) waits for it too.
    ///
    /// **Retention.** Once the checkpoint is durable, checkpoints beyond the newest
    /// [`Config::with_checkpoints_kept`] are removed, and the log's files below what the kept
    /// ones need are deleted.
    pub fn checkpoint_with(
        &self,
        options: crate::CheckpointOptions,
    ) -> Result<crate::CheckpointHandle> {
        loop {
            if self.inner.is_closed() {
                return Err(Error::Closed);
            }
            match crate::checkpoint::start(self.inner.clone(), options) {
                Err(Error::CheckpointInProgress { phase, .. })
                    if phase.is_growth()
                        || phase.is_shift()
                        || self.inner.compacting.checkpointing.load(Ordering::Acquire) =>
                {
                    self.inner.wait_for_action(phase);
                }
                r => return r,
            }
        }
    }

    /// Doubles the index now, on a thread of its own, while sessions keep working (they
    /// pause between operations while the table splits, and help split it). Returns a handle
    /// to wait on, once the growth has mapped its doubled table (zeroing it takes about
    /// 0.1 s per 2^20 buckets here; sessions keep working meanwhile) and claimed the state
    /// machine. Fails at once with [`Error::GrowthInProgress`] if a growth runs,
    /// [`Error::CheckpointInProgress`] during a checkpoint, and [`Error::Index`]
    /// (`IndexError::MemoryLimit`) if the doubled table would pass the index's memory limit
    /// ([`crate::Config::with_index_memory_limit`]). The index also grows by itself as it
    /// fills ([`crate::Config::with_index_growth`]). Like every action of the state
    /// machine, a growth ends in the next version ([`FasterKv::version`]): the versions of
    /// later checkpoints skip one.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let store = faster::FasterKv::open(faster::Config::new(dir.path()).with_table_bits(4))?;
    /// let info = store.grow_index()?.wait()?;
    /// assert_eq!((info.from_bits, info.to_bits), (4, 5));
    /// assert_eq!(store.index().table_bits(), 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn grow_index(&self) -> Result<crate::GrowHandle> {
        crate::grow::start(self.inner.clone(), true)
    }

    /// Compacts the log's front: copies every live record of `[begin, until)` to the tail
    /// and then moves the begin address to `until`, on a thread of its own, while sessions
    /// keep working. `until` is rounded down to a page and lowered to the safe read-only
    /// address (the mutable part of the log is never compacted); `None` compacts all it
    /// can. A record is live if it is its key's newest and not a tombstone; a user's write
    /// that lands during the compaction always wins over the copy. Tombstones are dropped
    /// (their key's older records are all below `until` too).
    ///
    /// The shift at the end is an action of the state machine: it waits for a running
    /// checkpoint or growth, and for every session to pass an operation boundary with
    /// nothing pending (a session that keeps operations pending without completing them
    /// times it out: [`Error::ShiftTimeout`]). The log's files below the new begin are
    /// deleted once no kept checkpoint needs them ([`Config::with_checkpoints_kept`]): at
    /// once without checkpoints, else at later checkpoints. Fails at once with
    /// [`Error::CompactionInProgress`] if a compaction runs (the store also compacts by
    /// itself: [`Config::with_auto_compaction`]).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// # let config = faster::Config::new(dir.path()).with_log_memory(1 << 20)
    /// #     .with_page_size(64 << 10).with_auto_compaction(false);
    /// let store = faster::FasterKv::open(config)?;
    /// let mut s = store.start_session();
    /// for round in 0..3u64 {
    ///     for k in 0..20_000u64 {
    ///         s.upsert(&k.to_le_bytes(), &[round as u8; 100])?;
    ///     }
    /// }
    /// let info = store.compact(None)?.wait()?;
    /// assert!(info.until > info.from && store.hlog().begin_address().raw() == info.until);
    /// assert_eq!(s.read(&7u64.to_le_bytes())?, Some(vec![2; 100]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn compact(&self, until: Option<faster_hlog::Address>) -> Result<crate::CompactHandle> {
        crate::compact::start(self.inner.clone(), until)
    }

    /// Moves the log's begin address up to `addr` (rounded down to a page, at most the safe
    /// read-only address) without copying anything: every record below it is gone, as if
    /// its key had no value there (keys whose newest record lies below it read as missing).
    /// Blocks until the shift is done; returns the begin address after it. The log's files
    /// below it are deleted once no kept checkpoint needs them. The same state-machine
    /// action as a compaction's shift (see [`FasterKv::compact`]).
    pub fn shift_begin_address(&self, addr: faster_hlog::Address) -> Result<faster_hlog::Address> {
        let hlog = &self.inner.hlog;
        let page = hlog.page_size();
        let to = addr.min(hlog.safe_read_only_address());
        let to = faster_hlog::Address::from_raw_truncated(to.raw() / page * page);
        let shifted = crate::shift::shift(&self.inner, to)?;
        Ok(faster_hlog::Address::from_raw_truncated(shifted.begin))
    }

    /// Where the store's space goes: the log's begin, truncation point and tail, the live
    /// estimate, and the bytes on disk by part (measured now).
    pub fn space(&self) -> Result<crate::SpaceStats> {
        let hlog = &self.inner.hlog;
        let live = self.inner.compacting.live_estimate.load(Ordering::Relaxed);
        Ok(crate::SpaceStats {
            begin: hlog.begin_address().raw(),
            truncated: hlog.truncated_address().raw(),
            tail: hlog.tail_address().raw(),
            live_estimate: (live > 0).then_some(live),
            disk: crate::DiskUsage::of(&self.inner.dir)?,
            compactions: self.inner.compacting.count.load(Ordering::Relaxed),
        })
    }

    /// What the last compactions did (up to 64), oldest first (automatic ones included).
    pub fn compaction_history(&self) -> Vec<crate::CompactInfo> {
        crate::shared::lock(&self.inner.compacting.history).clone()
    }

    /// What every index growth since the store was opened did, oldest first (automatic ones
    /// included).
    pub fn growth_history(&self) -> Vec<crate::GrowInfo> {
        crate::shared::lock(&self.inner.growing.history).clone()
    }

    /// How many index growths have completed since the store was opened.
    pub fn index_growths(&self) -> u64 {
        self.inner
            .growing
            .count
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The hybrid log, for inspection (addresses of its regions, geometry).
    pub fn hlog(&self) -> &Hlog {
        &self.inner.hlog
    }

    /// The hash index, for inspection ([`HashIndex::stats`]).
    pub fn index(&self) -> &HashIndex {
        &self.inner.index
    }
}

impl Clone for FasterKv {
    fn clone(&self) -> Self {
        self.inner.handles.fetch_add(1, Ordering::Relaxed);
        FasterKv {
            inner: self.inner.clone(),
        }
    }
}

impl Drop for FasterKv {
    fn drop(&mut self) {
        if self.inner.handles.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.close();
            // A growth in flight holds the store: it gives up (or, past its split's start,
            // finishes) now that the store is closed, and lets go of it before it ends, so
            // the directory is free again once the last handle is gone (when no session
            // lives on). A compaction gives up at its next record, too.
            self.inner.growing.wait_idle();
            self.inner.compacting.running.wait_idle();
        }
    }
}

impl std::fmt::Debug for FasterKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FasterKv")
            .field("dir", &self.inner.dir)
            .field("closed", &self.is_closed())
            .field("hlog", &self.inner.hlog)
            .finish()
    }
}

fn dir_has_entries(dir: &Path) -> bool {
    fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
}
