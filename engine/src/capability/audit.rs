//! The audit trail: every guest→host call, in order, with a chained hash.
//!
//! For each call the trail notes the function, a digest of its arguments (scalars and the
//! bytes they point at: paths, written data), the result (errno, or success and a digest of
//! what the host returned: values and bytes written into guest memory), and the fuel consumed
//! when the call was made. Every event feeds one streaming blake3 hash (the chain), so two
//! runs agree on the chain hash iff they made the same calls with the same arguments and got
//! the same results at the same fuel. The first [`MAX_KEPT_EVENTS`] events are kept in memory
//! for `--trace` and for locating a divergence on replay; a checkpoint (call index, fuel,
//! chain hash so far) is taken every [`CHECKPOINT_EVERY`] calls.

use std::collections::BTreeMap;
use std::fmt;

/// Events kept in memory (later calls still feed the chain and the counts).
pub const MAX_KEPT_EVENTS: usize = 65_536;
/// Calls between two checkpoints.
pub const CHECKPOINT_EVERY: u64 = 4_096;

/// A 128-bit digest (truncated blake3).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
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

/// Builds a [`Digest`] from a call's scalars and byte strings.
#[derive(Debug)]
pub(crate) struct Dig(blake3::Hasher);

impl Dig {
    pub(crate) fn new() -> Dig {
        Dig(blake3::Hasher::new())
    }
    pub(crate) fn u64(mut self, v: u64) -> Dig {
        self.0.update(&v.to_le_bytes());
        self
    }
    pub(crate) fn bytes(mut self, b: &[u8]) -> Dig {
        self.0.update(&(b.len() as u64).to_le_bytes());
        self.0.update(b);
        self
    }
    /// Feeds bytes without a length prefix (for data streamed in pieces).
    pub(crate) fn raw(&mut self, b: &[u8]) {
        self.0.update(b);
    }
    pub(crate) fn finish(self) -> Digest {
        let h = self.0.finalize();
        let mut d = [0u8; 16];
        d.copy_from_slice(&h.as_bytes()[..16]);
        Digest(d)
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
    /// WASI errno (0 = success), or [`ERRNO_TRAP`].
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    counts: BTreeMap<&'static str, u64>,
    denials: u64,
    chain: blake3::Hasher,
    checkpoints: Vec<Checkpoint>,
    last_fuel: u64,
}

impl Default for AuditTrail {
    fn default() -> Self {
        AuditTrail {
            kept: Vec::new(),
            total: 0,
            counts: BTreeMap::new(),
            denials: 0,
            chain: blake3::Hasher::new_derive_key("corral 2026 audit chain v1"),
            checkpoints: Vec::new(),
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
        self.chain.update(func.as_bytes());
        self.chain.update(&[0]);
        self.chain.update(&ev.encode());
        *self.counts.entry(func).or_insert(0) += 1;
        self.total += 1;
        self.last_fuel = fuel;
        if self.kept.len() < MAX_KEPT_EVENTS {
            self.kept.push(ev);
        }
        if self.total.is_multiple_of(CHECKPOINT_EVERY) {
            self.checkpoints.push(Checkpoint {
                calls: self.total,
                fuel,
                hash: self.hash(),
            });
        }
    }

    pub(crate) fn note_denial(&mut self) {
        self.denials += 1;
    }

    /// The chain hash over every call so far.
    pub fn hash(&self) -> Digest {
        let h = self.chain.finalize();
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
    pub fn counts(&self) -> &BTreeMap<&'static str, u64> {
        &self.counts
    }

    /// The events kept in memory (the first [`MAX_KEPT_EVENTS`]).
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
