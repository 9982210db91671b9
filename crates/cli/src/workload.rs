//! The verifiable workload of the crash test: every operation is tagged with its session and
//! serial number, so the CPR prefix of each session can be checked exactly after recovery.
//!
//! Session `sid`'s operation with serial `n` is, by `n % 4`:
//! * `0`: an RMW (`AddU64`, +1) of the session's counter key `c<sid>`;
//! * `1`, `2`: an upsert of the unique key `u<sid><n>` with value [`value`]`(n)`;
//! * `3`: an upsert of the session's overwritten key `l<sid>` with value
//!   [`last_value`]`(n)`.
//!
//! After recovering a checkpoint where the session's cut is `t` ([`verify_session`]): every
//! unique key with `n <= t` holds `value(n)` and none with `n > t` exists, the counter
//! equals the number of `n <= t` with `n % 4 == 0`, and `l<sid>` holds `last_value` of the
//! largest such `n` with `n % 4 == 3`.
//!
//! The counter and overwritten keys are 8 bytes long, and so are the overwritten key's
//! values: those operations take the store's fast paths for 8-byte keys and values (in-place
//! updates across checkpoints, the case CPR versions guard). Unique keys (17 bytes) and their
//! values (32 bytes) take the general paths, so the workload checks both.

use faster::{AddU64, BatchOp, Session};

use crate::error::{CliError, Result};

/// Past a cut, keys are checked for absence densely for this many serials, then sampled
/// (one in [`ABSENCE_SAMPLE`]).
pub const DENSE_ABSENCE: u64 = 4096;
/// The sampling period of the absence check beyond [`DENSE_ABSENCE`].
pub const ABSENCE_SAMPLE: u64 = 61;

/// The unique key of session `sid`'s operation `n`.
pub fn unique_key(sid: u64, n: u64) -> Vec<u8> {
    let mut k = vec![b'u'];
    k.extend_from_slice(&sid.to_le_bytes());
    k.extend_from_slice(&n.to_le_bytes());
    k
}

/// An 8-byte key of session `sid`: `prefix`, then the low 7 bytes of `sid` (session ids
/// count up from 1, far below `2^56`).
fn short_key(prefix: u8, sid: u64) -> Vec<u8> {
    let mut k = vec![prefix];
    k.extend_from_slice(&sid.to_le_bytes()[..7]);
    k
}

/// The counter key of session `sid` (8 bytes).
pub fn counter_key(sid: u64) -> Vec<u8> {
    short_key(b'c', sid)
}

/// The overwritten key of session `sid` (8 bytes).
pub fn last_key(sid: u64) -> Vec<u8> {
    short_key(b'l', sid)
}

/// The value written to the overwritten key by operation `n`: `n`, 8 bytes.
pub fn last_value(n: u64) -> Vec<u8> {
    n.to_le_bytes().to_vec()
}

/// The value written by operation `n`: `n` and a filler of 24 bytes.
pub fn value(n: u64) -> Vec<u8> {
    let mut v = n.to_le_bytes().to_vec();
    v.extend_from_slice(&[(n % 251) as u8; 24]);
    v
}

/// Runs the session's next operation (serial `s.serial() + 1`) of the workload.
pub fn step(s: &mut Session) -> faster::Result<()> {
    let n = s.serial() + 1;
    let sid = s.id().as_u64();
    match n % 4 {
        0 => s.rmw(&counter_key(sid), &1u64.to_le_bytes(), &AddU64),
        3 => s.upsert(&last_key(sid), &last_value(n)),
        _ => s.upsert(&unique_key(sid, n), &value(n)),
    }
}

/// Runs the session's next `len` operations of the workload (serials `s.serial() + 1` on) as
/// one mixed batch ([`Session::batch`]): each serial is the same operation as in [`step`].
pub fn step_batch(s: &mut Session, len: u64) -> faster::Result<()> {
    let first = s.serial() + 1;
    let sid = s.id().as_u64();
    let one = 1u64.to_le_bytes();
    let items: Vec<(u64, Vec<u8>, Vec<u8>)> = (first..first + len)
        .map(|n| match n % 4 {
            0 => (n, counter_key(sid), Vec::new()),
            3 => (n, last_key(sid), last_value(n)),
            _ => (n, unique_key(sid, n), value(n)),
        })
        .collect();
    let ops: Vec<BatchOp<'_>> = items
        .iter()
        .map(|(n, k, v)| {
            if n % 4 == 0 {
                BatchOp::Rmw(k, &one)
            } else {
                BatchOp::Upsert(k, v)
            }
        })
        .collect();
    s.batch(&ops, &AddU64, |_, _| {})
}

/// Checks session `sid`'s exact prefix `t` through session `s`: operations `1..=t` are
/// present, and operations `t + 1..=issued` are absent (densely for [`DENSE_ABSENCE`]
/// serials past the cut, sampled beyond). A violation is [`CliError::Failed`] naming the
/// session and the operation; a failed read is [`CliError::Store`].
pub fn verify_session(s: &mut Session, sid: u64, t: u64, issued: u64) -> Result<()> {
    let violated = |what: String| Err(CliError::Failed(format!("session {sid}: {what}")));
    for n in 1..=issued.max(t) {
        if n % 4 == 0 || n % 4 == 3 || (n > t + DENSE_ABSENCE && n % ABSENCE_SAMPLE != 1) {
            continue;
        }
        let got = s.read(&unique_key(sid, n))?;
        if n <= t && got != Some(value(n)) {
            return violated(format!("operation {n} <= cut {t} is lost (read {got:?})"));
        }
        if n > t && got.is_some() {
            return violated(format!("operation {n} > cut {t} is present"));
        }
    }
    let counter = s.read(&counter_key(sid))?.map_or(0, |v| AddU64::decode(&v));
    if counter != t / 4 {
        return violated(format!(
            "counter is {counter}, but the cut {t} has {} increments",
            t / 4
        ));
    }
    let last = s.read(&last_key(sid))?;
    let want = (t >= 3).then(|| last_value(t - (t + 1) % 4));
    if last != want {
        return violated(format!(
            "overwritten key holds {last:?}, but the cut {t} wrote {want:?} last"
        ));
    }
    Ok(())
}
