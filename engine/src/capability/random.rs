//! Seeded random streams. Predictable to anyone holding the run record, by design.
//!
//! Each consumer gets its own ChaCha20 stream keyed by `blake3::derive_key(context, seed)`,
//! so adding randomness in one place never shifts another.

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn key(context: &str, seed: u64) -> [u8; 32] {
    blake3::derive_key(context, &seed.to_le_bytes())
}

/// The stream behind `random_get` / `wasi:random/random`.
pub(crate) fn secure(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::from_seed(key("corral 2026 random secure v1", seed))
}

/// The stream behind `wasi:random/insecure`.
pub(crate) fn insecure(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::from_seed(key("corral 2026 random insecure v1", seed))
}

/// The value of `wasi:random/insecure-seed`.
pub(crate) fn insecure_seed(seed: u64) -> u128 {
    let k = key("corral 2026 random insecure-seed v1", seed);
    let mut b = [0u8; 16];
    b.copy_from_slice(&k[..16]);
    u128::from_le_bytes(b)
}
