//! faster
