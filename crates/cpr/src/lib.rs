//! # faster-cpr: the Concurrent Prefix Recovery state machine
//!
//! This crate will own the CPR checkpoint protocol: the system state (action,
//! phase, version) packed in one atomic word, the phase order of full,
//! index-only and log-only checkpoints, per-session execution contexts (`cur`
//! and `prev`), phase acknowledgement through `faster-epoch`'s phase-finished
//! hook, and WAIT_PENDING draining with a timeout. Its phase barriers are
//! model-checked with loom.
//!
//! It knows only `faster-epoch`. It drives the store through a trait of its
//! own (checkpoint the index, flush the log, write metadata), which the facade
//! crate `faster` implements; it must not know about records, pages, buckets or
//! devices.
//!
//! Status: the types arrive with the CPR checkpoint issue; this crate is empty today.
