//! The byte format of a checkpoint's `meta` file.
//!
//! | bytes | content |
//! |---|---|
//! | 8 | [`MAGIC`] `b"FSTRCKPT"` |
//! | 4 | [`FORMAT_VERSION`], `u32` little-endian |
//! | 4 | payload length `n`, `u32` little-endian |
//! | n | the [`CheckpointMeta`] in postcard |
//! | 8 | xxh3-64 of all bytes before it, `u64` little-endian |
//!
//! The whole file is at most [`MAX_META_BYTES`].

use std::path::Path;

use xxhash_rust::xxh3::xxh3_64;

use crate::error::{RecoveryError, Result};
use crate::meta::CheckpointMeta;
use crate::validate::validate;

/// The first eight bytes of every metadata file.
pub const MAGIC: [u8; 8] = *b"FSTRCKPT";
/// The format version this crate writes and reads. Version 2: records on the log device and
/// in snapshots carry checksums, and the metadata names the log's segment size. Version 3:
/// bits 16..30 of a key's hash copy its tag, so index tables of more than 2^16 buckets place
/// keys differently (and tables grow without reading records).
pub const FORMAT_VERSION: u32 = 3;
/// Bytes before the payload: magic, format version, payload length.
pub const HEADER_BYTES: usize = 16;
/// Bytes after the payload: the checksum.
pub const TRAILER_BYTES: usize = 8;
/// The largest metadata file accepted: 1 MiB.
pub const MAX_META_BYTES: u64 = 1 << 20;

/// Encodes `meta` in the [module's](self) format. Does not validate it (callers that write it
/// should validate first; [`StoreLayout::write_meta`](crate::StoreLayout::write_meta) does).
pub fn encode(meta: &CheckpointMeta) -> Vec<u8> {
    // Serialising plain data into a Vec cannot fail (no maps with non-string keys, no
    // sequences of unknown length); an empty payload would be rejected by `decode`.
    let payload = postcard::to_allocvec(meta).unwrap_or_default();
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len() + TRAILER_BYTES);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&payload);
    let sum = xxh3_64(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// Decodes and [validates](crate::validate()) the metadata in `bytes`, read from `file`
/// (used only in error messages).
///
/// Checks, in order: the total length (at least header and trailer, at most
/// [`MAX_META_BYTES`]), the magic, the format version, that the payload length agrees with
/// the length of `bytes`, the checksum, the postcard payload (no trailing bytes), and finally
/// the metadata's own rules. Fails with [`RecoveryError::Corrupt`] naming `file`.
pub fn decode(bytes: &[u8], file: &Path) -> Result<CheckpointMeta> {
    let bad = |reason: String| Err(RecoveryError::corrupt(file, reason));
    let total = bytes.len();
    if total < HEADER_BYTES + TRAILER_BYTES {
        return bad(format!(
            "{total} bytes is shorter than the {} bytes of header and checksum",
            HEADER_BYTES + TRAILER_BYTES
        ));
    }
    if total as u64 > MAX_META_BYTES {
        return bad(format!(
            "{total} bytes exceeds the {MAX_META_BYTES}-byte limit of a metadata file"
        ));
    }
    let (header, rest) = bytes.split_at(HEADER_BYTES);
    let (magic, rest_header) = header.split_at(MAGIC.len());
    if magic != MAGIC {
        return bad(format!(
            "bad magic {magic:02x?}: not a checkpoint metadata file (expected \"FSTRCKPT\")"
        ));
    }
    let (version, len) = rest_header.split_at(4);
    let version = u32::from_le_bytes(version.try_into().unwrap_or_default());
    if version != FORMAT_VERSION {
        // A version far from any this project wrote means the header itself is damaged.
        if version > FORMAT_VERSION + 100 {
            return bad(format!(
                "the header is damaged: its format version field reads {version} (this build \
                 writes and reads version {FORMAT_VERSION})"
            ));
        }
        return bad(format!(
            "format version {version} found, but this build supports only version \
             {FORMAT_VERSION}"
        ));
    }
    let len = u32::from_le_bytes(len.try_into().unwrap_or_default()) as usize;
    let expected = total - HEADER_BYTES - TRAILER_BYTES;
    if len != expected {
        return bad(format!(
            "the header announces a {len}-byte payload but the file leaves room for {expected} \
             bytes (file size {total}): truncated or extended"
        ));
    }
    let (payload, trailer) = rest.split_at(len);
    let stored = u64::from_le_bytes(trailer.try_into().unwrap_or_default());
    let computed = xxh3_64(&bytes[..HEADER_BYTES + len]);
    if stored != computed {
        return bad(format!(
            "checksum mismatch: stored {stored:#018x}, computed {computed:#018x}"
        ));
    }
    let meta = match postcard::take_from_bytes::<CheckpointMeta>(payload) {
        Ok((meta, [])) => meta,
        Ok((_, extra)) => {
            return bad(format!(
                "{} trailing bytes after the metadata payload",
                extra.len()
            ));
        }
        Err(e) => return bad(format!("the metadata payload does not decode: {e}")),
    };
    validate(&meta, file)?;
    Ok(meta)
}
