//! # faster-recovery: checkpoint metadata, validation and recovery
//!
//! This crate will own the on-disk checkpoint metadata (serde + postcard,
//! checksummed, written to a temporary name, fsynced and renamed), its
//! validation (magic, format version, checksums, agreeing versions, ordered
//! addresses, per-session serial numbers) and the choice and loading of a
//! checkpoint: restoring the fuzzy index and replaying the log so that exactly
//! the CPR prefix of every session is reachable.
//!
//! It knows the on-disk formats of `faster-hlog` and `faster-index`. It must not
//! know the facade's sessions or public API.
//!
//! Status: the types arrive with the recovery issue; this crate is empty today.
