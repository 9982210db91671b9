//! The mapping of device offsets onto segment files `<dir>/<base_name>.<n>`, their creation,
//! `fdatasync` and deletion. Shared by the io_uring and the file device.
//!
//! Segment `n` holds device bytes `[n * segment_size, (n + 1) * segment_size)` at file offset
//! `device offset - n * segment_size`. A missing segment file, or a part of one past its end,
//! reads as zeros (it is a hole) as long as it lies within `[begin, size)`.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::buf::AlignedBuf;
use crate::error::{DeviceError, OpKind, Result};
use crate::nofollow;
use crate::options::DeviceOptions;

/// One piece of a request that lies within one segment and within one transfer cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Chunk {
    /// Segment number.
    pub segment: u64,
    /// Offset within the segment file.
    pub file_offset: u64,
    /// Length in bytes.
    pub len: usize,
}

/// The next chunk of a request whose unfinished part starts at device offset `offset` and has
/// `remaining` bytes: it stops at the segment end and at `cap` bytes.
pub(crate) fn next_chunk(offset: u64, remaining: usize, segment_size: u64, cap: usize) -> Chunk {
    let segment = offset / segment_size;
    let file_offset = offset % segment_size;
    let to_segment_end = segment_size - file_offset;
    let len = (remaining as u64).min(to_segment_end).min(cap as u64) as usize;
    Chunk {
        segment,
        file_offset,
        len,
    }
}

/// An open segment file.
#[derive(Debug)]
pub(crate) struct Segment {
    /// The file, opened read-write (with `O_DIRECT` if the device uses it).
    pub file: File,
    dirty: AtomicBool,
}

impl Segment {
    /// Records that written bytes have reached the file and are not yet synced. Call it after
    /// the transfer completed, never before: a flush that ran between marking and writing
    /// would clear the mark without covering the bytes.
    pub fn mark_dirty(&self) {
        self.dirty.store(true, Ordering::Release);
    }
}

#[derive(Debug)]
struct State {
    files: BTreeMap<u64, Arc<Segment>>,
    begin: u64,
    dir_dirty: bool,
}

/// The set of segment files of one device directory.
#[derive(Debug)]
pub(crate) struct SegmentFiles {
    dir: PathBuf,
    base: String,
    segment_size: u64,
    direct: bool,
    /// Opened with [`DeviceOptions::read_only`].
    read_only: bool,
    state: Mutex<State>,
    /// Held for the whole of `flush`, so a flush that finds a segment clean because a
    /// concurrent flush just took its dirty mark returns only after that flush synced it.
    flushing: Mutex<()>,
    begin: AtomicU64,
    size: AtomicU64,
}

impl SegmentFiles {
    /// Opens (creating if needed, unless read-only) the directory, finds the existing
    /// segments, derives `size` from their lengths and `begin` from the lowest one, and
    /// detects `O_DIRECT` support if the options ask for it. Neither the directory nor a
    /// segment file may be a symbolic link ([`DeviceError::Symlink`]).
    pub fn open(dir: &Path, options: &DeviceOptions) -> Result<Self> {
        options.validate()?;
        let open_err = |e: io::Error| {
            if nofollow::is_symlink_error(&e) {
                DeviceError::Symlink {
                    path: dir.to_path_buf(),
                }
            } else {
                DeviceError::io(OpKind::Open, 0, e)
            }
        };
        // The directory is never a symbolic link; a read-only device needs it to exist.
        match nofollow::check_dir(dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound && !options.read_only => {
                fs::create_dir_all(dir).map_err(open_err)?
            }
            r => r.map_err(open_err)?,
        }
        let direct = options.direct_io && !options.read_only && probe_direct(dir, options)?;
        let mut found = Vec::new();
        for entry in fs::read_dir(dir).map_err(open_err)? {
            let entry = entry.map_err(open_err)?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let Some(n) = name
                .strip_prefix(options.base_name.as_str())
                .and_then(|rest| rest.strip_prefix('.'))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            found.push(n);
        }
        let segs = SegmentFiles {
            dir: dir.to_owned(),
            base: options.base_name.clone(),
            segment_size: options.segment_size,
            direct,
            read_only: options.read_only,
            state: Mutex::new(State {
                files: BTreeMap::new(),
                begin: 0,
                dir_dirty: false,
            }),
            flushing: Mutex::new(()),
            begin: AtomicU64::new(0),
            size: AtomicU64::new(0),
        };
        let mut size = 0;
        let mut begin = None;
        for n in found {
            let Some(start) = n.checked_mul(options.segment_size) else {
                let e = io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("segment {n} lies beyond the largest device offset"),
                );
                return Err(open_err(e));
            };
            let seg = segs.open_file(n, false)?;
            let len = seg.file.metadata().map_err(open_err)?.len();
            size = size.max(start.saturating_add(len.min(options.segment_size)));
            begin = Some(begin.map_or(n, |b: u64| b.min(n)));
            segs.lock().files.insert(n, Arc::new(seg));
        }
        let begin = begin.map_or(0, |b| b * options.segment_size);
        segs.lock().begin = begin;
        segs.begin.store(begin, Ordering::Release);
        segs.size.store(size, Ordering::Release);
        Ok(segs)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        faster_sync::lock_std(&self.state)
    }

    fn path(&self, n: u64) -> PathBuf {
        self.dir.join(format!("{}.{n}", self.base))
    }

    fn open_file(&self, n: u64, create: bool) -> Result<Segment> {
        let mut oo = OpenOptions::new();
        oo.read(true)
            .write(!self.read_only)
            .create(create && !self.read_only);
        // Never through a symbolic link (`custom_flags` replaces earlier custom flags, so
        // every flag is given here).
        let direct = if self.direct { libc::O_DIRECT } else { 0 };
        oo.custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | direct);
        let path = self.path(n);
        let file = oo.open(&path).map_err(|e| {
            if nofollow::is_symlink_error(&e) {
                DeviceError::Symlink { path }
            } else {
                DeviceError::io(OpKind::Open, n * self.segment_size, e)
            }
        })?;
        Ok(Segment {
            file,
            dirty: AtomicBool::new(false),
        })
    }

    /// Fails with [`DeviceError::ReadOnly`] on a read-only device.
    pub fn check_writable(&self) -> Result<()> {
        if self.read_only {
            return Err(DeviceError::ReadOnly {
                dir: self.dir.clone(),
            });
        }
        Ok(())
    }

    /// Whether the segment files are opened with `O_DIRECT`.
    pub fn is_direct(&self) -> bool {
        self.direct
    }

    /// Bytes per segment.
    pub fn segment_size(&self) -> u64 {
        self.segment_size
    }

    /// The first valid device offset.
    pub fn begin(&self) -> u64 {
        self.begin.load(Ordering::Acquire)
    }

    /// One past the highest byte written.
    pub fn size(&self) -> u64 {
        self.size.load(Ordering::Acquire)
    }

    /// Records that bytes up to `end` have been written.
    pub fn note_written(&self, end: u64) {
        self.size.fetch_max(end, Ordering::AcqRel);
    }

    /// The open segment `n` for a write, creating its file if needed. Fails with `Truncated`
    /// if the segment lies entirely below the truncation point (so a deleted segment is never
    /// resurrected).
    pub fn segment(&self, n: u64) -> Result<Arc<Segment>> {
        self.check_writable()?;
        let mut state = self.lock();
        check_not_truncated(&state, n, self.segment_size)?;
        if let Some(seg) = state.files.get(&n) {
            return Ok(Arc::clone(seg));
        }
        let seg = Arc::new(self.open_file(n, true)?);
        state.files.insert(n, Arc::clone(&seg));
        state.dir_dirty = true;
        Ok(seg)
    }

    /// The open segment `n` for a read: `None` if its file does not exist (the whole segment
    /// is a hole, reading as zeros). Fails like [`segment`](Self::segment) below the
    /// truncation point. Never creates a file.
    pub fn existing(&self, n: u64) -> Result<Option<Arc<Segment>>> {
        let state = self.lock();
        check_not_truncated(&state, n, self.segment_size)?;
        Ok(state.files.get(&n).cloned())
    }

    /// `fdatasync`s every segment written since its last sync, then the directory if segment
    /// files were created since the last flush. Every transfer that completed (and marked its
    /// segment dirty) before this call is durable when it returns `Ok`, even if another flush
    /// runs concurrently.
    pub fn flush(&self) -> Result<()> {
        let _flushing = faster_sync::lock_std(&self.flushing);
        let (dirty, dir_dirty) = {
            let mut state = self.lock();
            let dirty: Vec<(u64, Arc<Segment>)> = state
                .files
                .iter()
                .filter(|(_, s)| s.dirty.load(Ordering::Acquire))
                .map(|(n, s)| (*n, Arc::clone(s)))
                .collect();
            (dirty, std::mem::take(&mut state.dir_dirty))
        };
        let mut result = Ok(());
        for (n, seg) in dirty {
            if seg.dirty.swap(false, Ordering::AcqRel) {
                if let Err(e) = seg.file.sync_data() {
                    seg.mark_dirty();
                    result = Err(DeviceError::io(OpKind::Flush, n * self.segment_size, e));
                    break;
                }
            }
        }
        if result.is_ok() && dir_dirty {
            result = self.sync_dir(OpKind::Flush);
        }
        if result.is_err() && dir_dirty {
            self.lock().dir_dirty = true;
        }
        result
    }

    /// `fsync`s the directory, making creations and deletions of segment files durable.
    fn sync_dir(&self, op: OpKind) -> Result<()> {
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| DeviceError::io(op, 0, e))
    }

    /// Raises the truncation point to `offset`, deletes every segment lying entirely below it
    /// and `fsync`s the directory, so the deletion is durable when this returns `Ok`.
    /// In-flight requests on a deleted segment still complete (they hold the open file).
    pub fn truncate_front(&self, offset: u64) -> Result<()> {
        self.check_writable()?;
        {
            let mut state = self.lock();
            if offset <= state.begin {
                return Ok(());
            }
            state.begin = offset;
            self.begin.store(offset, Ordering::Release);
            let whole = offset / self.segment_size;
            let doomed: Vec<u64> = state.files.range(..whole).map(|(n, _)| *n).collect();
            for n in doomed {
                match fs::remove_file(self.path(n)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        let at = n * self.segment_size;
                        return Err(DeviceError::io(OpKind::Truncate, at, e));
                    }
                }
                state.files.remove(&n);
                state.dir_dirty = true;
            }
        }
        // The lock is released: deletions need no more than this one sync. If it fails, the
        // next flush retries it (`dir_dirty` stays set).
        self.sync_dir(OpKind::Truncate)
    }
}

/// Fails with `Truncated` if segment `n` lies entirely below the truncation point.
fn check_not_truncated(state: &State, n: u64, segment_size: u64) -> Result<()> {
    let seg_end = n.saturating_add(1).saturating_mul(segment_size);
    if seg_end <= state.begin {
        return Err(DeviceError::Truncated {
            offset: n.saturating_mul(segment_size),
            begin: state.begin,
        });
    }
    Ok(())
}

/// Tries `O_DIRECT` in `dir`: opening a probe file with it (`EINVAL` means the file system
/// refuses it) and writing and reading one aligned block (`EINVAL` means the alignment is too
/// small for the device). Returns whether `O_DIRECT` can be used.
fn probe_direct(dir: &Path, options: &DeviceOptions) -> Result<bool> {
    let path = dir.join(format!("{}.direct-probe", options.base_name));
    let err = |e| DeviceError::io(OpKind::Open, 0, e);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path);
    let result = match file {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            log::info!(
                "{}: O_DIRECT refused at open; using buffered I/O",
                dir.display()
            );
            Ok(false)
        }
        Err(e) => return Err(err(e)),
        Ok(file) => {
            let mut buf = AlignedBuf::new(options.alignment, options.alignment)?;
            let probe = file
                .write_all_at(&buf, 0)
                .and_then(|()| file.read_exact_at(&mut buf, 0));
            match probe {
                Ok(()) => Ok(true),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    log::info!(
                        "{}: O_DIRECT with alignment {} refused; using buffered I/O",
                        dir.display(),
                        options.alignment
                    );
                    Ok(false)
                }
                Err(e) => Err(err(e)),
            }
        }
    };
    let _ = fs::remove_file(&path);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_stop_at_segment_end_and_cap() {
        assert_eq!(
            next_chunk(4096 * 3, 8192, 4096 * 4, 1 << 20),
            Chunk {
                segment: 0,
                file_offset: 4096 * 3,
                len: 4096
            }
        );
        assert_eq!(
            next_chunk(4096 * 4, 8192, 4096 * 4, 512),
            Chunk {
                segment: 1,
                file_offset: 0,
                len: 512
            }
        );
        assert_eq!(next_chunk(10, 5, 100, 1000).len, 5);
    }

    #[test]
    fn reopen_derives_begin_and_size() {
        let dir = tempfile::tempdir().unwrap();
        let opts = DeviceOptions::default()
            .with_segment_size(8192)
            .with_direct_io(false);
        {
            let segs = SegmentFiles::open(dir.path(), &opts).unwrap();
            for n in 0..3 {
                let seg = segs.segment(n).unwrap();
                seg.file.write_all_at(&[1u8; 4096], 0).unwrap();
            }
            segs.truncate_front(8192 + 4096).unwrap();
            assert!(!dir.path().join("log.0").exists());
            assert!(dir.path().join("log.1").exists());
            assert!(matches!(
                segs.segment(0),
                Err(DeviceError::Truncated { .. })
            ));
            segs.flush().unwrap();
        }
        let segs = SegmentFiles::open(dir.path(), &opts).unwrap();
        assert_eq!(segs.begin(), 8192);
        assert_eq!(segs.size(), 2 * 8192 + 4096);
    }

    #[test]
    fn links_are_never_followed_and_read_only_devices_never_write() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let opts = DeviceOptions::default()
            .with_segment_size(8192)
            .with_direct_io(false);
        // A segment file that is a link to a file outside.
        let target = outside.path().join("victim");
        std::fs::write(&target, b"outside").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join("log.0")).unwrap();
        match SegmentFiles::open(dir.path(), &opts) {
            Err(DeviceError::Symlink { path }) => assert_eq!(path, dir.path().join("log.0")),
            other => panic!("expected Symlink, got {other:?}"),
        }
        // The device directory itself is a link.
        let link = dir.path().join("linked");
        std::os::unix::fs::symlink(outside.path(), &link).unwrap();
        assert!(matches!(
            SegmentFiles::open(&link, &opts),
            Err(DeviceError::Symlink { .. })
        ));
        assert_eq!(std::fs::read(&target).unwrap(), b"outside");
        // Read-only: no directory is created, and nothing is written.
        let ro = opts.clone().with_read_only(true);
        assert!(SegmentFiles::open(&dir.path().join("missing"), &ro).is_err());
        assert!(!dir.path().join("missing").exists());
        let plain = dir.path().join("plain");
        {
            let segs = SegmentFiles::open(&plain, &opts).unwrap();
            segs.segment(0)
                .unwrap()
                .file
                .write_all_at(&[7u8; 4096], 0)
                .unwrap();
        }
        let segs = SegmentFiles::open(&plain, &ro).unwrap();
        assert_eq!(segs.size(), 4096);
        assert!(matches!(segs.segment(0), Err(DeviceError::ReadOnly { .. })));
        assert!(matches!(
            segs.truncate_front(8192),
            Err(DeviceError::ReadOnly { .. })
        ));
        let seg = segs.existing(0).unwrap().unwrap();
        assert!(
            seg.file.write_all_at(&[1u8; 8], 0).is_err(),
            "opened without write access"
        );
    }
}
