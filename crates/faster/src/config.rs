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
/// Defaults: 2^16 index buckets (4 MiB) with room for as many overflow buckets, 64 MiB of log
/// memory in pages of 1 MiB, 90% of the in-memory pages mutable, the [`LogDevice::Auto`]
/// device, 1024 sessions at most, a checkpoint timeout of 30 s.
#[derive(Clone)]
pub struct Config {
    pub(crate) dir: PathBuf,
    pub(crate) table_bits: u32,
    pub(crate) overflow_buckets: Option<u64>,
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
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("dir", &self.dir)
            .field("table_bits", &self.table_bits)
            .field("overflow_buckets", &self.overflow_buckets)
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
            log_memory: 64 << 20,
            page_size: 1 << 20,
            mutable_fraction: 0.9,
            device: LogDevice::Auto,
            device_options: DeviceOptions::default(),
            custom_device: None,
            max_sessions: 1024,
            checkpoint_timeout: Duration::from_secs(30),
            phase_observer: None,
            recovery_policy: RecoveryPolicy::Fallback,
        }
    }

    /// The store's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Sets the index size: `2^bits` buckets of 64 bytes, seven entries each.
    pub fn with_table_bits(mut self, bits: u32) -> Self {
        self.table_bits = bits;
        self
    }

    /// Sets the capacity of the overflow-bucket allocator (default: as many as main buckets,
    /// at least 1024). When it is exhausted, inserting a new key fails with
    /// [`Error::Index`].
    pub fn with_overflow_buckets(mut self, buckets: u64) -> Self {
        self.overflow_buckets = Some(buckets);
        self
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

    pub(crate) fn hlog_config(&self) -> HlogConfig {
        HlogConfig::default()
            .with_page_size(self.page_size)
            .with_memory_size(self.log_memory)
            .with_mutable_fraction(self.mutable_fraction)
    }

    pub(crate) fn index_config(&self) -> IndexConfig {
        let overflow = self
            .overflow_buckets
            .unwrap_or_else(|| (1u64 << self.table_bits.min(30)).max(1024));
        IndexConfig::new(self.table_bits, overflow)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.max_sessions == 0 {
            return Err(Error::InvalidConfig(
                "max_sessions must be at least 1".into(),
            ));
        }
        self.index_config().validate()?;
        Ok(())
    }
}
