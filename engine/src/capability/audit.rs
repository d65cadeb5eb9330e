//! The audit trail: every guest→host call, in order, with a chained hash.
//!
//! For each call the trail notes the function, a digest of its arguments (scalars and the
//! bytes they point at: paths, written data), the result (errno, or success and a digest of
//! what the host returned: values and bytes written into guest memory), and the fuel consumed
//! when the call was made. Every event feeds one streaming blake3 hash (the chain), so two
//! runs agree on the chain hash iff they made the same calls with the same arguments and got
//! the same results at the same fuel (up to a collision of the per-call digests).
//!
//! Cost matters here: a host-call-heavy guest makes millions of calls. The per-call digests
//! are XXH3-128 (~15 ns; they locate a divergence, and a run is compared only with a
//! re-execution of the same module on the same recorded inputs, so nobody gets to choose two
//! colliding argument lists). The chain is blake3, fed in 16 KiB batches so that it hashes
//! sixteen chunks at a time (~13 ns per event instead of ~80; the hash value is the same as
//! feeding each event as it comes). The first [`MAX_KEPT_EVENTS`] events are kept in memory
//! for `--trace` and for locating a divergence on replay; a checkpoint (call index, fuel,
//! chain hash so far) is taken every [`CHECKPOINT_EVERY`] calls.

use std::collections::BTreeMap;
use std::fmt;

/// Events kept in memory (later calls still feed the chain and the counts).
pub const MAX_KEPT_EVENTS: usize = 65_536;
/// Calls between two checkpoints, at first: when [`MAX_CHECKPOINTS`] are taken, every
/// other one is dropped and the interval doubles, so a record stays small however many
/// calls a run makes (the kept ones are a subset of the multiples of this).
pub const CHECKPOINT_EVERY: u64 = 4_096;
/// Checkpoints kept at most.
pub const MAX_CHECKPOINTS: usize = 32;
/// Bytes of encoded events fed to the chain at once (sixteen blake3 chunks: one SIMD batch).
const CHAIN_BATCH: usize = 16 * 1024;

/// A 128-bit digest (XXH3-128 of a call's arguments or results).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub struct Digest(pub [u8; 16]);

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0 {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl Digest {
    /// Parses 32 hex digits.
    pub fn parse(s: &str) -> Option<Digest> {
        if s.len() != 32 {
            return None;
        }
        let mut out = [0u8; 16];
        for (i, b) in out.iter_mut().enumerate() {
            *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Digest(out))
    }
}

/// Bytes a [`Dig`] keeps inline before it switches to streaming.
const DIG_INLINE: usize = 96;

/// Builds a [`Digest`] from a call's scalars and byte strings: XXH3-128 of their
/// concatenation (byte strings length-prefixed). Most calls digest a few scalars, which stay
/// in an inline buffer and are hashed in one shot; longer input streams (same result).
pub(crate) enum Dig {
    Inline { buf: [u8; DIG_INLINE], len: usize },
    Stream(Box<xxhash_rust::xxh3::Xxh3>),
}

impl std::fmt::Debug for Dig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Dig")
    }
}

impl Dig {
    pub(crate) fn new() -> Dig {
        Dig::Inline {
            buf: [0; DIG_INLINE],
            len: 0,
        }
    }
    pub(crate) fn u64(mut self, v: u64) -> Dig {
        self.raw(&v.to_le_bytes());
        self
    }
    pub(crate) fn bytes(mut self, b: &[u8]) -> Dig {
        self.raw(&(b.len() as u64).to_le_bytes());
        self.raw(b);
        self
    }
    /// Feeds bytes without a length prefix (for data streamed in pieces).
    pub(crate) fn raw(&mut self, b: &[u8]) {
        match self {
            Dig::Inline { buf, len } if *len + b.len() <= DIG_INLINE => {
                buf[*len..*len + b.len()].copy_from_slice(b);
                *len += b.len();
            }
            Dig::Inline { buf, len } => {
                let mut s = Box::new(xxhash_rust::xxh3::Xxh3::new());
                s.update(&buf[..*len]);
                s.update(b);
                *self = Dig::Stream(s);
            }
            Dig::Stream(s) => s.update(b),
        }
    }
    pub(crate) fn finish(self) -> Digest {
        let h = match self {
            Dig::Inline { buf, len } => xxhash_rust::xxh3::xxh3_128(&buf[..len]),
            Dig::Stream(s) => s.digest128(),
        };
        Digest(h.to_le_bytes())
    }
}

/// The `errno` value recorded for a call that trapped instead of returning.
pub const ERRNO_TRAP: u16 = u16::MAX;

/// One host call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// 0-based call index.
    pub index: u64,
    /// Function name (`fd_write`, `wasi:filesystem/types#write`, `corral_v1::metric`, …).
    pub func: &'static str,
    /// Fuel consumed when the call was made.
    pub fuel: u64,
    /// Digest of the arguments.
    pub args: Digest,
    /// WASI errno (0 = success), or [`ERRNO_TRAP`](crate::ERRNO_TRAP).
    pub errno: u16,
    /// Digest of what the host returned.
    pub result: Digest,
}

impl Event {
    fn encode(&self) -> [u8; 8 + 8 + 16 + 2 + 16] {
        let mut b = [0u8; 50];
        b[..8].copy_from_slice(&self.index.to_le_bytes());
        b[8..16].copy_from_slice(&self.fuel.to_le_bytes());
        b[16..32].copy_from_slice(&self.args.0);
        b[32..34].copy_from_slice(&self.errno.to_le_bytes());
        b[34..50].copy_from_slice(&self.result.0);
        b
    }
}

/// A point in the chain: after `calls` calls, at `fuel`, the chain hash was `hash`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// Calls made so far.
    pub calls: u64,
    /// Fuel consumed at the last of those calls.
    pub fuel: u64,
    /// Chain hash over those calls.
    pub hash: Digest,
}

/// The trail of one run.
#[derive(Debug)]
pub struct AuditTrail {
    kept: Vec<Event>,
    total: u64,
    /// Calls per function, in first-call order (a handful of names: a linear scan after a
    /// pointer check on the last one is cheaper than a map).
    counts: Vec<(&'static str, u64)>,
    last_func: usize,
    denials: u64,
    chain: blake3::Hasher,
    /// Encoded events not yet fed to `chain`.
    pending: Vec<u8>,
    checkpoints: Vec<Checkpoint>,
    checkpoint_every: u64,
    last_fuel: u64,
}

impl Default for AuditTrail {
    fn default() -> Self {
        AuditTrail {
            kept: Vec::new(),
            total: 0,
            counts: Vec::new(),
            last_func: 0,
            denials: 0,
            chain: blake3::Hasher::new_derive_key("corral 2026 audit chain v1"),
            pending: Vec::new(),
            checkpoints: Vec::new(),
            checkpoint_every: CHECKPOINT_EVERY,
            last_fuel: 0,
        }
    }
}

impl AuditTrail {
    /// Appends one event (its `index` is assigned here).
    pub(crate) fn push(
        &mut self,
        func: &'static str,
        fuel: u64,
        args: Digest,
        errno: u16,
        result: Digest,
    ) {
        let ev = Event {
            index: self.total,
            func,
            fuel,
            args,
            errno,
            result,
        };
        self.pending.extend_from_slice(func.as_bytes());
        self.pending.push(0);
        self.pending.extend_from_slice(&ev.encode());
        if self.pending.len() >= CHAIN_BATCH {
            self.chain.update(&self.pending);
            self.pending.clear();
        }
        self.count(func);
        self.total += 1;
        self.last_fuel = fuel;
        if self.kept.len() < MAX_KEPT_EVENTS {
            self.kept.push(ev);
        }
        if self.total.is_multiple_of(self.checkpoint_every) {
            if self.checkpoints.len() == MAX_CHECKPOINTS {
                let every = self.checkpoint_every * 2;
                self.checkpoints.retain(|c| c.calls.is_multiple_of(every));
                self.checkpoint_every = every;
            }
            if self.total.is_multiple_of(self.checkpoint_every) {
                self.checkpoints.push(Checkpoint {
                    calls: self.total,
                    fuel,
                    hash: self.hash(),
                });
            }
        }
    }

    fn count(&mut self, func: &'static str) {
        if let Some((name, n)) = self.counts.get_mut(self.last_func)
            && std::ptr::eq(*name, func)
        {
            *n += 1;
            return;
        }
        match self.counts.iter().position(|(name, _)| *name == func) {
            Some(i) => {
                self.counts[i].1 += 1;
                self.last_func = i;
            }
            None => {
                self.counts.push((func, 1));
                self.last_func = self.counts.len() - 1;
            }
        }
    }

    pub(crate) fn note_denial(&mut self) {
        self.denials += 1;
    }

    /// The chain hash over every call so far.
    pub fn hash(&self) -> Digest {
        let mut chain = self.chain.clone();
        chain.update(&self.pending);
        let h = chain.finalize();
        let mut d = [0u8; 16];
        d.copy_from_slice(&h.as_bytes()[..16]);
        Digest(d)
    }

    /// Total calls.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Refused calls.
    pub fn denials(&self) -> u64 {
        self.denials
    }

    /// Calls per function.
    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        let mut m = BTreeMap::new();
        for (name, n) in &self.counts {
            *m.entry(*name).or_insert(0) += n;
        }
        m
    }

    /// The events kept in memory (the first [`MAX_KEPT_EVENTS`](crate::MAX_KEPT_EVENTS)).
    pub fn events(&self) -> &[Event] {
        &self.kept
    }

    /// Checkpoints taken so far.
    pub fn checkpoints(&self) -> &[Checkpoint] {
        &self.checkpoints
    }

    /// Whether every event was kept.
    pub fn complete(&self) -> bool {
        self.total as usize == self.kept.len()
    }
}

/// One event as data: decoded from a record, or taken from a finished run (the name is
/// borrowed from the gate then, owned when it came from elsewhere).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecordedEvent {
    /// Call index.
    pub index: u64,
    /// Function name.
    pub func: std::borrow::Cow<'static, str>,
    /// Fuel at the call.
    pub fuel: u64,
    /// Argument digest.
    pub args: Digest,
    /// Errno (0 = success, `u16::MAX` = trap/exit).
    pub errno: u16,
    /// Result digest.
    pub result: Digest,
}

impl RecordedEvent {
    /// Whether `ev` is the same call with the same result.
    pub fn same_as(&self, ev: &Event) -> bool {
        self.func == ev.func
            && self.fuel == ev.fuel
            && self.args == ev.args
            && self.errno == ev.errno
            && self.result == ev.result
    }
}

impl From<&Event> for RecordedEvent {
    fn from(e: &Event) -> Self {
        RecordedEvent {
            index: e.index,
            func: std::borrow::Cow::Borrowed(e.func),
            fuel: e.fuel,
            args: e.args,
            errno: e.errno,
            result: e.result,
        }
    }
}

/// A finished run's audit trail as data: what a record keeps, what replay compares, what
/// `--trace` prints. Owned and serialisable, so it crosses from a worker process.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrailSnapshot {
    /// The events kept in memory (the first [`MAX_KEPT_EVENTS`]).
    pub events: Vec<RecordedEvent>,
    /// Calls made in all.
    pub total: u64,
    /// The chain hash over every call.
    pub hash: Digest,
    /// The checkpoints taken.
    pub checkpoints: Vec<Checkpoint>,
}

impl TrailSnapshot {
    /// The snapshot of a run's trail.
    pub fn of(trail: &AuditTrail) -> TrailSnapshot {
        TrailSnapshot {
            events: trail.events().iter().map(RecordedEvent::from).collect(),
            total: trail.total(),
            hash: trail.hash(),
            checkpoints: trail.checkpoints().to_vec(),
        }
    }

    /// Whether every call is among [`TrailSnapshot::events`].
    pub fn complete(&self) -> bool {
        self.total == self.events.len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dig_is_xxh3_of_the_concatenation_inline_or_streamed() {
        let long: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for cut in [0usize, 10, 80, 96, 97, 500, 1000] {
            let (a, b) = long.split_at(cut);
            let mut d = Dig::new().u64(7);
            d.raw(a);
            d.raw(b);
            let mut want = 7u64.to_le_bytes().to_vec();
            want.extend_from_slice(&long);
            assert_eq!(
                d.finish(),
                Digest(xxhash_rust::xxh3::xxh3_128(&want).to_le_bytes()),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn checkpoints_stay_few_and_on_multiples() {
        let mut t = AuditTrail::default();
        let d = Digest::default();
        for i in 0..(CHECKPOINT_EVERY * 1000) {
            t.push("fd_write", i, d, 0, d);
            assert!(t.checkpoints().len() <= MAX_CHECKPOINTS);
        }
        let cps = t.checkpoints();
        assert!(cps.len() >= MAX_CHECKPOINTS / 2, "{}", cps.len());
        let step = cps[0].calls;
        for (i, c) in cps.iter().enumerate() {
            assert_eq!(c.calls, step * (i as u64 + 1));
            assert!(c.calls.is_multiple_of(CHECKPOINT_EVERY));
        }
    }

    #[test]
    fn batched_chain_equals_event_by_event() {
        let mut t = AuditTrail::default();
        let mut plain = blake3::Hasher::new_derive_key("corral 2026 audit chain v1");
        for i in 0..2000u64 {
            let d = Dig::new().u64(i).finish();
            t.push("fd_write", i * 3, d, 0, d);
            let ev = Event {
                index: i,
                func: "fd_write",
                fuel: i * 3,
                args: d,
                errno: 0,
                result: d,
            };
            plain.update(b"fd_write\0");
            plain.update(&ev.encode());
            if i % 700 == 0 {
                let h = plain.finalize();
                assert_eq!(t.hash().0, h.as_bytes()[..16], "after {i}");
            }
        }
        assert_eq!(t.hash().0, plain.finalize().as_bytes()[..16]);
    }
}
