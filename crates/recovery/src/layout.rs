//! [`StoreLayout`]: the store directory's checkpoint layout; the one place paths are built.
//!
//! ```text
//! <dir>/log/log.<n>                       the log device's segment files
//! <dir>/checkpoints/<token>/meta          the metadata (written via meta.tmp)
//! <dir>/checkpoints/<token>/index/        the index device: index.<n> segment files
//! <dir>/checkpoints/<token>/snapshot/     the snapshot device: snapshot.<n> segment files
//! ```
//!
//! Nothing below `<dir>` is reached through a symbolic link: directories are checked (or
//! created) with [`faster_device::nofollow`], files are opened with `O_NOFOLLOW`, and a link
//! is [`RecoveryError::Symlink`] naming it. (`<dir>` itself may be a link: the caller chose
//! it.)

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use faster_device::nofollow;

use crate::codec::{MAX_META_BYTES, decode, encode};
use crate::error::{RecoveryError, Result};
use crate::meta::CheckpointMeta;
use crate::token::CheckpointToken;
use crate::validate::validate;

/// The name of the directory holding all checkpoints.
pub const CHECKPOINTS_DIR: &str = "checkpoints";
/// The name of the log device's directory, and the base name of its segment files.
pub const LOG_DIR: &str = "log";
/// The name of a checkpoint's metadata file.
pub const META_FILE: &str = "meta";
/// The temporary name the metadata is written under before it is renamed.
pub const META_TMP_FILE: &str = "meta.tmp";
/// The name of a checkpoint's index directory, and the base name of its segment files.
pub const INDEX_DIR: &str = "index";
/// The name of a checkpoint's snapshot directory, and the base name of its segment files.
pub const SNAPSHOT_DIR: &str = "snapshot";

/// The checkpoint layout of a store directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreLayout {
    dir: PathBuf,
}

impl StoreLayout {
    /// The layout of the store in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        StoreLayout { dir: dir.into() }
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `<dir>/log`: the directory of the log device's segment files.
    pub fn log_dir(&self) -> PathBuf {
        self.dir.join(LOG_DIR)
    }

    /// `<dir>/log/log.<n>`: segment `n` of the log device (open the device on
    /// [`log_dir`](Self::log_dir) with base name [`LOG_DIR`]).
    pub fn log_segment_path(&self, n: u64) -> PathBuf {
        self.log_dir().join(format!("{LOG_DIR}.{n}"))
    }

    /// Makes sure `dir` (a directory of this layout) exists and that neither it nor any
    /// directory between the store's directory and it is a symbolic link.
    pub fn ensure_dir(&self, dir: &Path) -> Result<()> {
        nofollow::ensure_dirs_below(&self.dir, dir)
            .map_err(|e| RecoveryError::io("create directory", dir, e))
    }

    /// Checks that `dir` (a directory of this layout) is a directory and not a symbolic
    /// link.
    pub fn check_dir(&self, dir: &Path) -> Result<()> {
        nofollow::check_dir(dir).map_err(|e| RecoveryError::io("open directory", dir, e))
    }

    /// `<dir>/checkpoints`.
    pub fn checkpoints_dir(&self) -> PathBuf {
        self.dir.join(CHECKPOINTS_DIR)
    }

    /// `<dir>/checkpoints/<token>`.
    pub fn checkpoint_dir(&self, token: &CheckpointToken) -> PathBuf {
        self.checkpoints_dir().join(token.as_str())
    }

    /// `<checkpoint>/meta`.
    pub fn meta_path(&self, token: &CheckpointToken) -> PathBuf {
        self.checkpoint_dir(token).join(META_FILE)
    }

    /// `<checkpoint>/meta.tmp`, the metadata's name until it is complete and durable.
    pub fn meta_tmp_path(&self, token: &CheckpointToken) -> PathBuf {
        self.checkpoint_dir(token).join(META_TMP_FILE)
    }

    /// `<checkpoint>/index`: the directory of the index device's files.
    pub fn index_dir(&self, token: &CheckpointToken) -> PathBuf {
        self.checkpoint_dir(token).join(INDEX_DIR)
    }

    /// `<checkpoint>/index/index.<n>`: segment `n` of the index device (open the device
    /// on [`index_dir`](Self::index_dir) with base name [`INDEX_DIR`]).
    pub fn index_segment_path(&self, token: &CheckpointToken, n: u64) -> PathBuf {
        self.index_dir(token).join(format!("{INDEX_DIR}.{n}"))
    }

    /// `<checkpoint>/snapshot`: the directory of the snapshot device's files.
    pub fn snapshot_dir(&self, token: &CheckpointToken) -> PathBuf {
        self.checkpoint_dir(token).join(SNAPSHOT_DIR)
    }

    /// `<checkpoint>/snapshot/snapshot.<n>`: segment `n` of the snapshot device (base name
    /// [`SNAPSHOT_DIR`]).
    pub fn snapshot_segment_path(&self, token: &CheckpointToken, n: u64) -> PathBuf {
        self.snapshot_dir(token).join(format!("{SNAPSHOT_DIR}.{n}"))
    }

    /// Validates `meta` and writes it crash-safely as its checkpoint's `meta` file: creates
    /// the checkpoint directory if missing, writes `meta.tmp`, fsyncs it, renames it to
    /// `meta`, then fsyncs the checkpoint directory and the checkpoints directory. Returns
    /// the bytes written. Write the checkpoint's data (and make it durable) first: a `meta`
    /// file is the checkpoint's completion marker.
    pub fn write_meta(&self, meta: &CheckpointMeta) -> Result<u64> {
        let tmp = self.meta_tmp_path(&meta.token);
        validate(meta, &tmp)?;
        let bytes = encode(meta);
        if bytes.len() as u64 > MAX_META_BYTES {
            return Err(RecoveryError::corrupt(
                tmp,
                format!(
                    "the encoded metadata is {} bytes, above the {MAX_META_BYTES}-byte limit",
                    bytes.len()
                ),
            ));
        }
        let ckpt = self.checkpoint_dir(&meta.token);
        let created_root = !self.checkpoints_dir().exists();
        self.ensure_dir(&ckpt)?;
        let mut f = nofollow::nofollow(OpenOptions::new().write(true).create(true).truncate(true))
            .open(&tmp)
            .map_err(|e| RecoveryError::io("create", &tmp, e))?;
        f.write_all(&bytes)
            .map_err(|e| RecoveryError::io("write", &tmp, e))?;
        f.sync_all()
            .map_err(|e| RecoveryError::io("fsync", &tmp, e))?;
        drop(f);
        let path = self.meta_path(&meta.token);
        fs::rename(&tmp, &path).map_err(|e| RecoveryError::io("rename into place", &path, e))?;
        sync_dir(&ckpt)?;
        sync_dir(&self.checkpoints_dir())?;
        if created_root {
            sync_dir(&self.dir)?;
        }
        Ok(bytes.len() as u64)
    }

    /// Reads, decodes and validates the metadata of checkpoint `token`. The file's length is
    /// checked against [`MAX_META_BYTES`] before anything is read.
    pub fn read_meta(&self, token: &CheckpointToken) -> Result<CheckpointMeta> {
        let path = self.meta_path(token);
        self.check_dir(&self.checkpoints_dir())?;
        self.check_dir(&self.checkpoint_dir(token))?;
        let f = nofollow::nofollow(OpenOptions::new().read(true))
            .open(&path)
            .map_err(|e| RecoveryError::io("open", &path, e))?;
        let len = f
            .metadata()
            .map_err(|e| RecoveryError::io("inspect", &path, e))?
            .len();
        if len > MAX_META_BYTES {
            return Err(RecoveryError::corrupt(
                path,
                format!("{len} bytes exceeds the {MAX_META_BYTES}-byte limit of a metadata file"),
            ));
        }
        let mut bytes = Vec::with_capacity(len as usize);
        // `take` bounds the read even if the file grew after the length check.
        f.take(MAX_META_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| RecoveryError::io("read", &path, e))?;
        let meta = decode(&bytes, &path)?;
        if meta.token != *token {
            return Err(RecoveryError::corrupt(
                path,
                format!(
                    "the metadata names checkpoint {} but lies in {token}",
                    meta.token
                ),
            ));
        }
        Ok(meta)
    }

    /// The entries of the checkpoints directory whose names are valid tokens, newest
    /// (highest version) first. Other names are ignored; a missing checkpoints directory
    /// means no checkpoints, one that is a symbolic link is [`RecoveryError::Symlink`]. An
    /// entry with a token's name that is not a directory (a file, a symbolic link) is listed
    /// too: reading it fails, so that recovery reports it as a damaged checkpoint instead of
    /// passing over it in silence.
    pub fn list(&self) -> Result<Vec<CheckpointToken>> {
        let dir = self.checkpoints_dir();
        match nofollow::check_dir(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            r => r.map_err(|e| RecoveryError::io("list", &dir, e))?,
        }
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(RecoveryError::io("list", dir, e)),
        };
        let mut tokens = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| RecoveryError::io("list", &dir, e))?;
            let Some(token) = entry
                .file_name()
                .to_str()
                .and_then(|name| CheckpointToken::parse(name).ok())
            else {
                continue;
            };
            tokens.push(token);
        }
        tokens.sort_unstable_by(|a, b| b.cmp(a));
        Ok(tokens)
    }

    /// Removes checkpoint `token`'s directory and everything in it (to abort a failed
    /// checkpoint, or to drop an old one), crash-safely: the directory is first renamed to a
    /// name that is no token (`.removing-<token>`, [`REMOVING_PREFIX`]) and the rename made
    /// durable, so a crash at any point leaves either the whole checkpoint or none of it in
    /// the listing; then the renamed directory is deleted. Leftovers of a crash are deleted
    /// by [`StoreLayout::purge_removed`]. Removing a checkpoint that does not exist
    /// succeeds. A symbolic link (or a file) in the checkpoint's place is removed itself,
    /// never followed.
    pub fn remove_checkpoint(&self, token: &CheckpointToken) -> Result<()> {
        let dir = self.checkpoint_dir(token);
        match fs::symlink_metadata(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(RecoveryError::io("inspect", dir, e)),
            // A link (or a file) in a checkpoint's place: remove it, never what it points to.
            Ok(m) if !m.is_dir() => {
                fs::remove_file(&dir).map_err(|e| RecoveryError::io("remove", &dir, e))?;
                return sync_dir(&self.checkpoints_dir());
            }
            Ok(_) => {}
        }
        let doomed = self
            .checkpoints_dir()
            .join(format!("{REMOVING_PREFIX}{}", token.as_str()));
        fs::rename(&dir, &doomed).map_err(|e| RecoveryError::io("rename for removal", &dir, e))?;
        sync_dir(&self.checkpoints_dir())?;
        remove_entry(&doomed)?;
        sync_dir(&self.checkpoints_dir())
    }

    /// Deletes what removals interrupted by a crash left behind (`.removing-*` entries of
    /// the checkpoints directory); returns how many it deleted.
    pub fn purge_removed(&self) -> Result<usize> {
        let dir = self.checkpoints_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(RecoveryError::io("list", dir, e)),
        };
        let mut purged = 0;
        for entry in entries {
            let entry = entry.map_err(|e| RecoveryError::io("list", &dir, e))?;
            if entry
                .file_name()
                .to_str()
                .is_some_and(|n| n.starts_with(REMOVING_PREFIX))
            {
                remove_entry(&entry.path())?;
                purged += 1;
            }
        }
        if purged > 0 {
            sync_dir(&dir)?;
        }
        Ok(purged)
    }
}

/// The name prefix of a checkpoint directory being removed (never a token, so never listed).
pub const REMOVING_PREFIX: &str = ".removing-";

/// Deletes `path`: a directory with everything in it, or a file or link itself (never what
/// a link points to).
fn remove_entry(path: &Path) -> Result<()> {
    let r = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) => Err(e),
    };
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(RecoveryError::io("remove", path, e)),
    }
}

/// `fsync`s a directory, making creations, renames and deletions in it durable.
fn sync_dir(dir: &Path) -> Result<()> {
    nofollow::nofollow(OpenOptions::new().read(true))
        .open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| RecoveryError::io("fsync directory", dir, e))
}
