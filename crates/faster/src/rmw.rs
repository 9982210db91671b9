//! [`Rmw`]: how a read-modify-write computes a new value; [`AddU64`], a counter.

/// The update function of a read-modify-write ([`crate::Session::rmw`]).
///
/// The store calls exactly one of the methods per attempt (an attempt that loses a race is
/// retried, so a method may run more than once per operation; keep them free of side
/// effects):
///
/// * [`initial`](Rmw::initial) when the key has no value (missing or deleted);
/// * [`in_place`](Rmw::in_place) when the newest record of the key is in the mutable region
///   of the log: it updates the value in place, under the record's lock, and returns `true`;
///   it returns `false` if it cannot (the new value would have another length), and the store
///   then calls [`copy`](Rmw::copy) and appends a new record. The slice holds the current
///   value; when it returns `false`, whatever it wrote there is discarded.
/// * [`copy`](Rmw::copy) when the value lives in a read-only or on-disk record: it returns
///   the new value computed from the old one.
pub trait Rmw {
    /// The value of a missing key after the update.
    fn initial(&self, input: &[u8]) -> Vec<u8>;
    /// Updates `value` in place; `false` if it cannot (see the trait docs).
    fn in_place(&self, input: &[u8], value: &mut [u8]) -> bool;
    /// The new value computed from `old`.
    fn copy(&self, input: &[u8], old: &[u8]) -> Vec<u8>;
}

/// A little-endian `u64` counter: adds the input to the value, wrapping on overflow.
///
/// The input and the value are read as little-endian integers of up to 8 bytes (shorter ones
/// zero-extended, bytes past the eighth ignored); the new value is always 8 bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AddU64;

impl AddU64 {
    /// Reads up to 8 little-endian bytes.
    #[inline]
    pub fn decode(bytes: &[u8]) -> u64 {
        if let Ok(b) = <[u8; 8]>::try_from(bytes) {
            // The common 8-byte value: one load (the general copy below is a call to
            // `memcpy`, its length being unknown).
            return u64::from_le_bytes(b);
        }
        let mut b = [0u8; 8];
        let n = bytes.len().min(8);
        b[..n].copy_from_slice(&bytes[..n]);
        u64::from_le_bytes(b)
    }
}

impl Rmw for AddU64 {
    fn initial(&self, input: &[u8]) -> Vec<u8> {
        Self::decode(input).to_le_bytes().to_vec()
    }

    fn in_place(&self, input: &[u8], value: &mut [u8]) -> bool {
        let Ok(v) = <&mut [u8; 8]>::try_from(value) else {
            return false;
        };
        *v = u64::from_le_bytes(*v)
            .wrapping_add(Self::decode(input))
            .to_le_bytes();
        true
    }

    fn copy(&self, input: &[u8], old: &[u8]) -> Vec<u8> {
        Self::decode(old)
            .wrapping_add(Self::decode(input))
            .to_le_bytes()
            .to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_u64() {
        let one = 1u64.to_le_bytes();
        assert_eq!(AddU64.initial(&one), one.to_vec());
        let mut v = 41u64.to_le_bytes();
        assert!(AddU64.in_place(&one, &mut v));
        assert_eq!(u64::from_le_bytes(v), 42);
        assert!(!AddU64.in_place(&one, &mut [0u8; 3]));
        assert_eq!(AddU64.copy(&one, &[7]), 8u64.to_le_bytes().to_vec());
        assert_eq!(
            AddU64.copy(&one, &u64::MAX.to_le_bytes()),
            0u64.to_le_bytes().to_vec()
        );
    }
}
