//! Instructions per operation, counted by callgrind (repeatable, unlike timings on a shared
//! host): per-operation reads, upserts and RMWs of 8-byte keys and values, and 32-byte
//! values through the general path, on a cached store (10 000 keys in memory).
//!
//! ```sh
//! cargo build --release -p faster --example op_instructions
//! valgrind --tool=callgrind --collect-atstart=no --callgrind-out-file=/tmp/ops.cg \
//!     --toggle-collect='op_instructions::measured*' target/release/examples/op_instructions
//! callgrind_annotate --inclusive=yes /tmp/ops.cg | grep measured
//! ```
//!
//! Each `measured_*` function runs [`OPS`] operations of one kind: its inclusive count divided
//! by [`OPS`] is the instructions per operation (a few of them are the loop and the key).
//! Without valgrind the program just runs the loops and prints what it did.

use faster::{AddU64, Config, FasterKv, LogDevice, Session};

/// Keys in the store.
const KEYS: u64 = 10_000;
/// Operations per measured loop.
pub const OPS: u64 = 1_000_000;

fn key(i: u64) -> [u8; 8] {
    // A multiplicative scramble: consecutive operations touch unrelated keys.
    (i.wrapping_mul(0x9e37_79b9_7f4a_7c15) % KEYS).to_le_bytes()
}

#[inline(never)]
fn measured_read8(s: &mut Session) -> u64 {
    let mut found = 0;
    for i in 0..OPS {
        found += s.read(&key(i)).unwrap().is_some() as u64;
    }
    found
}

#[inline(never)]
fn measured_upsert8(s: &mut Session) {
    for i in 0..OPS {
        s.upsert(&key(i), &i.to_le_bytes()).unwrap();
    }
}

#[inline(never)]
fn measured_rmw8(s: &mut Session) {
    let one = 1u64.to_le_bytes();
    for i in 0..OPS {
        s.rmw(&key(i), &one, &AddU64).unwrap();
    }
}

#[inline(never)]
fn measured_read32(s: &mut Session, buf: &mut Vec<u8>) -> u64 {
    let mut found = 0;
    for i in 0..OPS {
        let mut k = [0u8; 16];
        k[..8].copy_from_slice(&key(i));
        found += s
            .read_with(&k, |v| {
                if let Some(v) = v {
                    buf.clear();
                    buf.extend_from_slice(v);
                }
                v.is_some()
            })
            .unwrap() as u64;
    }
    found
}

#[inline(never)]
fn measured_upsert32(s: &mut Session) {
    let value = [7u8; 32];
    for i in 0..OPS {
        let mut k = [0u8; 16];
        k[..8].copy_from_slice(&key(i));
        s.upsert(&k, &value).unwrap();
    }
}

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = Config::new(dir.path())
        .with_log_device(LogDevice::Memory)
        .with_log_memory(64 << 20)
        .with_page_size(1 << 20)
        .with_table_bits(14);
    let store = FasterKv::open(config).expect("open");
    let mut s = store.start_session();
    for k in 0..KEYS {
        s.upsert(&k.to_le_bytes(), &k.to_le_bytes()).unwrap();
        let mut long = [0u8; 16];
        long[..8].copy_from_slice(&k.to_le_bytes());
        s.upsert(&long, &[1u8; 32]).unwrap();
    }
    let mut buf = Vec::new();
    let found8 = measured_read8(&mut s);
    measured_upsert8(&mut s);
    measured_rmw8(&mut s);
    let found32 = measured_read32(&mut s, &mut buf);
    measured_upsert32(&mut s);
    println!(
        "{OPS} operations of each kind over {KEYS} keys: reads found {found8} (8-byte) and \
         {found32} (16-byte keys, 32-byte values); serial {}",
        s.serial()
    );
}
