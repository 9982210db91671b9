//! [`FileDevice`]: the portable device, positioned reads and writes on segment files.
//!
//! Requests are performed synchronously inside [`Device::read`]/[`Device::write`] (with
//! `pread`/`pwrite` through [`FileExt`]), and their callbacks are queued; the next
//! [`Device::poll`] or [`Device::wait`] runs them. So callbacks never run re-entrantly inside a
//! submission, exactly as with the io_uring device, and `in_flight` counts the queued ones.

use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::buf::{AlignedBuf, IoSource};
use crate::completion::CompletionQueue;
use crate::error::{DeviceError, OpKind, Result};
use crate::forward::{requests_at_submission, storage_on_segments};
use crate::options::DeviceOptions;
use crate::segments::{SegmentFiles, next_chunk};
use crate::{Device, DeviceKind, ReadCallback, WriteCallback, check_read, check_write};

/// The portable device: `pread`/`pwrite` on segment files, `O_DIRECT` when asked for and
/// accepted.
///
/// Requests are performed synchronously inside [`Device::read`]/[`Device::write`], and their
/// callbacks are queued; the next [`Device::poll`] or [`Device::wait`] (or the device's drop)
/// runs them. So callbacks never run re-entrantly inside a submission, exactly as with the
/// io_uring device, and [`Device::in_flight`] counts the queued ones.
pub struct FileDevice {
    segs: SegmentFiles,
    options: DeviceOptions,
    done: CompletionQueue,
}

impl FileDevice {
    /// Opens (creating if needed) the device stored in directory `dir`.
    pub fn open(dir: impl AsRef<Path>, options: DeviceOptions) -> Result<Self> {
        let segs = SegmentFiles::open(dir.as_ref(), &options)?;
        Ok(FileDevice {
            segs,
            options,
            done: CompletionQueue::default(),
        })
    }

    fn read_now(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        if let Some(e) = self.options.faults.check(OpKind::Read, offset, buf.len()) {
            return Err(e);
        }
        let cap = self.options.transfer_cap();
        let mut pos = 0;
        while pos < buf.len() {
            let at = offset + pos as u64;
            let c = next_chunk(at, buf.len() - pos, self.segs.segment_size(), cap);
            let dst = &mut buf[pos..pos + c.len];
            let Some(seg) = self.segs.existing(c.segment)? else {
                // No file for this segment: a hole.
                dst.fill(0);
                pos += c.len;
                continue;
            };
            match seg.file.read_at(dst, c.file_offset) {
                // Past the end of this segment file but below the device size: a hole.
                Ok(0) => {
                    dst.fill(0);
                    pos += c.len;
                }
                Ok(n) => pos += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(DeviceError::io(OpKind::Read, at, e)),
            }
        }
        Ok(())
    }

    fn write_now(&self, offset: u64, data: &[u8]) -> Result<()> {
        if let Some(e) = self.options.faults.check(OpKind::Write, offset, data.len()) {
            return Err(e);
        }
        let cap = self.options.transfer_cap();
        let mut pos = 0;
        while pos < data.len() {
            let at = offset + pos as u64;
            let c = next_chunk(at, data.len() - pos, self.segs.segment_size(), cap);
            let seg = self.segs.segment(c.segment)?;
            match seg.file.write_at(&data[pos..pos + c.len], c.file_offset) {
                Ok(0) => {
                    let e = io::Error::from(io::ErrorKind::WriteZero);
                    return Err(DeviceError::io(OpKind::Write, at, e));
                }
                Ok(n) => {
                    // After the bytes reached the file, never before (see `mark_dirty`).
                    seg.mark_dirty();
                    pos += n;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(DeviceError::io(OpKind::Write, at, e)),
            }
        }
        self.segs.note_written(offset + data.len() as u64);
        Ok(())
    }
}

impl Device for FileDevice {
    fn kind(&self) -> DeviceKind {
        DeviceKind::File
    }

    fn alignment(&self) -> usize {
        self.options.alignment
    }

    requests_at_submission!();
    storage_on_segments!();
}
