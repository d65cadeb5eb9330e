//! Binary encoding of audit events (the `trail` blob of a record).
//!
//! `CORRALT1`, a little-endian `u64` count, then per event: name length (`u8`), name bytes,
//! fuel (`u64`), args digest (16 bytes), errno (`u16`), result digest (16 bytes). Decoding is
//! strict and bounded: names must be known host functions, counts must match the length.

use std::borrow::Cow;

use crate::capability::audit::{Digest, MAX_KEPT_EVENTS};
pub use crate::capability::audit::{RecordedEvent, TrailSnapshot};

const MAGIC: &[u8; 8] = b"CORRALT1";

/// Encodes events.
pub fn encode(events: &[RecordedEvent]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + events.len() * 48);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(events.len() as u64).to_le_bytes());
    for e in events {
        let name = e.func.as_bytes();
        out.push(name.len().min(255) as u8);
        out.extend_from_slice(&name[..name.len().min(255)]);
        out.extend_from_slice(&e.fuel.to_le_bytes());
        out.extend_from_slice(&e.args.0);
        out.extend_from_slice(&e.errno.to_le_bytes());
        out.extend_from_slice(&e.result.0);
    }
    out
}

/// Decodes events.
///
/// # Errors
///
/// Bad magic, truncation, trailing bytes, too many events, non-ASCII names.
pub fn decode(bytes: &[u8]) -> Result<Vec<RecordedEvent>, String> {
    let mut r = bytes;
    let mut take = |n: usize| -> Result<&[u8], String> {
        if r.len() < n {
            return Err("the trail is truncated".into());
        }
        let (a, b) = r.split_at(n);
        r = b;
        Ok(a)
    };
    if take(8)? != MAGIC {
        return Err("the trail has a bad header".into());
    }
    let count = u64::from_le_bytes(take(8)?.try_into().map_err(|_| "bad count")?);
    if count > MAX_KEPT_EVENTS as u64 {
        return Err(format!(
            "the trail claims {count} events, more than {MAX_KEPT_EVENTS}"
        ));
    }
    let mut out = Vec::with_capacity(count as usize);
    for index in 0..count {
        let len = take(1)?[0] as usize;
        let name = take(len)?;
        if !name.iter().all(|b| b.is_ascii_graphic()) {
            return Err("the trail has a malformed function name".into());
        }
        let func = Cow::Owned(String::from_utf8_lossy(name).into_owned());
        let fuel = u64::from_le_bytes(take(8)?.try_into().map_err(|_| "bad fuel")?);
        let args = Digest(take(16)?.try_into().map_err(|_| "bad digest")?);
        let errno = u16::from_le_bytes(take(2)?.try_into().map_err(|_| "bad errno")?);
        let result = Digest(take(16)?.try_into().map_err(|_| "bad digest")?);
        out.push(RecordedEvent {
            index,
            func,
            fuel,
            args,
            errno,
            result,
        });
    }
    if !r.is_empty() {
        return Err("the trail has trailing bytes".into());
    }
    Ok(out)
}
