//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use faster_device::{AlignedBuf, Device, DeviceOptions, MemoryDevice};
use faster_epoch::LightEpoch;
use faster_hlog::{Hlog, HlogConfig};

/// A log over a fresh memory device.
pub fn memory_log(page: u64, memory: u64) -> (Hlog, LightEpoch) {
    let epoch = LightEpoch::new();
    let device: Arc<dyn Device> = Arc::new(MemoryDevice::new(DeviceOptions::default()).unwrap());
    let config = HlogConfig::default()
        .with_page_size(page)
        .with_memory_size(memory);
    (Hlog::new(config, device, epoch.clone()).unwrap(), epoch)
}

/// The deterministic value of record `i` of length `len`.
pub fn value_of(i: u64, len: usize) -> Vec<u8> {
    let seed = i.wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes();
    (0..len).map(|j| seed[j % 8] ^ (j / 8) as u8).collect()
}

/// Reads `len` bytes at `offset` from `device` synchronously.
pub fn read_device(device: &dyn Device, offset: u64, len: usize) -> Vec<u8> {
    let slot = Arc::new(Mutex::new(None));
    let s2 = slot.clone();
    device
        .read(
            offset,
            AlignedBuf::new(len, 4096).unwrap(),
            Box::new(move |r| *s2.lock().unwrap() = Some(r)),
        )
        .unwrap();
    loop {
        if let Some(r) = slot.lock().unwrap().take() {
            return r.unwrap().to_vec();
        }
        device.wait().unwrap();
    }
}
