//! [`HashIndex`]: the current generation (a table of `2^k` buckets and its overflow chains,
//! see the `generation` module), the next one during a growth (see `grow`), and the
//! configuration and limits.

use crate::bucket::{BUCKET_BYTES, HashBucket};
use crate::entry::{EntrySlot, HashEntry};
use crate::error::{IndexError, Result};
use crate::generation::{Generation, IndexStats, SPLIT_CHUNK, TAG_SPLIT_BITS};
use crate::hash::KeyHash;
use crate::overflow::OverflowAllocator;
use crate::sync::{Arc, AtomicPtr, AtomicU64, Mutex, Ordering, lock};

/// The largest accepted `table_bits` (`2^30` buckets, 64 GiB): past it the bucket would need
/// more tag bits than there are (see [`KeyHash`]).
pub const MAX_TABLE_BITS: u32 = 30;
/// The largest accepted number of overflow buckets (`2^30`, 64 GiB).
pub const MAX_OVERFLOW_BUCKETS: u64 = 1 << 30;

/// The size of a [`HashIndex`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IndexConfig {
    /// `k`: the main table has `2^k` buckets (`0..=MAX_TABLE_BITS`).
    pub table_bits: u32,
    /// The most overflow buckets a generation may use (`0..=MAX_OVERFLOW_BUCKETS`). A
    /// limit, not a reservation: overflow memory is mapped in chunks as it is used.
    pub overflow_buckets: u64,
    /// The bound on index memory in bytes: the current generation's main table and overflow
    /// buckets (`u64::MAX`: none but the machine's). See [`HashIndex::set_memory_limit`].
    #[serde(default = "no_limit")]
    pub memory_limit: u64,
}

fn no_limit() -> u64 {
    u64::MAX
}

impl IndexConfig {
    /// A table of `2^table_bits` buckets with room for `overflow_buckets` overflow buckets,
    /// and no memory limit.
    pub fn new(table_bits: u32, overflow_buckets: u64) -> Self {
        IndexConfig {
            table_bits,
            overflow_buckets,
            memory_limit: u64::MAX,
        }
    }

    /// The same configuration with a memory limit of `bytes`.
    pub fn with_memory_limit(mut self, bytes: u64) -> Self {
        self.memory_limit = bytes;
        self
    }

    /// Checks the ranges.
    pub fn validate(&self) -> Result<()> {
        if self.table_bits > MAX_TABLE_BITS {
            return Err(IndexError::InvalidConfig(format!(
                "table_bits {} exceeds {MAX_TABLE_BITS}",
                self.table_bits
            )));
        }
        if self.overflow_buckets > MAX_OVERFLOW_BUCKETS {
            return Err(IndexError::InvalidConfig(format!(
                "overflow_buckets {} exceeds {MAX_OVERFLOW_BUCKETS}",
                self.overflow_buckets
            )));
        }
        if (1u64 << self.table_bits) > usize::MAX as u64 / 64 {
            return Err(IndexError::InvalidConfig(format!(
                "2^{} buckets do not fit the address space",
                self.table_bits
            )));
        }
        Ok(())
    }
}

/// The index grows when its overflow buckets in use reach `1 / GROW_OVERFLOW_FRACTION` of its
/// main buckets ([`HashIndex::wants_growth`]): about four keys per bucket on average, with
/// random hashes (a bucket holds seven), so a grown table holds two to four keys a bucket.
pub const GROW_OVERFLOW_FRACTION: u64 = 16;

/// The state of one growth (see the `grow` module). Each growth has its own, so a thread
/// that still holds an old one can never claim a chunk of a later growth.
pub(crate) struct SplitState {
    /// The generation being split (current during the growth) and the one it fills; both
    /// point into the index's `generations`.
    old: AtomicPtr<Generation>,
    new: AtomicPtr<Generation>,
    /// Chunks of the old table.
    pub(crate) chunks: u64,
    /// The next chunk to claim.
    pub(crate) next_chunk: AtomicU64,
    /// Chunks not split yet.
    pub(crate) pending: AtomicU64,
    /// The first error of the split (the growth is then abandoned).
    failure: Mutex<Option<IndexError>>,
}

impl SplitState {
    /// The generation being split.
    pub(crate) fn old(&self) -> &Generation {
        // SAFETY: `old` points into a box of the index's `generations` (see `begin_grow`),
        // dropped only with the index; a `SplitState` is reached only through `&HashIndex`
        // (an `Arc` cloned under its lock), and the generations are read through shared
        // references (atomics) only.
        unsafe { &*self.old.load(Ordering::Relaxed) }
    }

    /// The generation the split fills.
    pub(crate) fn target(&self) -> &Generation {
        // SAFETY: as in `old`.
        unsafe { &*self.new.load(Ordering::Relaxed) }
    }

    pub(crate) fn fail(&self, e: IndexError) {
        lock(&self.failure).get_or_insert(e);
    }

    pub(crate) fn failed(&self) -> bool {
        lock(&self.failure).is_some()
    }

    pub(crate) fn take_failure(&self) -> Option<IndexError> {
        lock(&self.failure).take()
    }
}

/// FASTER's hash index: `2^k` cache-line buckets of seven entries, chained through overflow
/// buckets, updated lock-free, doubled online. See the [crate docs](crate) for the protocol.
pub struct HashIndex {
    /// The generation every operation uses: one of `generations`.
    current: AtomicPtr<Generation>,
    /// During a growth, the next generation (one of `generations`); null otherwise.
    growing: AtomicPtr<Generation>,
    /// Every generation ever built, and whether its memory was released. Boxes never move
    /// and are dropped only with the index, so the two pointers above stay valid for as long
    /// as `&self` is borrowed.
    generations: Mutex<Vec<(Box<Generation>, bool)>>,
    /// The running growth's state.
    split: Mutex<Option<Arc<SplitState>>>,
    /// The overflow capacity of every generation.
    overflow_capacity: u64,
    /// The bound on the current generation's bucket memory, in bytes.
    memory_limit: AtomicU64,
}

impl HashIndex {
    /// An empty index.
    pub fn new(config: IndexConfig) -> Result<Self> {
        config.validate()?;
        let index = HashIndex::with_generation(
            Generation::new(config.table_bits, config.overflow_buckets)?,
            config.overflow_buckets,
        );
        index.set_memory_limit(config.memory_limit);
        Ok(index)
    }

    fn with_generation(generation: Generation, overflow_capacity: u64) -> Self {
        let mut generation = Box::new(generation);
        let p: *mut Generation = &mut *generation;
        HashIndex {
            current: AtomicPtr::new(p),
            growing: AtomicPtr::new(std::ptr::null_mut()),
            generations: Mutex::new(vec![(generation, false)]),
            split: Mutex::new(None),
            overflow_capacity,
            memory_limit: AtomicU64::new(u64::MAX),
        }
    }

    /// The current generation.
    #[inline(always)]
    pub(crate) fn current(&self) -> &Generation {
        // SAFETY: `current` always points into a box of `generations` (set in
        // `with_generation` and `switch_to_growing`), and those boxes are dropped only with
        // `self`, so the generation outlives this borrow of `self`. It is only read through
        // shared references (atomics).
        unsafe { &*self.current.load(Ordering::Acquire) }
    }

    /// The state of the running growth, if one runs.
    pub(crate) fn split(&self) -> Option<Arc<SplitState>> {
        lock(&self.split).clone()
    }

    /// The generation a running growth fills, if one runs.
    pub(crate) fn growing(&self) -> Option<&Generation> {
        let p = self.growing.load(Ordering::Acquire);
        // SAFETY: as in `current`: a non-null `growing` points into a box of `generations`.
        (!p.is_null()).then(|| unsafe { &*p })
    }

    /// The configuration of the current generation.
    pub fn config(&self) -> IndexConfig {
        IndexConfig::new(self.table_bits(), self.overflow_capacity)
            .with_memory_limit(self.memory_limit())
    }

    /// `k`: the main table has `2^k` buckets now.
    pub fn table_bits(&self) -> u32 {
        self.current().table_bits
    }

    /// The bound on index memory ([`IndexConfig::memory_limit`]).
    pub fn memory_limit(&self) -> u64 {
        self.memory_limit.load(Ordering::Relaxed)
    }

    /// Sets the bound on index memory: the current generation's main table and overflow
    /// buckets. Past it, inserts that need a new overflow bucket fail with
    /// [`IndexError::MemoryLimit`] (keys already present keep working), and a growth that
    /// would pass it is refused.
    pub fn set_memory_limit(&self, bytes: u64) {
        self.memory_limit.store(bytes, Ordering::Relaxed);
        let g = self.current();
        g.overflow.set_limit(bytes, g.buckets.len() as u64);
    }

    /// Bytes of bucket memory in use: the current generation's, and the next one's during a
    /// growth (retired generations whose memory went back are not counted).
    pub fn memory_bytes(&self) -> u64 {
        self.current().memory_bytes() + self.growing().map_or(0, Generation::memory_bytes)
    }

    pub(crate) fn buckets(&self) -> &[HashBucket] {
        &self.current().buckets
    }

    pub(crate) fn overflow(&self) -> &OverflowAllocator {
        &self.current().overflow
    }

    /// Hints the CPU to start loading the cache line of `hash`'s main-table bucket, so that a
    /// later [`find_entry`](Self::find_entry) or
    /// [`find_or_create_entry`](Self::find_or_create_entry) of the same hash finds it in the
    /// cache. A pure hint: no effect on the index, a no-op on targets without a prefetch
    /// instruction. Batched lookups issue it for several keys before probing any of them.
    #[inline]
    pub fn prefetch(&self, hash: KeyHash) {
        let g = self.current();
        if let Some(bucket) = g.buckets.get(g.home(hash) as usize) {
            prefetch_line(std::ptr::from_ref(bucket).cast());
        }
    }

    /// Finds the entry of `hash`: the first non-tentative entry with its tag in its bucket's
    /// chain. Tentative entries (inserts in progress) are skipped.
    #[inline]
    pub fn find_entry(&self, hash: KeyHash) -> Option<(EntrySlot<'_>, HashEntry)> {
        self.current().find_entry(hash)
    }

    /// The entry of `hash` if its home bucket (the first bucket of its chain) holds it: then
    /// exactly the entry [`HashIndex::find_entry`] returns. `None` says only "not in the home
    /// bucket": the entry may still be in an overflow bucket, so callers go on with
    /// `find_entry` (or [`HashIndex::find_or_create_entry`]).
    ///
    /// The per-operation fast path of the store: one cache line, one masked comparison per
    /// entry, no slot to build.
    #[inline(always)]
    pub fn find_in_home(&self, hash: KeyHash) -> Option<HashEntry> {
        self.current().find_in_home(hash)
    }

    /// The entry of `hash` in `slot`, a slot that [`HashIndex::find_entry`] or
    /// [`HashIndex::find_or_create_entry`] returned for `hash` earlier: `Some` if the slot
    /// still holds a finished (non-tentative) entry with `hash`'s tag, which is then the
    /// entry those methods would find now; `None` if the caller must search again.
    ///
    /// Sound because a bucket never moves to another chain while a generation is in use (an
    /// overflow bucket is freed only if it was never linked), a chain holds at most one
    /// finished entry per tag (see [`HashIndex::find_or_create_entry`]), and the caller does
    /// not keep a slot across a growth (its state machine parks it at a phase boundary).
    /// Batched operations use it to probe a bucket once.
    #[inline]
    pub fn recheck(&self, slot: &EntrySlot<'_>, hash: KeyHash) -> Option<HashEntry> {
        let e = slot.load();
        (!e.is_empty() && !e.is_tentative() && e.tag() == hash.tag()).then_some(e)
    }

    /// Finds the entry of `hash`, or creates one with address
    /// [`TEMP_INVALID_ADDRESS`](crate::TEMP_INVALID_ADDRESS).
    ///
    /// FASTER's tentative insert: find a free slot in the chain (appending an overflow bucket
    /// if the chain is full), install a *tentative* entry with the tag by compare-and-swap,
    /// then rescan the chain for any other entry with the same tag, tentative or not. If there
    /// is one, free the slot again and start over; otherwise clear the tentative bit. Two
    /// threads inserting the same tag cannot both miss each other (a `SeqCst` fence separates
    /// each one's install from its rescan), so at most one of them finalizes, and every
    /// caller ends up with the same slot.
    ///
    /// Fails only when the chain is full and no overflow bucket can be had:
    /// [`IndexError::OverflowExhausted`] (the configured capacity),
    /// [`IndexError::MemoryLimit`] or [`IndexError::OutOfMemory`].
    #[inline]
    pub fn find_or_create_entry(&self, hash: KeyHash) -> Result<(EntrySlot<'_>, HashEntry)> {
        self.current().find_or_create_entry(hash)
    }

    /// Calls `f(home, slot, entry)` for every non-empty entry (tentative ones included),
    /// chain by chain; `home` is the main-table bucket the chain starts at. A fuzzy snapshot if
    /// other threads update the index meanwhile.
    pub fn for_each_entry(&self, f: impl FnMut(u64, EntrySlot<'_>, HashEntry)) {
        self.current().for_each_entry(f)
    }

    /// Frees every entry that points below `floor` (the log's begin address after a shift:
    /// such an entry means "no record" anyway) and returns how many it freed. Runs while
    /// other threads use the index: an entry is freed by a compare-and-swap from the value
    /// seen, so one that a writer moved on meanwhile stays. Tentative entries, and entries
    /// whose owner has not installed a record yet, are left alone. Must not run during a
    /// growth (the store's state machine excludes it).
    pub fn clean_below(&self, floor: u64) -> u64 {
        let mut freed = 0;
        self.current().for_each_entry(|_, slot, e| {
            if crate::conditional::is_below(e, floor) && slot.delete(e).is_ok() {
                freed += 1;
            }
        });
        freed
    }

    /// Scans the whole index and counts buckets and entries.
    pub fn stats(&self) -> IndexStats {
        self.current().stats()
    }

    /// Capacity of the index without overflow buckets: `7 * 2^k` entries.
    pub fn table_capacity(&self) -> u64 {
        self.current().table_capacity()
    }

    /// Whether the index should double now: its overflow buckets in use have reached
    /// `1 / GROW_OVERFLOW_FRACTION` of its main buckets, no growth runs, and a doubled table
    /// fits [`MAX_TABLE_BITS`] and the memory limit. Two loads on the common path.
    #[inline]
    pub fn wants_growth(&self) -> bool {
        let g = self.current();
        let n = g.buckets.len() as u64;
        g.overflow.high_water() >= (n / GROW_OVERFLOW_FRACTION).max(1)
            && self.growing.load(Ordering::Relaxed).is_null()
            && self.growth_check().is_ok()
    }

    /// Whether a doubling is allowed: its size and memory.
    fn growth_check(&self) -> Result<()> {
        let g = self.current();
        if g.table_bits >= MAX_TABLE_BITS {
            return Err(IndexError::InvalidConfig(format!(
                "the table has 2^{MAX_TABLE_BITS} buckets, the most it may have"
            )));
        }
        // Old and new generation live side by side during the split.
        let new_table = (g.buckets.len() as u64) * 2 * BUCKET_BYTES as u64;
        let needed = g.memory_bytes().saturating_add(new_table);
        let limit = self.memory_limit();
        if needed > limit {
            return Err(IndexError::MemoryLimit {
                limit,
                needed,
                what: "doubling the table",
            });
        }
        Ok(())
    }

    /// Whether the next growth reads records: a table of fewer than `2^16` buckets splits by
    /// hash bits only the keys hold, so the caller must give [`HashIndex::help_grow`] a
    /// [`crate::Chains`] that reads the log, and [`HashIndex::place_scanned`] the records on
    /// disk. From `2^16` buckets on, the entries' tags decide (see [`KeyHash`]): no record
    /// is read and no scan is needed.
    pub fn growth_reads_log(&self) -> bool {
        self.current().table_bits < TAG_SPLIT_BITS
    }

    /// Starts doubling the index: builds the next generation, empty, beside the current one,
    /// which stays in use (its memory is mapped and zeroed here, before the split). The caller must then keep every other thread away from the index
    /// until the growth ends, and have threads split it ([`HashIndex::help_grow`]), then
    /// finish it ([`HashIndex::finish_grow`]); or call [`HashIndex::cancel_grow`] before any
    /// split. Returns the new `table_bits`. Fails if a growth runs, at [`MAX_TABLE_BITS`],
    /// past the memory limit ([`IndexError::MemoryLimit`]), or if the table cannot be mapped.
    pub fn begin_grow(&self) -> Result<u32> {
        self.growth_check()?;
        let old = self.current();
        let new = Generation::new(old.table_bits + 1, self.overflow_capacity)?;
        // The kernel zeroes the new table now, while the index is still in use, instead of
        // during the split (where the first write to each page faulted).
        new.buckets.prefault();
        let mut gens = lock(&self.generations);
        let mut split = lock(&self.split);
        if split.is_some() {
            return Err(IndexError::InvalidConfig(
                "a growth is running already".into(),
            ));
        }
        let mut new = Box::new(new);
        let p: *mut Generation = &mut *new;
        let bits = new.table_bits;
        gens.push((new, false));
        let chunks = (old.buckets.len() as u64).div_ceil(SPLIT_CHUNK);
        *split = Some(Arc::new(SplitState {
            old: AtomicPtr::new(self.current.load(Ordering::Acquire)),
            new: AtomicPtr::new(p),
            chunks,
            next_chunk: AtomicU64::new(0),
            pending: AtomicU64::new(chunks),
            failure: Mutex::new(None),
        }));
        self.growing.store(p, Ordering::Release);
        Ok(bits)
    }

    /// Gives up a growth before any split started: the index stays as it was.
    pub fn cancel_grow(&self) {
        self.abandon_growth();
    }

    /// Whether a growth is running (begun and not finished or cancelled).
    pub fn is_growing(&self) -> bool {
        !self.growing.load(Ordering::Acquire).is_null()
    }

    /// Drops the growing generation's memory; the current one stays.
    pub(crate) fn abandon_growth(&self) {
        let mut gens = lock(&self.generations);
        *lock(&self.split) = None;
        let p = self.growing.swap(std::ptr::null_mut(), Ordering::AcqRel);
        for (g, released) in gens.iter_mut() {
            if std::ptr::eq(&**g, p) {
                g.release();
                *released = true;
            }
        }
    }

    /// Makes the growing generation current; the old one is retired.
    pub(crate) fn switch_to_growing(&self) {
        let _gens = lock(&self.generations);
        let p = self.growing.load(Ordering::Acquire);
        // SAFETY: as in `growing`.
        let new = unsafe { &*p };
        new.overflow
            .set_limit(self.memory_limit(), new.buckets.len() as u64);
        self.current.store(p, Ordering::Release);
        *lock(&self.split) = None;
        self.growing.store(std::ptr::null_mut(), Ordering::Release);
    }

    /// Returns the memory of retired generations to the operating system (their mappings
    /// stay until the index drops, so a stale reference reads empty buckets, never freed
    /// memory). Call it once no thread can still use them: the store does it in an epoch
    /// action after a growth. Returns the bytes released.
    pub fn release_retired(&self) -> u64 {
        let cur = self.current.load(Ordering::Acquire);
        let grow = self.growing.load(Ordering::Acquire);
        let mut bytes = 0;
        for (g, released) in lock(&self.generations).iter_mut() {
            let p: *const Generation = &**g;
            if !*released && !std::ptr::eq(p, cur) && !std::ptr::eq(p, grow) {
                bytes += g.memory_bytes();
                g.release();
                *released = true;
            }
        }
        bytes
    }
}

/// Prefetches the cache line at `p` into all cache levels (a hint; never faults).
#[inline(always)]
fn prefetch_line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetch` only hints the cache hierarchy: it never dereferences `p` in the
    // language's sense, cannot fault, and SSE is part of the x86-64 baseline.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

impl std::fmt::Debug for HashIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let g = self.current();
        f.debug_struct("HashIndex")
            .field("table_bits", &g.table_bits)
            .field("overflow_capacity", &self.overflow_capacity)
            .field("overflow_high_water", &g.overflow.high_water())
            .field("memory_limit", &self.memory_limit())
            .field("growing", &self.is_growing())
            .finish()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn find_in_home_agrees_with_find_entry_and_leaves_overflow_to_it() {
        // Four buckets for 200 hashes: most entries land in overflow buckets.
        let index = HashIndex::new(IndexConfig::new(2, 256)).unwrap();
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut seen = std::collections::HashSet::new();
        let hashes: Vec<KeyHash> = std::iter::repeat_with(|| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            KeyHash::from_raw(x)
        })
        // One hash per (home bucket, tag): each has an entry of its own.
        .filter(|h| seen.insert((h.raw() & 3, h.tag())))
        .take(200)
        .collect();
        // Nothing yet, not even for tag 0 (whose entries look like the free word but for
        // their address).
        assert_eq!(index.find_in_home(KeyHash::from_raw(0)), None);
        for &h in &hashes {
            index.find_or_create_entry(h).unwrap();
        }
        let (mut home, mut elsewhere) = (0, 0);
        for &h in &hashes {
            let found = index.find_entry(h).expect("created").1;
            match index.find_in_home(h) {
                Some(e) => {
                    assert_eq!(e, found, "the same entry as find_entry");
                    home += 1;
                }
                None => elsewhere += 1,
            }
        }
        // 4 buckets of 7 entries hold at most 28 home entries (fewer if tags repeat).
        assert!(home > 0 && home <= 28, "{home} in home buckets");
        assert!(elsewhere >= 200 - 28, "{elsewhere} in overflow buckets");
    }
}
