//! # faster: a FASTER-style concurrent key-value store
//!
//! `faster` is the thin facade of a workspace of small crates, in the way
//! `crossbeam` re-exports its parts. Each part owns one concern:
//!
//! | module | crate | owns |
//! |---|---|---|
//! | [`epoch`] | `faster-epoch` | epoch protection, drain actions, phase acknowledgement |
//! | [`device`] | `faster-device` | storage devices: io_uring, portable file, in-memory |
//! | [`hlog`] | `faster-hlog` | the hybrid log (arrives with its issue) |
//! | [`index`] | `faster-index` | the hash index (arrives with its issue) |
//! | [`cpr`] | `faster-cpr` | the CPR checkpoint state machine (arrives with its issue) |
//! | [`recovery`] | `faster-recovery` | checkpoint metadata and recovery (arrives with its issue) |
//!
//! The store itself (`FasterKv`, sessions, read / upsert / rmw / delete,
//! checkpoint and recovery) will live in this crate and compose the parts;
//! no other crate of the workspace knows about this one.
//!
//! ## Today
//!
//! The epoch and device layers are complete:
//!
//! ```
//! use faster::device::{AlignedBuf, Device, DeviceOptions, MemoryDevice};
//! use faster::epoch::LightEpoch;
//!
//! let epoch = LightEpoch::new();
//! let mut me = epoch.register()?;
//! let guard = me.protect();
//! drop(guard);
//!
//! let device = MemoryDevice::new(DeviceOptions::default())?;
//! let page = AlignedBuf::from_slice(&[7u8; 4096], device.alignment())?;
//! device.write(0, Box::new(page), Box::new(|r| r.expect("write")))?;
//! faster::device::drain(&device)?;
//! assert_eq!(device.size(), 4096);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[doc(inline)]
pub use faster_cpr as cpr;
#[doc(inline)]
pub use faster_device as device;
#[doc(inline)]
pub use faster_epoch as epoch;
#[doc(inline)]
pub use faster_hlog as hlog;
#[doc(inline)]
pub use faster_index as index;
#[doc(inline)]
pub use faster_recovery as recovery;
