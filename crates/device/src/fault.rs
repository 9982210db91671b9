//! Fault injection: make chosen requests fail with a chosen error, on any device.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::error::{DeviceError, OpKind};

type Predicate = Arc<dyn Fn(OpKind, u64, usize) -> bool + Send + Sync>;

/// One armed fault: which requests it matches and what error it produces.
///
/// A fault matches a request if the kind filter (if any) and the predicate (if any) accept it.
/// It lets the first [`after`](Fault::after) matching requests through, then fails the next
/// [`times`](Fault::times) matching ones (default 1), then disarms.
#[derive(Clone)]
pub struct Fault {
    kind: Option<OpKind>,
    predicate: Option<Predicate>,
    skip: u64,
    remaining: Option<u64>,
    errno: Option<i32>,
}

impl fmt::Debug for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fault")
            .field("kind", &self.kind)
            .field("has_predicate", &self.predicate.is_some())
            .field("skip", &self.skip)
            .field("remaining", &self.remaining)
            .field("errno", &self.errno)
            .finish()
    }
}

impl Fault {
    /// A fault matching every read, write and flush.
    pub fn any() -> Self {
        Fault {
            kind: None,
            predicate: None,
            skip: 0,
            remaining: Some(1),
            errno: None,
        }
    }

    /// A fault matching requests of one kind.
    pub fn on(kind: OpKind) -> Self {
        Fault {
            kind: Some(kind),
            ..Fault::any()
        }
    }

    /// Also require `predicate(kind, offset, len)` to hold (offset and len are 0 for flush).
    pub fn when(
        mut self,
        predicate: impl Fn(OpKind, u64, usize) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.predicate = Some(Arc::new(predicate));
        self
    }

    /// Let the first `n` matching requests succeed (so `after(n)` fails the `n+1`-th).
    pub fn after(mut self, n: u64) -> Self {
        self.skip = n;
        self
    }

    /// Fail `n` matching requests before disarming (default 1).
    pub fn times(mut self, n: u64) -> Self {
        self.remaining = Some(n);
        self
    }

    /// Never disarm.
    pub fn forever(mut self) -> Self {
        self.remaining = None;
        self
    }

    /// Fail with `DeviceError::Io` carrying this OS error code instead of
    /// [`DeviceError::Injected`].
    pub fn errno(mut self, errno: i32) -> Self {
        self.errno = Some(errno);
        self
    }

    fn matches(&self, kind: OpKind, offset: u64, len: usize) -> bool {
        self.kind.is_none_or(|k| k == kind)
            && self.predicate.as_ref().is_none_or(|p| p(kind, offset, len))
    }
}

/// A shared, cloneable set of armed [`Fault`]s. Clones share the same set, so a test keeps one
/// clone and passes another in [`DeviceOptions::faults`](crate::DeviceOptions::faults).
///
/// Devices consult it once per read or write request (before doing any I/O for it) and once per
/// flush; a fired fault fails that request as if the I/O had failed, and leaves the device and
/// its data untouched.
#[derive(Clone, Default)]
pub struct FaultInjector {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    faults: Mutex<Vec<Fault>>,
    fired: AtomicU64,
}

impl fmt::Debug for FaultInjector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultInjector")
            .field("armed", &self.lock().len())
            .field("fired", &self.fired())
            .finish()
    }
}

impl FaultInjector {
    /// A fresh injector with no faults armed.
    pub fn new() -> Self {
        FaultInjector::default()
    }

    /// Arms a fault.
    pub fn inject(&self, fault: Fault) {
        self.lock().push(fault);
    }

    /// Disarms every fault.
    pub fn clear(&self) {
        self.lock().clear();
    }

    /// How many requests have been failed by injected faults so far.
    pub fn fired(&self) -> u64 {
        self.inner.fired.load(Ordering::Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Fault>> {
        faster_sync::lock_std(&self.inner.faults)
    }

    /// Consults the armed faults for one request; returns the error to fail it with, if any.
    pub(crate) fn check(&self, kind: OpKind, offset: u64, len: usize) -> Option<DeviceError> {
        let mut faults = self.lock();
        if faults.is_empty() {
            return None;
        }
        let mut result = None;
        for fault in faults.iter_mut() {
            if !fault.matches(kind, offset, len) {
                continue;
            }
            if fault.skip > 0 {
                fault.skip -= 1;
                continue;
            }
            if result.is_none() {
                if let Some(r) = fault.remaining.as_mut() {
                    *r -= 1;
                }
                result = Some(match fault.errno {
                    Some(e) => DeviceError::io(kind, offset, io::Error::from_raw_os_error(e)),
                    None => DeviceError::Injected { op: kind, offset },
                });
            }
        }
        faults.retain(|f| f.remaining != Some(0));
        if result.is_some() {
            self.inner.fired.fetch_add(1, Ordering::Relaxed);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_and_predicate() {
        let f = FaultInjector::new();
        f.inject(Fault::on(OpKind::Write).after(2));
        assert!(f.check(OpKind::Write, 0, 1).is_none());
        assert!(f.check(OpKind::Read, 0, 1).is_none());
        assert!(f.check(OpKind::Write, 0, 1).is_none());
        assert!(matches!(
            f.check(OpKind::Write, 7, 1),
            Some(DeviceError::Injected {
                op: OpKind::Write,
                offset: 7
            })
        ));
        assert!(
            f.check(OpKind::Write, 0, 1).is_none(),
            "fires once by default"
        );
        f.inject(
            Fault::any()
                .when(|_, off, _| off >= 100)
                .errno(libc::EIO)
                .times(2),
        );
        assert!(f.check(OpKind::Read, 99, 1).is_none());
        assert_eq!(
            f.check(OpKind::Read, 100, 1).unwrap().raw_os_error(),
            Some(libc::EIO)
        );
        assert!(f.check(OpKind::Flush, 200, 0).is_some());
        assert!(f.check(OpKind::Read, 100, 1).is_none());
        assert_eq!(f.fired(), 3);
    }
}
