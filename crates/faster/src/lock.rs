//! [`DirLock`]: one open store per directory, across threads and processes.
//!
//! [`crate::FasterKv::open`] and [`crate::FasterKv::recover`] take an exclusive advisory
//! lock (`flock`) on `<dir>/LOCK` before they read or write anything else in the directory,
//! and the store holds it for its life. A second open of the same directory, from this
//! process or another, fails at once with [`Error::InUse`]. The kernel drops the lock with
//! the file: when the store is freed (its last handle and session dropped), or when its
//! process dies, even by `kill -9`, so no stale lock ever blocks the next open.

use std::fs::{File, OpenOptions};
use std::path::Path;

use faster_device::nofollow;

use crate::error::{Error, Result};

/// The lock file's name in the store directory.
pub const LOCK_FILE: &str = "LOCK";

/// The store directory's lock, held while it lives.
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: File,
}

impl DirLock {
    /// Locks `dir` (which exists), or fails with [`Error::InUse`] if another open store
    /// holds it.
    pub(crate) fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join(LOCK_FILE);
        let file = nofollow::nofollow(OpenOptions::new().read(true).write(true).create(true))
            .open(&path)
            .map_err(|source| Error::io("opening the lock file", &path, source))?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(rustix::io::Errno::WOULDBLOCK) => Err(Error::InUse {
                dir: dir.to_path_buf(),
            }),
            Err(e) => Err(Error::io("locking", &path, e.into())),
        }
    }
}
