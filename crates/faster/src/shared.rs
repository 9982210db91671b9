//! The state one store's handles, sessions and checkpoints share ([`Inner`]), what it is
//! assembled from ([`Parts`]), and the plumbing every room of the facade uses to build it:
//! the epoch, the log device. It imports none of the facade's other rooms but `config`,
//! `error`, `lock`, `growing`, `compacting`, `running` and `space_policy`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use faster_cpr::Cpr;
use faster_device::{Device, DeviceOptions, FileDevice, MemoryDevice};
use faster_epoch::LightEpoch;
use faster_hlog::Hlog;
use faster_index::HashIndex;
use faster_recovery::{IndexPart, LOG_DIR, StoreLayout};

use crate::config::{Config, LogDevice};
use crate::error::{Error, Result};
use crate::lock::DirLock;

/// The file that marks a directory as holding a store.
pub(crate) const MARKER: &str = "FASTER_STORE";

/// Epoch slots beyond `max_sessions`, for participants the layers register themselves
/// (log scans).
const SPARE_EPOCH_SLOTS: usize = 16;

/// State shared by the handles and the sessions of one store.
pub(crate) struct Inner {
    pub(crate) hlog: Hlog,
    pub(crate) index: HashIndex,
    pub(crate) epoch: LightEpoch,
    /// The checkpoint state machine; its state's version is the store's version.
    pub(crate) cpr: Cpr,
    /// Where checkpoints live.
    pub(crate) layout: StoreLayout,
    /// The index part of the latest full or index-only checkpoint (log-only checkpoints
    /// refer to it).
    pub(crate) last_index: Mutex<Option<IndexPart>>,
    pub(crate) checkpoint_timeout: Duration,
    /// Segment size of the checkpoint files (index, snapshot).
    pub(crate) checkpoint_segment_size: u64,
    pub(crate) closed: AtomicBool,
    /// Live [`FasterKv`] handles; the last one to drop closes the store.
    pub(crate) handles: AtomicUsize,
    pub(crate) next_session: AtomicU64,
    /// The sessions of the recovered checkpoint: id -> (serial, continued already).
    pub(crate) recovered: Mutex<HashMap<u64, (u64, bool)>>,
    pub(crate) dir: PathBuf,
    /// The segment size of the log's own files in `<dir>/log` (recorded by checkpoints);
    /// `None` for a device of the caller's or in memory.
    pub(crate) log_segment_size: Option<u64>,
    /// Whether an index growth runs (checkpoints wait for it).
    pub(crate) growing: Arc<crate::growing::Growing>,
    /// Whether sessions start index growth by themselves ([`Config::with_index_growth`]).
    pub(crate) auto_grow: bool,
    /// What is kept on disk and when the rest is reclaimed.
    pub(crate) space: crate::space_policy::SpacePolicy,
    /// Compaction's state (whether one runs, the live estimate, history); an `Arc`, so that
    /// a compaction's thread lets go of the store before it signals its end.
    pub(crate) compacting: Arc<crate::compacting::Compacting>,
    /// Whether a checkpoint runs (a shift waits for it).
    pub(crate) checkpointing: crate::running::Running,
    /// The bytes of the kept checkpoints, measured at the last reclaim.
    pub(crate) checkpoint_bytes: AtomicU64,
    /// The ids of the store's own sessions (the compaction's): their cuts are left out of
    /// checkpoints, since their operations never change what a key holds.
    pub(crate) internal_sessions: Mutex<std::collections::HashSet<u64>>,
    /// The directory's lock, released when the store is freed.
    _lock: DirLock,
}

/// What a store is assembled from: fresh parts ([`FasterKv::open`]) or recovered ones
/// ([`FasterKv::recover`]).
pub(crate) struct Parts {
    pub(crate) hlog: Hlog,
    pub(crate) index: HashIndex,
    pub(crate) epoch: LightEpoch,
    /// The CPR version sessions start in.
    pub(crate) version: u64,
    pub(crate) last_index: Option<IndexPart>,
    /// Recovered `(id, serial)` pairs.
    pub(crate) sessions: Vec<(u64, u64)>,
    /// The directory's lock, taken before anything in it was read.
    pub(crate) lock: DirLock,
    /// See [`Inner::log_segment_size`].
    pub(crate) log_segment_size: Option<u64>,
}

impl Inner {
    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// What a driver (checkpoint or growth) does while it waits for sessions: finish the log
    /// device's completed I/O. Returns whether I/O is still in flight.
    pub(crate) fn help_io(&self) -> bool {
        let device = self.hlog.device();
        let _ = device.poll();
        device.in_flight() > 0
    }
}

impl Inner {
    /// Waits for the action running in `phase` (a growth, a shift, a checkpoint) to end.
    /// Each action's flag is set just after it claims the state machine, so the wait may
    /// return at once; the caller tries its claim again.
    pub(crate) fn wait_for_action(&self, phase: faster_cpr::Phase) {
        if phase.is_growth() {
            self.growing.wait_idle();
        } else if phase.is_shift() {
            self.compacting.shifting.wait_idle();
        } else {
            self.checkpointing.wait_idle();
        }
    }
}

pub(crate) use faster_sync::lock_std as lock;

impl Inner {
    /// The store made of `parts`: its CPR machine starts at rest in `parts.version`, new
    /// session ids above every recovered one (recovery bounds those by
    /// [`faster_recovery::MAX_SESSION_ID`], so the next one exists).
    pub(crate) fn assemble(config: &Config, parts: Parts) -> Inner {
        let observer = config
            .phase_observer
            .clone()
            .map(|o| Box::new(move |s: faster_cpr::SystemState| o(s)) as faster_cpr::PhaseObserver);
        let cpr = Cpr::new(parts.epoch.clone(), parts.version, observer);
        // A page turn that waits for an idle session's protection (the session will not
        // refresh until it calls again: it may be the very thread waiting for a
        // compaction or a checkpoint) clears it, as a checkpoint's WAIT_FLUSH does.
        let release = cpr.clone();
        parts
            .hlog
            .set_stall_hook(Box::new(move || release.release_idle()));
        let next = parts
            .sessions
            .iter()
            .map(|s| s.0.saturating_add(1))
            .max()
            .unwrap_or(1);
        let recovered = parts
            .sessions
            .iter()
            .map(|&(id, t)| (id, (t, false)))
            .collect();
        parts.index.set_memory_limit(config.index_memory_limit());
        Inner {
            hlog: parts.hlog,
            index: parts.index,
            epoch: parts.epoch,
            cpr,
            layout: StoreLayout::new(&config.dir),
            last_index: Mutex::new(parts.last_index),
            checkpoint_timeout: config.checkpoint_timeout,
            checkpoint_segment_size: config.device_options.segment_size,
            closed: AtomicBool::new(false),
            handles: AtomicUsize::new(1),
            next_session: AtomicU64::new(next.max(1)),
            recovered: Mutex::new(recovered),
            dir: config.dir.clone(),
            log_segment_size: parts.log_segment_size,
            growing: Default::default(),
            auto_grow: config.index_growth,
            space: config.space,
            compacting: Default::default(),
            checkpointing: Default::default(),
            checkpoint_bytes: AtomicU64::new(0),
            internal_sessions: Mutex::new(Default::default()),
            _lock: parts.lock,
        }
    }
}

/// The epoch of a store: a slot per session and spare ones for scans.
pub(crate) fn new_epoch(config: &Config) -> Result<LightEpoch> {
    Ok(LightEpoch::with_capacity(
        config.max_sessions + SPARE_EPOCH_SLOTS,
        faster_epoch::DEFAULT_DRAIN_LIST,
    )?)
}

/// The segment size of the log's own files, if the log lives in `<dir>/log`.
pub(crate) fn log_segment_size(config: &Config) -> Option<u64> {
    (config.custom_device.is_none() && config.device != LogDevice::Memory)
        .then_some(config.device_options.segment_size)
}

pub(crate) fn open_device(config: &Config, log_dir: &Path) -> Result<Arc<dyn Device>> {
    if let Some(d) = &config.custom_device {
        return Ok(d.clone());
    }
    let options: DeviceOptions = config.device_options.clone().with_base_name(LOG_DIR);
    // The log directory is never a symbolic link (nor is anything below the store's).
    let create = || {
        faster_device::nofollow::ensure_dirs_below(&config.dir, log_dir)
            .map_err(|source| Error::io("creating the log directory", log_dir, source))
    };
    Ok(match config.device {
        LogDevice::Memory => Arc::new(MemoryDevice::new(options)?),
        LogDevice::File => {
            create()?;
            Arc::new(FileDevice::open(log_dir, options)?)
        }
        LogDevice::Auto => {
            create()?;
            Arc::from(faster_device::open_default(log_dir, options)?)
        }
        LogDevice::IoUring => {
            create()?;
            open_uring(log_dir, options)?
        }
    })
}

#[cfg(target_os = "linux")]
fn open_uring(dir: &Path, options: DeviceOptions) -> Result<Arc<dyn Device>> {
    Ok(Arc::new(faster_device::UringDevice::open(dir, options)?))
}

#[cfg(not(target_os = "linux"))]
fn open_uring(_dir: &Path, _options: DeviceOptions) -> Result<Arc<dyn Device>> {
    Err(Error::InvalidConfig(
        "the io_uring device exists only on Linux".into(),
    ))
}
