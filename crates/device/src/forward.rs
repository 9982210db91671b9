//! The `Device` methods two devices share, written once as macros expanded inside their
//! `impl Device` blocks (each device keeps its own type, constructor and docs).

/// The request methods of a device that carries out each request at submission and queues
/// its callback for the next `poll` or `wait` ([`crate::FileDevice`], [`crate::MemoryDevice`]):
/// `read`, `write`, `poll`, `wait` and `in_flight`. The device has a field
/// `done: CompletionQueue` and methods `read_now(&self, offset, &mut [u8])` and
/// `write_now(&self, offset, &[u8])`.
macro_rules! requests_at_submission {
    () => {
        fn read(&self, offset: u64, buf: AlignedBuf, done: ReadCallback) -> Result<()> {
            check_read(self, offset, &buf)?;
            self.done.read_now(buf, done, |b| self.read_now(offset, b));
            Ok(())
        }

        fn write(&self, offset: u64, buf: Box<dyn IoSource>, done: WriteCallback) -> Result<()> {
            check_write(self, offset, buf.as_bytes())?;
            self.done
                .write_now(buf, done, |data| self.write_now(offset, data));
            Ok(())
        }

        fn poll(&self) -> Result<usize> {
            Ok(self.done.drain())
        }

        fn wait(&self) -> Result<usize> {
            Ok(self.done.drain())
        }

        fn in_flight(&self) -> usize {
            self.done.len()
        }
    };
}

/// The storage methods of a device on segment files ([`crate::FileDevice`],
/// [`crate::UringDevice`]): `is_direct`, `flush` (after the fault injector's say), `size`,
/// `begin` and `truncate_front`, all the segment files'. The device has fields
/// `segs: SegmentFiles` and `options: DeviceOptions`.
macro_rules! storage_on_segments {
    () => {
        fn is_direct(&self) -> bool {
            self.segs.is_direct()
        }

        fn flush(&self) -> Result<()> {
            if let Some(e) = self.options.faults.check(OpKind::Flush, 0, 0) {
                return Err(e);
            }
            self.segs.flush()
        }

        fn size(&self) -> u64 {
            self.segs.size()
        }

        fn begin(&self) -> u64 {
            self.segs.begin()
        }

        fn truncate_front(&self, offset: u64) -> Result<()> {
            self.segs.truncate_front(offset)
        }
    };
}

pub(crate) use {requests_at_submission, storage_on_segments};
