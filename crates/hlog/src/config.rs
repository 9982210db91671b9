//! [`HlogConfig`]: page size, memory budget and mutable fraction.

use crate::error::{HlogError, Result};

/// Smallest accepted page size: 4 KiB.
pub const MIN_PAGE_BITS: u32 = 12;
/// Largest accepted page size: 1 GiB.
pub const MAX_PAGE_BITS: u32 = 30;
/// Fewest page frames the memory budget must hold: the tail page and one page being flushed.
pub const MIN_FRAMES: u64 = 2;

/// Configuration of a [`crate::Hlog`]. Build it with [`HlogConfig::default`] and the `with_*`
/// setters; [`crate::Hlog::new`] validates it.
#[derive(Clone, Debug, PartialEq)]
pub struct HlogConfig {
    page_bits: u32,
    memory_bytes: u64,
    mutable_fraction: f64,
}

impl Default for HlogConfig {
    /// Pages of 1 MiB, 64 MiB of memory (64 frames), 90% of the in-memory pages mutable.
    fn default() -> Self {
        HlogConfig {
            page_bits: 20,
            memory_bytes: 64 << 20,
            mutable_fraction: 0.9,
        }
    }
}

impl HlogConfig {
    /// Sets the page size in bytes: a power of two between 4 KiB and 1 GiB (checked by
    /// [`HlogConfig::validate`]; a value that is not a power of two is rejected there).
    pub fn with_page_size(mut self, bytes: u64) -> Self {
        self.page_bits = if bytes.is_power_of_two() {
            bytes.trailing_zeros()
        } else {
            u32::MAX
        };
        self
    }

    /// Sets the memory budget in bytes: the number of page frames is
    /// `memory_bytes / page_size`, at least [`MIN_FRAMES`].
    pub fn with_memory_size(mut self, bytes: u64) -> Self {
        self.memory_bytes = bytes;
        self
    }

    /// Sets the fraction of in-memory pages that are mutable, in `(0, 1]`. The number of
    /// mutable pages is `floor(frames * fraction)`, clamped to `[1, frames - 1]` (one frame is
    /// always left for the page being flushed).
    pub fn with_mutable_fraction(mut self, fraction: f64) -> Self {
        self.mutable_fraction = fraction;
        self
    }

    /// The page size in bytes (meaningful once validated).
    pub fn page_size(&self) -> u64 {
        1u64.checked_shl(self.page_bits).unwrap_or(0)
    }

    /// log2 of the page size.
    pub fn page_bits(&self) -> u32 {
        self.page_bits
    }

    /// The memory budget in bytes.
    pub fn memory_size(&self) -> u64 {
        self.memory_bytes
    }

    /// The mutable fraction.
    pub fn mutable_fraction(&self) -> f64 {
        self.mutable_fraction
    }

    /// Checks the configuration, and that pages are compatible with a device of the given
    /// `alignment`. Returns the derived geometry.
    pub fn validate(&self, alignment: usize) -> Result<Geometry> {
        if !(MIN_PAGE_BITS..=MAX_PAGE_BITS).contains(&self.page_bits) {
            return Err(HlogError::InvalidConfig(format!(
                "page size must be a power of two between {} and {} bytes",
                1u64 << MIN_PAGE_BITS,
                1u64 << MAX_PAGE_BITS
            )));
        }
        let page_size = 1u64 << self.page_bits;
        if !alignment.is_power_of_two() || alignment as u64 > page_size {
            return Err(HlogError::InvalidConfig(format!(
                "device alignment {alignment} must be a power of two no larger than the page size {page_size}"
            )));
        }
        let frames = self.memory_bytes / page_size;
        if frames < MIN_FRAMES {
            return Err(HlogError::InvalidConfig(format!(
                "memory budget of {} bytes holds {frames} pages of {page_size} bytes; at least {MIN_FRAMES} are needed",
                self.memory_bytes
            )));
        }
        if frames > u32::MAX as u64 {
            return Err(HlogError::InvalidConfig(format!(
                "memory budget of {} bytes holds too many pages",
                self.memory_bytes
            )));
        }
        let f = self.mutable_fraction;
        if !(f > 0.0 && f <= 1.0) {
            return Err(HlogError::InvalidConfig(format!(
                "mutable fraction {f} must lie in (0, 1]"
            )));
        }
        let mutable_pages = ((frames as f64 * f).floor() as u64).clamp(1, frames - 1);
        Ok(Geometry {
            page_bits: self.page_bits,
            frames,
            mutable_pages,
            alignment: alignment.max(4096),
        })
    }
}

/// The geometry derived from a validated [`HlogConfig`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// log2 of the page size.
    pub page_bits: u32,
    /// Number of in-memory page frames.
    pub frames: u64,
    /// Number of mutable pages at the tail (the rest of the frames are read-only or free).
    pub mutable_pages: u64,
    /// Alignment of frames and flush buffers: the device alignment, at least 4096.
    pub alignment: usize,
}

impl Geometry {
    /// The page size in bytes.
    pub fn page_size(&self) -> u64 {
        1 << self.page_bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        let g = HlogConfig::default().validate(4096).unwrap();
        assert_eq!(g.frames, 64);
        assert_eq!(g.mutable_pages, 57);
        let small = HlogConfig::default()
            .with_page_size(1 << 20)
            .with_memory_size(1 << 20);
        assert!(matches!(
            small.validate(4096),
            Err(HlogError::InvalidConfig(_))
        ));
        assert!(
            HlogConfig::default()
                .with_page_size(3000)
                .validate(512)
                .is_err()
        );
        assert!(
            HlogConfig::default()
                .with_page_size(1024)
                .validate(512)
                .is_err()
        );
        assert!(
            HlogConfig::default()
                .with_mutable_fraction(0.0)
                .validate(512)
                .is_err()
        );
        assert!(
            HlogConfig::default()
                .with_mutable_fraction(f64::NAN)
                .validate(512)
                .is_err()
        );
        let two = HlogConfig::default()
            .with_page_size(4096)
            .with_memory_size(8192)
            .with_mutable_fraction(1.0)
            .validate(4096)
            .unwrap();
        assert_eq!((two.frames, two.mutable_pages), (2, 1));
        assert!(
            HlogConfig::default()
                .with_page_size(4096)
                .validate(8192)
                .is_err()
        );
    }
}
