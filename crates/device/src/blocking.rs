//! Blocking forms of a device's reads and writes, for code that has nothing else to do while
//! it waits (recovery, scans, tools).

use std::sync::{Arc, Mutex};

use crate::{AlignedBuf, Device, Result};

type Slot<T> = Arc<Mutex<Option<Result<T>>>>;

/// Reads into `buf` at `offset` and waits for the read, driving the device's completions.
pub fn read_sync(device: &dyn Device, offset: u64, buf: AlignedBuf) -> Result<AlignedBuf> {
    let slot: Slot<AlignedBuf> = Arc::default();
    let s2 = slot.clone();
    device.read(
        offset,
        buf,
        Box::new(move |r| *s2.lock().unwrap_or_else(|p| p.into_inner()) = Some(r)),
    )?;
    wait_for(device, &slot)
}

/// Writes `buf` at `offset` and waits for the write, driving the device's completions.
pub fn write_sync(device: &dyn Device, offset: u64, buf: AlignedBuf) -> Result<()> {
    let slot: Slot<()> = Arc::default();
    let s2 = slot.clone();
    device.write(
        offset,
        Box::new(buf),
        Box::new(move |r| *s2.lock().unwrap_or_else(|p| p.into_inner()) = Some(r)),
    )?;
    wait_for(device, &slot)
}

fn wait_for<T>(device: &dyn Device, slot: &Slot<T>) -> Result<T> {
    loop {
        if let Some(r) = slot.lock().unwrap_or_else(|p| p.into_inner()).take() {
            return r;
        }
        if device.wait()? == 0 {
            std::thread::yield_now();
        }
    }
}
