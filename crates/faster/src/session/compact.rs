//! The compaction's own operation ([`Session::copy_if_newest`]), run by the store's internal
//! compaction session in the same envelope as every operation (so it follows checkpoints
//! and growths like any session).

use faster_hlog::Address;

use super::Session;
use crate::error::Result;
use crate::ops::compact::{self, Copied};

impl Session {
    /// Copies the record of `key` with `value` at `addr` to the tail if it is still its
    /// key's newest record (see [`crate::ops::compact`]; `newer` as there).
    pub(crate) fn copy_if_newest(
        &mut self,
        key: &[u8],
        value: &[u8],
        addr: Address,
        newer: &mut dyn FnMut(&[u8], Address) -> bool,
    ) -> Result<Copied> {
        self.op(|p| {
            Ok(Ok(compact::copy_if_newest(
                &mut p.op, key, value, addr, newer,
            )?))
        })
    }
}
