//! # faster-hlog: the hybrid log
//!
//! This crate will own FASTER's hybrid log: a logical 48-bit address space over
//! fixed-size pages, split into an on-disk region, a read-only in-memory region
//! and a mutable in-memory region at the tail. It will own tail allocation, the
//! record format (header with previous address, checkpoint version and
//! tombstone / invalid / sealed bits), page flush and eviction through a
//! `faster-device` device, region shifts published through `faster-epoch`
//! drain actions, asynchronous reads of on-disk records and log scans.
//!
//! It must not know about the hash index, sessions, serial numbers or the CPR
//! state machine: it stores records at addresses and nothing more.
//!
//! Status: the types arrive with the hybrid-log issue; this crate is empty today.
