//! [`KeyMap`]: the compaction's map from a key to an address, built for millions of keys:
//! one table of 16-byte entries (the address with the key's length in its top bits, and
//! the key's bytes inline when they fit in 8, else their place in an arena of all keys),
//! no allocation per key. The hash is recomputed from the bytes when the table grows, so
//! no entry stores it. Imports nothing of the store.

use hashbrown::HashTable;

/// One key and its value.
#[derive(Clone, Copy)]
struct Entry {
    /// The value (at most 48 bits) in the low bits; the key's length in the top 16 when it
    /// is at most [`INLINE`], else [`IN_ARENA`].
    meta: u64,
    /// The key's bytes (little-endian, zero-padded) when inline, else the offset in the
    /// arena of its length (u32, little-endian) followed by its bytes.
    word: u64,
}

/// The longest key kept inline in its entry.
const INLINE: usize = 8;
/// The top bits of [`Entry::meta`] of a key kept in the arena.
const IN_ARENA: u64 = 0xffff;
const VALUE_BITS: u32 = 48;
const VALUE_MASK: u64 = (1 << VALUE_BITS) - 1;

/// A map from key bytes to a value below 2^48 (an address), for one compaction pass.
#[derive(Default)]
pub(crate) struct KeyMap {
    table: HashTable<Entry>,
    arena: Vec<u8>,
}

fn inline_word(key: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word[..key.len()].copy_from_slice(key);
    u64::from_le_bytes(word)
}

fn hash_of(key: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key)
}

impl Entry {
    fn value(&self) -> u64 {
        self.meta & VALUE_MASK
    }

    /// The key's bytes (`inline` receives the bytes of an inline key).
    fn key<'a>(&self, arena: &'a [u8], inline: &'a mut [u8; 8]) -> &'a [u8] {
        let len = self.meta >> VALUE_BITS;
        if len == IN_ARENA {
            let at = self.word as usize;
            let len = u32::from_le_bytes(arena[at..at + 4].try_into().expect("4 bytes")) as usize;
            &arena[at + 4..at + 4 + len]
        } else {
            *inline = self.word.to_le_bytes();
            &inline[..len as usize]
        }
    }

    fn is(&self, arena: &[u8], key: &[u8]) -> bool {
        let len = self.meta >> VALUE_BITS;
        if key.len() <= INLINE {
            len == key.len() as u64 && self.word == inline_word(key)
        } else {
            len == IN_ARENA && {
                let mut inline = [0; 8];
                self.key(arena, &mut inline) == key
            }
        }
    }
}

impl KeyMap {
    /// An empty map.
    pub(crate) fn new() -> Self {
        KeyMap::default()
    }

    /// Sets `key`'s value to `value` (below 2^48); returns whether the key is new to the
    /// map.
    pub(crate) fn insert(&mut self, key: &[u8], value: u64) -> bool {
        debug_assert!(value <= VALUE_MASK, "a key map value above 48 bits");
        let hash = hash_of(key);
        let arena = &self.arena;
        if let Some(e) = self.table.find_mut(hash, |e| e.is(arena, key)) {
            e.meta = (e.meta & !VALUE_MASK) | (value & VALUE_MASK);
            return false;
        }
        let entry = if key.len() <= INLINE {
            Entry {
                meta: ((key.len() as u64) << VALUE_BITS) | (value & VALUE_MASK),
                word: inline_word(key),
            }
        } else {
            let at = self.arena.len() as u64;
            self.arena
                .extend_from_slice(&(key.len() as u32).to_le_bytes());
            self.arena.extend_from_slice(key);
            Entry {
                meta: (IN_ARENA << VALUE_BITS) | (value & VALUE_MASK),
                word: at,
            }
        };
        let arena = &self.arena;
        self.table.insert_unique(hash, entry, |e| {
            let mut inline = [0; 8];
            hash_of(e.key(arena, &mut inline))
        });
        true
    }

    /// `key`'s value, if the map holds the key.
    pub(crate) fn get(&self, key: &[u8]) -> Option<u64> {
        let hash = hash_of(key);
        self.table
            .find(hash, |e| e.is(&self.arena, key))
            .map(Entry::value)
    }

    /// Whether one more key of `key_len` bytes keeps the map within `budget` bytes (its
    /// table, counted as the table it grows into when full, and its arena).
    pub(crate) fn fits_one_more(&self, key_len: usize, budget: usize) -> bool {
        let entry = std::mem::size_of::<Entry>() + 1;
        let capacity = self.table.capacity();
        let table = if self.table.len() < capacity {
            capacity * 8 / 7 * entry
        } else {
            (capacity.max(3) + 1) * 2 * 8 / 7 * entry
        };
        let arena = self.arena.len() + if key_len > INLINE { key_len + 4 } else { 0 };
        table + arena <= budget
    }

    /// How many keys the map holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }
}

#[cfg(test)]
mod tests {
    use super::KeyMap;
    use std::collections::HashMap;

    #[test]
    fn agrees_with_a_hash_map_on_short_and_long_keys() {
        let mut map = KeyMap::new();
        let mut model = HashMap::new();
        for i in 0..20_000u64 {
            // Keys of 0 to 24 bytes, some repeated, some sharing a prefix.
            let len = (i % 25) as usize;
            let key: Vec<u8> = (0..len)
                .map(|j| ((i / 3) as u8).wrapping_add(j as u8))
                .collect();
            assert_eq!(map.insert(&key, i), model.insert(key.clone(), i).is_none());
        }
        assert_eq!(map.len(), model.len());
        for (key, &address) in &model {
            assert_eq!(map.get(key), Some(address));
        }
        assert_eq!(map.get(b"not a key of the map at all"), None);
        assert_eq!(map.get(&[0xff; 8]), None);
        assert!(map.fits_one_more(100, 1 << 30));
        assert!(!map.fits_one_more(1, 1 << 10));
    }

    #[test]
    fn a_key_with_trailing_zeros_is_not_its_prefix() {
        let mut map = KeyMap::new();
        map.insert(b"ab", 1);
        assert_eq!(map.get(b"ab\0"), None);
        assert_eq!(map.get(b"ab"), Some(1));
        map.insert(b"", 2);
        assert_eq!(map.get(b"\0"), None);
        assert_eq!(map.get(b""), Some(2));
    }
}
