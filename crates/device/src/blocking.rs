//! Waiting for a device's requests, for code that has nothing else to do meanwhile (recovery,
//! scans, tools): [`Completion`], one request's result slot, and the blocking forms
//! [`read_sync`] and [`write_sync`] built on it.

use std::sync::{Arc, Mutex};

use faster_sync::lock_std;

use crate::{AlignedBuf, Device, Result};

/// The result of one request, filled in by its callback ([`Completion::callback`]) on
/// whichever thread drives the device's completions; [`Completion::wait`] drives them until
/// it arrives. Clones share the slot.
#[derive(Debug)]
pub struct Completion<T> {
    slot: Arc<Mutex<Option<Result<T>>>>,
}

impl<T> Clone for Completion<T> {
    fn clone(&self) -> Self {
        Completion {
            slot: Arc::clone(&self.slot),
        }
    }
}

impl<T> Default for Completion<T> {
    fn default() -> Self {
        Completion {
            slot: Arc::new(Mutex::new(None)),
        }
    }
}

impl<T: Send + 'static> Completion<T> {
    /// An empty slot.
    pub fn new() -> Self {
        Self::default()
    }

    /// The callback to give the request: it stores the result here.
    pub fn callback(&self) -> Box<dyn FnOnce(Result<T>) + Send> {
        let slot = Arc::clone(&self.slot);
        Box::new(move |r| *lock_std(&slot) = Some(r))
    }

    /// Waits for the result, driving `device`'s completions (yielding when another thread
    /// runs them).
    pub fn wait(&self, device: &dyn Device) -> Result<T> {
        loop {
            if let Some(r) = lock_std(&self.slot).take() {
                return r;
            }
            if device.wait()? == 0 {
                std::thread::yield_now();
            }
        }
    }
}

/// Reads into `buf` at `offset` and waits for the read, driving the device's completions.
pub fn read_sync(device: &dyn Device, offset: u64, buf: AlignedBuf) -> Result<AlignedBuf> {
    let done = Completion::new();
    device.read(offset, buf, done.callback())?;
    done.wait(device)
}

/// Writes `buf` at `offset` and waits for the write, driving the device's completions.
pub fn write_sync(device: &dyn Device, offset: u64, buf: AlignedBuf) -> Result<()> {
    let done = Completion::new();
    device.write(offset, Box::new(buf), done.callback())?;
    done.wait(device)
}
