//! # faster-device (being written)
