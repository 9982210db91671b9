//! [`BatchOp`]: one operation of a mixed batch ([`crate::Session::batch`]).

/// One operation of a mixed batch: the batched forms of [`crate::Session::read`],
/// [`crate::Session::upsert`], [`crate::Session::rmw`] and [`crate::Session::delete`], which
/// [`crate::Session::batch`] runs in order through one prefetch pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchOp<'a> {
    /// Read the key; the value goes to the batch's `out` callback.
    Read(&'a [u8]),
    /// Set the key (first) to the value (second).
    Upsert(&'a [u8], &'a [u8]),
    /// Read-modify-write the key (first) with the input (second) through the batch's `Rmw`.
    Rmw(&'a [u8], &'a [u8]),
    /// Delete the key.
    Delete(&'a [u8]),
}

impl<'a> BatchOp<'a> {
    /// The key the operation works on.
    pub fn key(&self) -> &'a [u8] {
        match *self {
            BatchOp::Read(k) | BatchOp::Upsert(k, _) | BatchOp::Rmw(k, _) | BatchOp::Delete(k) => k,
        }
    }
}
