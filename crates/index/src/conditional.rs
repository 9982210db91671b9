//! The index's half of compaction: replacing a chain head only while nothing newer has been
//! installed ([`replace_unless_changed`]), and freeing entries that point below the log's
//! begin address ([`crate::HashIndex::clean_below`]).
//!
//! A compaction copies a record `r` of key `K` to the tail only if `r` is still `K`'s newest
//! record. It decides that from an entry `e` it loaded, and publishes the copy by a
//! compare-and-swap **from `e`**. A user write of `K` publishes its record by a
//! compare-and-swap from the entry it loaded, too. So either the write's swap came first
//! (the compaction's swap fails, it decides again from the new entry, sees the write's
//! record and declines), or the compaction's did (the write's swap fails and it retries on
//! top of the copy). The copy never hides a newer write.

use crate::entry::{EntrySlot, HashEntry};

/// Replaces the head of `slot`'s chain as long as `decide` wants to: loads the entry, asks
/// `decide` for the address of the record to install (`None`: decline, nothing newer may
/// be hidden), and swaps it in from the entry `decide` saw. If another thread changed the
/// entry meanwhile, `lost` gets the address that was not installed (so the caller can mark
/// that record invalid) and `decide` is asked again with the new entry. Returns whether an
/// address was installed; an error from `decide` ends it at once.
pub fn replace_unless_changed<E>(
    slot: &EntrySlot<'_>,
    mut decide: impl FnMut(HashEntry) -> Result<Option<u64>, E>,
    mut lost: impl FnMut(u64),
) -> Result<bool, E> {
    let mut entry = slot.load();
    loop {
        let Some(address) = decide(entry)? else {
            return Ok(false);
        };
        match slot.compare_exchange_address(entry, address) {
            Ok(()) => return Ok(true),
            Err(now) => {
                lost(address);
                entry = now;
            }
        }
    }
}

/// Whether `e` is an entry [`crate::HashIndex::clean_below`] frees for `floor`: final (not
/// tentative), holding a record address (not the placeholder of an entry whose owner has
/// not installed its record yet), below `floor`.
pub(crate) fn is_below(e: HashEntry, floor: u64) -> bool {
    !e.is_tentative() && e.address() > crate::entry::TEMP_INVALID_ADDRESS && e.address() < floor
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::{HashIndex, IndexConfig, KeyHash};

    #[test]
    fn declines_once_the_entry_moved_on() {
        let index = HashIndex::new(IndexConfig::new(4, 16)).unwrap();
        let hash = KeyHash::of(b"k");
        let (slot, e) = index.find_or_create_entry(hash).unwrap();
        slot.compare_exchange_address(e, 1000).unwrap();
        // A "user write" lands between the decision and the swap.
        let mut lost = Vec::new();
        let mut calls = 0;
        let installed = replace_unless_changed(
            &slot,
            |e: HashEntry| {
                calls += 1;
                if e.address() != 1000 {
                    return Ok::<_, ()>(None);
                }
                let (s, now) = index.find_entry(hash).unwrap();
                s.compare_exchange_address(now, 3000).unwrap();
                Ok(Some(2000))
            },
            |a| lost.push(a),
        )
        .unwrap();
        assert!(!installed);
        assert_eq!((calls, lost), (2, vec![2000]));
        assert_eq!(index.find_entry(hash).unwrap().1.address(), 3000);
    }

    #[test]
    fn cleaning_frees_only_final_entries_below_the_floor() {
        let index = HashIndex::new(IndexConfig::new(4, 16)).unwrap();
        let mut slots = Vec::new();
        for (i, addr) in [100u64, 5000, 9000].into_iter().enumerate() {
            let hash = KeyHash::of(&[i as u8]);
            let (slot, e) = index.find_or_create_entry(hash).unwrap();
            slot.compare_exchange_address(e, addr).unwrap();
            slots.push(hash);
        }
        // A fresh entry whose owner has not installed its record yet stays.
        let fresh = KeyHash::of(b"fresh");
        index.find_or_create_entry(fresh).unwrap();
        assert_eq!(index.clean_below(6000), 2);
        assert!(index.find_entry(slots[0]).is_none());
        assert!(index.find_entry(slots[1]).is_none());
        assert_eq!(index.find_entry(slots[2]).unwrap().1.address(), 9000);
        assert!(index.find_entry(fresh).is_some());
    }
}
