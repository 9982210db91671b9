//! [`LogScan`]: an iterator over the records of an address range, from disk and memory.

use faster_device::{AlignedBuf, Completion};
use faster_epoch::Participant;

use crate::address::Address;
use crate::checksum;
use crate::error::{HlogError, Result};
use crate::hlog::Hlog;
use crate::record::{Entry, HEADER_SIZE, Header, RecordRef, parse_entry};

/// A record returned by a [`LogScan`], copied out of the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanRecord {
    /// The record's address.
    pub address: Address,
    /// Its header word at the time of the scan.
    pub header: Header,
    /// Its checkpoint version.
    pub version: u32,
    /// Its key.
    pub key: Vec<u8>,
    /// Its value.
    pub value: Vec<u8>,
    /// Its size in the log, in bytes.
    pub size: usize,
}

/// Iterator over the valid records of `[from, to)` in address order, created by
/// [`Hlog::scan`]. Skips records marked invalid, page padding and unwritten space.
///
/// Pages below the head are read from the device, one page per request (the next page's
/// read is issued as soon as a page arrives, so the device works while the caller does),
/// and verified before any of their records is returned (every record's
/// checksum, and that the page holds nothing but records and clean padding up to its end or
/// the scan's: [`crate::checksum::verify_range`]); pages in memory are copied out of their frame under the scan's own epoch
/// participant (protected only while copying, so the scan never holds the log back). After an
/// error the iterator ends.
pub struct LogScan<'a> {
    log: &'a Hlog,
    participant: Participant,
    next: u64,
    to: u64,
    page: Option<u64>,
    buf: Vec<u8>,
    failed: bool,
    /// The read of the next device page, issued before this one's records are returned, so
    /// that the device works while the caller does.
    ahead: Option<Ahead>,
}

/// A read of device page `page` (`len` bytes from its start) in flight.
struct Ahead {
    page: u64,
    len: usize,
    done: Completion<AlignedBuf>,
}

impl Hlog {
    /// Scans `[from, to)`: `from` is raised to the begin address and `to` lowered to the tail.
    /// `from` must be the start of a record or of a page, and `to` the end of a record (for
    /// example the tail). Registers an epoch participant for the scan's lifetime.
    pub fn scan(&self, from: Address, to: Address) -> Result<LogScan<'_>> {
        // An observer: a scan must never hold a checkpoint's phase open.
        let participant = self.epoch().register_observer()?;
        let from = from.max(self.begin_address()).raw();
        let to = to.min(self.tail_address()).raw();
        if from % 8 != 0 {
            return Err(HlogError::AddressOutOfRange {
                address: Address::from_raw_truncated(from),
                reason: "scan start is not 8-byte aligned",
            });
        }
        Ok(LogScan {
            log: self,
            participant,
            next: from,
            to,
            page: None,
            buf: Vec::new(),
            failed: false,
            ahead: None,
        })
    }
}

impl LogScan<'_> {
    /// The bytes of page `page` the scan reads: `[start, end)`, limited to `to`.
    fn extent(&self, page: u64) -> (u64, u64) {
        let s = self.log.shared();
        let bits = s.geo.page_bits;
        let start = page << bits;
        let mut end = ((page + 1) << bits).min(self.to).max(start);
        // The unused end of the page a recovered log resumed after holds no log bytes (and
        // may lie past the device's end): the page ends where the recovered bytes end.
        let (hole_start, hole_end) = s.hole();
        if start < hole_end && end > hole_start {
            end = hole_start.max(start);
        }
        (start, end)
    }

    /// The device read of `[start, end)`, in aligned blocks: its length.
    fn read_len(&self, (start, end): (u64, u64)) -> usize {
        let align = self.log.shared().geo.alignment as u64;
        ((end - start).div_ceil(align) * align) as usize
    }

    /// Issues the read of device page `page` if the scan will need it (it lies below the
    /// head, where pages stay, and starts before `to`). A failure to issue it is left to
    /// the synchronous read that will follow.
    fn read_ahead(&mut self, page: u64) {
        let (start, end) = self.extent(page);
        if start >= self.to || end <= start || start >= self.log.shared().head() {
            return;
        }
        let len = self.read_len((start, end));
        let Ok(buf) = AlignedBuf::new(len, self.log.shared().geo.alignment) else {
            return;
        };
        let done = Completion::new();
        if self.log.device().read(start, buf, done.callback()).is_ok() {
            self.ahead = Some(Ahead { page, len, done });
        }
    }

    /// The bytes of device page `page` (`len` from its start): the read issued ahead, or a
    /// read now.
    fn read_page(&mut self, page: u64, start: u64, len: usize) -> Result<AlignedBuf> {
        if let Some(a) = self.ahead.take()
            && a.page == page
            && a.len == len
        {
            return Ok(a.done.wait(&**self.log.device())?);
        }
        read_sync(self.log, start, len)
    }

    /// Loads page `page`, limited to `to`, into `buf` (which then starts at the page start).
    fn load(&mut self, page: u64) -> Result<()> {
        let s = self.log.shared();
        let bits = s.geo.page_bits;
        let (start, end) = self.extent(page);
        let len = (end - start) as usize;
        self.buf.clear();
        {
            let _guard = self.participant.protect();
            if start >= s.head() {
                // In memory: the frame holds this page while we are protected. Acquire loads:
                // records of the mutable region may be published while we copy.
                self.buf.resize(len, 0);
                s.frame(page).copy_out_acquire(0, &mut self.buf);
                let stable = s.safe_read_only();
                if end > stable {
                    // Values at or above `safe_read_only` may be updated in place while we
                    // copy: re-read them under their seqlock.
                    let first = self.next.saturating_sub(start);
                    stabilize(self.log, &mut self.buf, page, first as usize, stable);
                }
                self.page = Some(page);
                return Ok(());
            }
        }
        // Below the head: the whole page was flushed before the head passed it.
        if len == 0 {
            self.page = Some(page);
            return Ok(());
        }
        let read_len = self.read_len((start, end));
        let data = self.read_page(page, start, read_len)?;
        self.buf.extend_from_slice(&data[..len]);
        drop(data);
        // The next page's read runs while this one is checked and its records used.
        self.read_ahead(page + 1);
        // From the device: every record's checksum, and nothing but records and clean
        // padding up to the page's end (or the scan's).
        checksum::verify_range(&self.buf, start, (self.next, end), bits, |_, _| {})?;
        self.page = Some(page);
        Ok(())
    }
}

/// Walks the records of `buf`, a copy of the in-memory page `page`, from offset `first` and replaces
/// the value (and value length) of each record at or above `stable` with a consistent
/// copy read from the frame under the record's seqlock. Called under epoch protection,
/// so the frame still holds `page`. Stops at padding, unwritten space or bytes that do
/// not decode (the iterator reports those itself).
fn stabilize(log: &Hlog, buf: &mut [u8], page: u64, first: usize, stable: u64) {
    let s = log.shared();
    let start = page << s.geo.page_bits;
    let words = s.frame(page).words();
    let mut value = Vec::new();
    let mut off = first;
    while off + 8 <= buf.len() {
        let (size, key_len) = match parse_entry(&buf[off..]) {
            Ok(Entry::Record(r)) => (r.size(), r.key().len()),
            _ => return,
        };
        let address = Address::from_raw_truncated(start + off as u64);
        if address.raw() >= stable {
            let Ok(live) = RecordRef::parse(address, &words[off / 8..]) else {
                return;
            };
            live.read_value_into(&mut value);
            let at = off + HEADER_SIZE + key_len.next_multiple_of(8);
            // `value.len()` is at most the capacity, which lies inside the copied record.
            if let Some(dst) = buf.get_mut(at..at + value.len()) {
                dst.copy_from_slice(&value);
                buf[off + 20..off + 24].copy_from_slice(&(value.len() as u32).to_le_bytes());
            }
        }
        off += size;
    }
}

/// Reads `len` bytes at `offset` from the log's device, driving completions until done.
pub(crate) fn read_sync(log: &Hlog, offset: u64, len: usize) -> Result<AlignedBuf> {
    let buf = AlignedBuf::new(len, log.geometry().alignment)?;
    Ok(faster_device::read_sync(&**log.device(), offset, buf)?)
}

/// A record of a [`LogScan`] borrowed from the scan's page copy ([`LogScan::next_ref`]):
/// no allocation per record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanRef<'a> {
    /// The record's address.
    pub address: Address,
    /// Its header word at the time of the scan.
    pub header: Header,
    /// Its checkpoint version.
    pub version: u32,
    /// Its key.
    pub key: &'a [u8],
    /// Its value.
    pub value: &'a [u8],
    /// Its size in the log, in bytes.
    pub size: usize,
}

impl ScanRef<'_> {
    /// The record, copied out.
    pub fn to_owned(&self) -> ScanRecord {
        ScanRecord {
            address: self.address,
            header: self.header,
            version: self.version,
            key: self.key.to_vec(),
            value: self.value.to_vec(),
            size: self.size,
        }
    }
}

impl LogScan<'_> {
    /// The next record, borrowed until the next call: what [`Iterator::next`] returns
    /// without copying the key and the value out. After an error the scan ends.
    pub fn next_ref(&mut self) -> Option<Result<ScanRef<'_>>> {
        let (address, off) = match self.advance()? {
            Ok(found) => found,
            Err(e) => return Some(Err(e)),
        };
        match parse_entry(&self.buf[off..]) {
            Ok(Entry::Record(r)) => Some(Ok(ScanRef {
                address,
                header: r.header(),
                version: r.version(),
                key: r.key(),
                value: r.value(),
                size: r.size(),
            })),
            // `advance` parsed the same bytes into a record just now.
            _ => {
                self.failed = true;
                Some(Err(HlogError::Corrupt {
                    address,
                    reason: "a record changed in the scan's own copy",
                }))
            }
        }
    }

    /// Moves to the next valid record: its address and its offset in `buf`.
    fn advance(&mut self) -> Option<Result<(Address, usize)>> {
        let bits = self.log.page_size().trailing_zeros();
        loop {
            if self.failed || self.next >= self.to {
                return None;
            }
            let page = self.next >> bits;
            let page_start = page << bits;
            if self.page != Some(page)
                && let Err(e) = self.load(page)
            {
                self.failed = true;
                return Some(Err(e));
            }
            let off = (self.next - page_start) as usize;
            let bytes = self.buf.get(off..).unwrap_or(&[]);
            if bytes.len() < 8 {
                self.next = page_start + (1 << bits);
                continue;
            }
            let address = Address::from_raw_truncated(self.next);
            match parse_entry(bytes) {
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e.at(address)));
                }
                Ok(Entry::Filler | Entry::Unwritten) => {
                    self.next = page_start + (1 << bits);
                }
                Ok(Entry::Record(r)) => {
                    self.next += r.size() as u64;
                    if r.header().is_invalid() {
                        continue;
                    }
                    return Some(Ok((address, off)));
                }
            }
        }
    }
}

impl Iterator for LogScan<'_> {
    type Item = Result<ScanRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_ref().map(|r| r.map(|r| r.to_owned()))
    }
}
