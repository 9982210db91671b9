//! Recovery: [`FasterKv::recover`], [`FasterKv::recover_from`] and
//! [`FasterKv::continue_session`].
//!
//! A store is recovered from a checkpoint of version `v`: its metadata is chosen and
//! validated (`faster_recovery::choose`), the index and the log are restored by
//! [`faster_recovery::replay()`], and the store resumes in version `v + 1` with every
//! session's cut `(id, t)` waiting to be continued. Newer checkpoint directories (damaged
//! ones that were skipped, or newer ones passed over by [`FasterKv::recover_from`]) are set
//! aside by renaming them to `<token>.abandoned-<unix ms>`: the store's next checkpoints
//! take their version numbers again, and nothing is deleted.

use std::fs;
use std::time::{SystemTime, UNIX_EPOCH};

use faster_recovery::{
    CheckpointMeta, CheckpointToken, Chosen, RecoveryError, RecoveryPolicy, ReplayStats,
    StoreLayout,
};

use crate::config::{Config, LogDevice};
use crate::error::{Error, Result};
use crate::lock::DirLock;
use crate::session::Session;
use crate::session_id::SessionId;
use crate::shared::{self, Parts};
use crate::store::FasterKv;

/// What [`FasterKv::recover`] restored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// The recovered checkpoint's token.
    pub token: String,
    /// Its version `v`; the recovered store works in `v + 1`.
    pub version: u64,
    /// Every session's cut: the serial of its last operation in the checkpoint. Exactly the
    /// operations up to these are present. Continue a session with
    /// [`FasterKv::continue_session`].
    pub sessions: Vec<(SessionId, u64)>,
    /// Newer checkpoints that were skipped (fallback policy), newest first, with the reason.
    pub skipped: Vec<(String, String)>,
    /// What the replay did (records applied, invalidated, snapshot bytes copied).
    pub replay: ReplayStats,
}

impl FasterKv {
    /// Recovers the store in `config`'s directory from its newest valid checkpoint.
    ///
    /// The directory is locked first, as by [`FasterKv::open`] ([`Error::InUse`] if another
    /// open store holds it).
    ///
    /// Damaged checkpoints (metadata that does not decode or validate, missing or short
    /// files, symbolic links, index files that do not load, log or snapshot records whose
    /// checksums do not match, log bytes lost) are skipped under [`RecoveryPolicy::Fallback`]
    /// (the default; see [`Config::with_recovery_policy`]) and reported in
    /// [`Recovered::skipped`]; under [`RecoveryPolicy::Strict`] the first one is an error.
    /// Checkpoints whose session serials go backwards are [`Error::Recovery`] with
    /// [`RecoveryError::Inconsistent`] under both policies; no checkpoint at all is
    /// [`RecoveryError::NoCheckpoint`]. The log device must outlive the process:
    /// [`LogDevice::Memory`] fails with [`Error::MemoryLogNotRecoverable`] (a device given
    /// with [`Config::with_device`] is used as it is). Index-only checkpoints are passed over
    /// (they cannot be recovered alone).
    pub fn recover(config: Config) -> Result<(FasterKv, Recovered)> {
        check_device(&config)?;
        let layout = StoreLayout::new(&config.dir);
        let mut lock = Some(lock_existing(&layout)?);
        let policy = config.recovery_policy;
        let mut skipped = Vec::new();
        for token in layout.list()? {
            let chosen = match faster_recovery::choose(&layout, &token, policy) {
                Ok(c) if !c.meta.has_log() => {
                    log::info!("passing over the index-only checkpoint {token}");
                    continue;
                }
                Ok(c) => c,
                Err(e @ RecoveryError::Inconsistent { .. }) => return Err(e.into()),
                Err(e) if policy == RecoveryPolicy::Strict => return Err(e.into()),
                Err(e) => {
                    log::warn!("skipping checkpoint {token}: {e}");
                    skipped.push((token.to_string(), e.to_string()));
                    continue;
                }
            };
            match restore(&config, &layout, chosen, &mut skipped, &mut lock) {
                Err(Error::Recovery(
                    e @ (RecoveryError::Index { .. }
                    | RecoveryError::Corrupt { .. }
                    | RecoveryError::Symlink { .. }),
                )) if policy == RecoveryPolicy::Fallback => {
                    // A damaged index, log or snapshot: try an older checkpoint. What the
                    // failed replay wrote lies at or beyond this checkpoint's flushed
                    // address (the snapshot's bytes, padding and invalidations past its
                    // start), where an older checkpoint reads nothing it does not bring
                    // back itself.
                    log::warn!("skipping checkpoint {token}: {e}");
                    skipped.push((token.to_string(), e.to_string()));
                }
                r => return r,
            }
        }
        Err(RecoveryError::NoCheckpoint {
            dir: layout.checkpoints_dir(),
        }
        .into())
    }

    /// Recovers the store in `config`'s directory from checkpoint `token` (validated like
    /// [`FasterKv::recover`]'s choice; a damaged one is an error under both policies).
    /// Newer checkpoint directories are set aside (renamed to `<token>.abandoned-<unix ms>`,
    /// so the store's next checkpoints can take their versions again; nothing is deleted).
    pub fn recover_from(config: Config, token: &str) -> Result<(FasterKv, Recovered)> {
        check_device(&config)?;
        let layout = StoreLayout::new(&config.dir);
        let token = CheckpointToken::parse(token)?;
        let mut lock = Some(lock_existing(&layout)?);
        let chosen = faster_recovery::choose(&layout, &token, config.recovery_policy)?;
        restore(&config, &layout, chosen, &mut Vec::new(), &mut lock)
    }

    /// Continues recovered session `id`: returns the session and its recovered serial `t`;
    /// its next operation gets serial `t + 1`.
    ///
    /// Fails with [`Error::UnknownSession`] if the recovered checkpoint has no such session,
    /// [`Error::SessionAlreadyContinued`] the second time for the same id,
    /// [`Error::Closed`] on a closed store and [`Error::Epoch`] when the epoch table is full.
    pub fn continue_session(&self, id: SessionId) -> Result<(Session, u64)> {
        if self.inner.is_closed() {
            return Err(Error::Closed);
        }
        let serial = {
            let mut recovered = shared::lock(&self.inner.recovered);
            let Some((serial, continued)) = recovered.get_mut(&id.as_u64()) else {
                return Err(Error::UnknownSession(id));
            };
            if *continued {
                return Err(Error::SessionAlreadyContinued(id));
            }
            *continued = true;
            *serial
        };
        match self.inner.epoch.register() {
            Ok(participant) => Ok((
                Session::resume(self.inner.clone(), id.as_u64(), participant, serial),
                serial,
            )),
            Err(e) => {
                if let Some(entry) = shared::lock(&self.inner.recovered).get_mut(&id.as_u64()) {
                    entry.1 = false;
                }
                Err(e.into())
            }
        }
    }
}

fn check_device(config: &Config) -> Result<()> {
    config.validate()?;
    if config.custom_device.is_none() && config.device == LogDevice::Memory {
        return Err(Error::MemoryLogNotRecoverable);
    }
    Ok(())
}

/// Locks the directory of an existing store ([`RecoveryError::NoCheckpoint`] if there is no
/// directory at all).
fn lock_existing(layout: &StoreLayout) -> Result<DirLock> {
    if !layout.dir().is_dir() {
        return Err(RecoveryError::NoCheckpoint {
            dir: layout.checkpoints_dir(),
        }
        .into());
    }
    DirLock::acquire(layout.dir())
}

/// Replays `chosen` and assembles the store (taking `lock` on success); sets newer
/// checkpoints aside. The log device is opened with the segment size the checkpoint
/// recorded, whatever the configuration says.
fn restore(
    config: &Config,
    layout: &StoreLayout,
    chosen: Chosen,
    skipped: &mut Vec<(String, String)>,
    lock: &mut Option<DirLock>,
) -> Result<(FasterKv, Recovered)> {
    let Chosen {
        meta,
        skipped: more,
    } = chosen;
    skipped.extend(
        more.into_iter()
            .map(|(t, e)| (t.to_string(), e.to_string())),
    );
    if !meta.has_log() {
        return Err(RecoveryError::Inconsistent {
            reason: format!("{} is an index-only checkpoint: it has no log", meta.token),
        }
        .into());
    }
    let mut config = config.clone();
    if let (None, Some(seg)) = (&config.custom_device, meta.log_segment_size) {
        config.device_options.segment_size = seg;
    }
    let config = &config;
    let device = shared::open_device(config, &layout.log_dir())?;
    let epoch = shared::new_epoch(config)?;
    let replayed =
        faster_recovery::replay(&meta, layout, device, epoch.clone(), config.hlog_config())?;
    set_aside_newer(layout, &meta)?;
    log::info!(
        "recovered checkpoint {} (version {}): {:?}",
        meta.token,
        meta.version,
        replayed.stats
    );
    let sessions: Vec<(u64, u64)> = meta.sessions.iter().map(|c| (c.id, c.serial)).collect();
    let parts = Parts {
        hlog: replayed.hlog,
        index: replayed.index,
        epoch,
        version: meta.version + 1,
        last_index: meta.index.clone(),
        sessions: sessions.clone(),
        lock: lock.take().ok_or(Error::InvalidConfig(
            "the store directory is not locked".into(),
        ))?,
        log_segment_size: shared::log_segment_size(config),
    };
    let store = FasterKv::assemble(config, parts);
    // Entries below the begin address mean "no record": free them, and what a removal a
    // crash interrupted left behind.
    store.inner.index.clean_below(meta.begin_address);
    if let Err(e) = layout.purge_removed() {
        log::warn!("could not delete what interrupted checkpoint removals left: {e}");
    }
    let recovered = Recovered {
        token: meta.token.to_string(),
        version: meta.version,
        sessions: sessions
            .into_iter()
            .map(|(id, t)| (SessionId::from_raw(id), t))
            .collect(),
        skipped: std::mem::take(skipped),
        replay: replayed.stats,
    };
    Ok((store, recovered))
}

/// Renames every checkpoint directory newer than `meta` to `<token>.abandoned-<unix ms>`.
fn set_aside_newer(layout: &StoreLayout, meta: &CheckpointMeta) -> Result<()> {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    for token in layout.list()? {
        if token.version() <= meta.version {
            continue;
        }
        let from = layout.checkpoint_dir(&token);
        let to = layout
            .checkpoints_dir()
            .join(format!("{token}.abandoned-{ms}"));
        log::warn!(
            "setting aside checkpoint {token} (newer than the recovered {}): {}",
            meta.token,
            to.display()
        );
        fs::rename(&from, &to).map_err(|source| Error::Io {
            what: "setting aside",
            path: from,
            source,
        })?;
    }
    Ok(())
}
