//! [`Config`]: where the store lives and how big its parts are.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use faster_device::{Device, DeviceOptions};
use faster_hlog::HlogConfig;
use faster_index::IndexConfig;
use faster_recovery::RecoveryPolicy;

use crate::error::{Error, Result};
use crate::space_policy::{DEFAULT_LOG_SEGMENT, SpacePolicy};

/// Which device holds the log's on-disk pages (under `<dir>/log/`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum LogDevice {
    /// io_uring if the kernel allows it, else the portable file device
    /// ([`faster_device::open_default`]).
    #[default]
    Auto,
    /// The io_uring device ([`faster_device::UringDevice`]); fails to open where io_uring is
    /// unavailable.
    IoUring,
    /// The portable file device ([`faster_device::FileDevice`]).
    File,
    /// An in-memory device ([`faster_device::MemoryDevice`]); nothing of the log reaches the
    /// directory. For tests.
    Memory,
}

/// Configuration of a store, built with [`Config::new`] and the `with_*` setters.
///
/// Defaults: an index of 2^16 buckets (4 MiB) to start with, which doubles online as keys
/// arrive (nothing to size; see [`Config::with_index_growth`]) up to half of the machine's
/// memory ([`Config::with_index_memory_limit`]); 64 MiB of log memory in pages of 1 MiB, 90%
/// of the in-memory pages mutable, the [`LogDevice::Auto`] device with log files of 64 MiB,
/// 1024 sessions at most, a checkpoint timeout of 30 s; the newest 2 checkpoints kept and the
/// log compacted by itself once it is 1.5 times its live estimate and at least 64 MiB (see
/// [`SpacePolicy`] and the setters below).
#[derive(Clone)]
pub struct Config {
    pub(crate) dir: PathBuf,
    pub(crate) table_bits: u32,
    pub(crate) overflow_buckets: Option<u64>,
    pub(crate) index_memory_limit: Option<u64>,
    pub(crate) index_growth: bool,
    pub(crate) log_memory: u64,
    pub(crate) page_size: u64,
    pub(crate) mutable_fraction: f64,
    pub(crate) device: LogDevice,
    pub(crate) device_options: DeviceOptions,
    pub(crate) custom_device: Option<Arc<dyn Device>>,
    pub(crate) max_sessions: usize,
    pub(crate) checkpoint_timeout: Duration,
    pub(crate) phase_observer: Option<Arc<dyn Fn(faster_cpr::SystemState) + Send + Sync>>,
    pub(crate) recovery_policy: RecoveryPolicy,
    pub(crate) space: SpacePolicy,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("dir", &self.dir)
            .field("table_bits", &self.table_bits)
            .field("overflow_buckets", &self.overflow_buckets)
            .field("index_memory_limit", &self.index_memory_limit)
            .field("index_growth", &self.index_growth)
            .field("log_memory", &self.log_memory)
            .field("page_size", &self.page_size)
            .field("mutable_fraction", &self.mutable_fraction)
            .field("device", &self.device)
            .field(
                "custom_device",
                &self.custom_device.as_ref().map(|d| d.kind()),
            )
            .field("max_sessions", &self.max_sessions)
            .field("checkpoint_timeout", &self.checkpoint_timeout)
            .field("recovery_policy", &self.recovery_policy)
            .field("space", &self.space)
            .finish()
    }
}

impl Config {
    /// A configuration for a store in directory `dir` (created if missing), with the defaults.
    pub fn new(dir: impl AsRef<Path>) -> Self {
        Config {
            dir: dir.as_ref().to_path_buf(),
            table_bits: 16,
            overflow_buckets: None,
            index_memory_limit: None,
            index_growth: true,
            log_memory: 64 << 20,
            page_size: 1 << 20,
            mutable_fraction: 0.9,
            device: LogDevice::Auto,
            device_options: DeviceOptions::default().with_segment_size(DEFAULT_LOG_SEGMENT),
            custom_device: None,
            max_sessions: 1024,
            checkpoint_timeout: Duration::from_secs(30),
            phase_observer: None,
            recovery_policy: RecoveryPolicy::Fallback,
            space: SpacePolicy::default(),
        }
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Sets the index's initial size: `2^bits` buckets of 64 bytes, seven entries each
    /// (default 16). The index doubles from there as it fills (unless growth is off), so
    /// this only saves the first growths for a store known to be large.
    pub fn with_table_bits(mut self, bits: u32) -> Self {
        self.table_bits = bits;
        self
    }

    /// Bounds the overflow buckets of the index (default: no bound but the memory limit).
    /// Past it, inserting a new key whose bucket is full fails with
    /// [`Error::Index`] (`OverflowExhausted`).
    pub fn with_overflow_buckets(mut self, buckets: u64) -> Self {
        self.overflow_buckets = Some(buckets);
        self
    }

    /// Bounds the index's memory in bytes: its main table and overflow buckets (default:
    /// half of the machine's memory). Past it the index does not grow, and inserting a new
    /// key that needs a new overflow bucket fails with [`Error::Index`]
    /// (`IndexError::MemoryLimit`); existing keys keep working. During a growth the old and
    /// the new table live side by side: a growth starts only if both fit.
    pub fn with_index_memory_limit(mut self, bytes: u64) -> Self {
        self.index_memory_limit = Some(bytes);
        self
    }

    /// Whether sessions double the index by themselves when it fills (default: on). The
    /// trigger: overflow buckets in use reach 1/16 of the main buckets
    /// ([`faster_index::GROW_OVERFLOW_FRACTION`]), about four keys a bucket; sessions check
    /// it every [`crate::session::REFRESH_INTERVAL`] operations and start the growth in the
    /// background. [`crate::FasterKv::grow_index`] doubles on request either way.
    pub fn with_index_growth(mut self, on: bool) -> Self {
        self.index_growth = on;
        self
    }

    /// The bound on index memory: the configured one, or half of the machine's memory.
    pub fn index_memory_limit(&self) -> u64 {
        self.index_memory_limit.unwrap_or_else(|| {
            #[cfg(target_os = "linux")]
            {
                let info = rustix::system::sysinfo();
                (info.totalram as u64).saturating_mul(info.mem_unit.max(1) as u64) / 2
            }
            #[cfg(not(target_os = "linux"))]
            {
                u64::MAX
            }
        })
    }

    /// Sets the log's memory budget in bytes (at least two pages).
    pub fn with_log_memory(mut self, bytes: u64) -> Self {
        self.log_memory = bytes;
        self
    }

    /// Sets the log's page size: a power of two from 4 KiB to 1 GiB. A record (key, value and
    /// a 32-byte header) must fit in one page.
    pub fn with_page_size(mut self, bytes: u64) -> Self {
        self.page_size = bytes;
        self
    }

    /// Sets the fraction of in-memory pages that are mutable (updated in place), in `(0, 1]`.
    pub fn with_mutable_fraction(mut self, fraction: f64) -> Self {
        self.mutable_fraction = fraction;
        self
    }

    /// Chooses the device kind.
    pub fn with_log_device(mut self, device: LogDevice) -> Self {
        self.device = device;
        self
    }

    /// Sets the options the store's device is opened with (segment size, fault injector,
    /// `O_DIRECT`, ...). Ignored with [`Config::with_device`]. The base name is always
    /// `"log"`.
    pub fn with_device_options(mut self, options: DeviceOptions) -> Self {
        self.device_options = options;
        self
    }

    /// Uses `device` for the log instead of opening one (for tests: a
    /// [`faster_device::MemoryDevice`] with a [`faster_device::FaultInjector`]). The device
    /// must be empty.
    pub fn with_device(mut self, device: Arc<dyn Device>) -> Self {
        self.custom_device = Some(device);
        self
    }

    /// Sets the largest number of sessions alive at once (the size of the epoch table).
    pub fn with_max_sessions(mut self, sessions: usize) -> Self {
        self.max_sessions = sessions;
        self
    }

    /// Sets the checkpoint timeout: how long a checkpoint waits for sessions to acknowledge
    /// its phases (and to drain their pending operations) before it is abandoned with
    /// [`crate::Error::CheckpointTimeout`]. Default 30 s.
    pub fn with_checkpoint_timeout(mut self, timeout: Duration) -> Self {
        self.checkpoint_timeout = timeout;
        self
    }

    /// The checkpoint timeout (see [`Config::with_checkpoint_timeout`]).
    pub fn checkpoint_timeout(&self) -> Duration {
        self.checkpoint_timeout
    }

    /// Calls `observer` with every new state of the checkpoint state machine, on the thread
    /// that made the transition (tests and tracing use it to watch the phases). Keep it
    /// short: sessions call it on their own threads.
    pub fn with_phase_observer(
        mut self,
        observer: impl Fn(faster_cpr::SystemState) + Send + Sync + 'static,
    ) -> Self {
        self.phase_observer = Some(Arc::new(observer));
        self
    }

    /// Sets what [`crate::FasterKv::recover`] does with a damaged checkpoint:
    /// [`RecoveryPolicy::Fallback`] (the default) skips it and recovers the newest older one
    /// that is valid (saying which were skipped and why); [`RecoveryPolicy::Strict`] fails.
    pub fn with_recovery_policy(mut self, policy: RecoveryPolicy) -> Self {
        self.recovery_policy = policy;
        self
    }

    /// Keeps the newest `n` valid checkpoints (default 2, so that recovery can fall back to
    /// the older one; at least 1) and removes older ones once a newer one is durable. The
    /// log is deleted below the begin address the oldest kept checkpoint needs.
    pub fn with_checkpoints_kept(mut self, n: usize) -> Self {
        self.space.checkpoints_kept = n;
        self
    }

    /// Whether the store compacts its log by itself (default: on), in the background, when
    /// the log above its begin address passes [`Config::with_compaction_ratio`] times the
    /// live estimate (and [`Config::with_compaction_min_log`]), or the disk budget
    /// ([`Config::with_disk_budget`]). [`crate::FasterKv::compact`] compacts on request
    /// either way.
    pub fn with_auto_compaction(mut self, on: bool) -> Self {
        self.space.auto_compaction = on;
        self
    }

    /// Sets the compaction ratio (default 1.5, more than 1): automatic compaction starts
    /// when the log above its begin address is this many times the live estimate (the
    /// index's keys at the average size of the records the last compaction scanned; the
    /// first compaction starts at [`Config::with_compaction_min_log`]). Lower keeps the disk
    /// smaller and copies more often.
    pub fn with_compaction_ratio(mut self, ratio: f64) -> Self {
        self.space.compaction_ratio = ratio;
        self
    }

    /// Sets the smallest log compacted automatically, in bytes above the begin address
    /// (default 64 MiB).
    pub fn with_compaction_min_log(mut self, bytes: u64) -> Self {
        self.space.compaction_min_log = bytes;
        self
    }

    /// Sets a disk budget in bytes: automatic compaction also starts when the log on disk
    /// and the kept checkpoints together exceed it (default: no budget). A budget below
    /// what the live data needs makes the store compact again and again.
    pub fn with_disk_budget(mut self, bytes: u64) -> Self {
        self.space.disk_budget = Some(bytes);
        self
    }

    /// Sets the memory one compaction pass may spend on the keys of its range (default
    /// 128 MiB: about 3.5 million keys of at most 8 bytes; longer keys cost their length
    /// more). A range with more keys is compacted a part at a time, and every part reads
    /// the log written since the compaction began once more, so a budget that holds the
    /// store's live keys compacts fastest.
    pub fn with_compaction_memory(mut self, bytes: usize) -> Self {
        self.space.compaction_memory = bytes;
        self
    }

    /// Whether a compaction ends with a full checkpoint when a kept checkpoint holds the
    /// log's files below the new begin address (default: on). The kept checkpoints need
    /// the records they point to: without it the dead front of the log stays on disk until
    /// [`Config::with_checkpoints_kept`] newer checkpoints have replaced them; with it, the
    /// next checkpoint after the compaction's lets it go. Off, compaction never checkpoints
    /// by itself (the store's files then peak higher between the application's own
    /// checkpoints).
    pub fn with_checkpoint_after_compaction(mut self, on: bool) -> Self {
        self.space.checkpoint_after_compaction = on;
        self
    }

    /// The space policy (checkpoints kept, compaction).
    pub fn space_policy(&self) -> SpacePolicy {
        self.space
    }

    pub(crate) fn hlog_config(&self) -> HlogConfig {
        HlogConfig::default()
            .with_page_size(self.page_size)
            .with_memory_size(self.log_memory)
            .with_mutable_fraction(self.mutable_fraction)
    }

    pub(crate) fn index_config(&self) -> IndexConfig {
        let overflow = self
            .overflow_buckets
            .unwrap_or(faster_index::MAX_OVERFLOW_BUCKETS);
        IndexConfig::new(self.table_bits, overflow).with_memory_limit(self.index_memory_limit())
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.max_sessions == 0 {
            return Err(Error::InvalidConfig(
                "max_sessions must be at least 1".into(),
            ));
        }
        self.index_config().validate()?;
        let ratio = self.space.compaction_ratio;
        if !(ratio.is_finite() && ratio > 1.0) {
            return Err(Error::InvalidConfig(format!(
                "the compaction ratio must be a number above 1, not {ratio}"
            )));
        }
        if self.space.checkpoints_kept == 0 {
            return Err(Error::InvalidConfig(
                "at least one checkpoint must be kept".into(),
            ));
        }
        Ok(())
    }
}
