//! # faster-index: the hash index
//!
//! This crate will own FASTER's cache-line hash index: 2^k buckets of 64 bytes,
//! each holding seven entries (48-bit address, 14-bit tag, tentative bit) and an
//! overflow-bucket pointer; the lock-free find-or-create-entry protocol with its
//! tentative bit; and the fuzzy checkpoint and recovery of the table and its
//! overflow buckets through a `faster-device` device.
//!
//! It must not know what a record looks like, nor anything about sessions or
//! checkpoint versions: an entry is an address and a tag.
//!
//! Status: the types arrive with the hash-index issue; this crate is empty today.
