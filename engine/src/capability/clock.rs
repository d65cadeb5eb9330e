//! Virtual clocks. Nothing here reads the host's time.
//!
//! The monotonic clock is derived from guest progress: it starts at [`MONO_START_NS`] and
//! advances by [`NS_PER_FUEL`] per fuel unit consumed, plus whatever the guest "slept" (a sleep
//! advances virtual time instantly). The wall clock is the policy's epoch plus the same elapsed
//! time. Both are strictly increasing across reads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Virtual nanoseconds per fuel unit (about one wasm instruction).
pub(crate) const NS_PER_FUEL: u64 = 1;
/// The monotonic clock's value at the start of every run.
pub(crate) const MONO_START_NS: u64 = 1_000_000_000;
/// The resolution every clock reports, in nanoseconds.
pub(crate) const RESOLUTION_NS: u64 = 1;

/// A run's virtual time. Shared (atomics) so WASI 0.2 clock objects can read it too.
#[derive(Debug)]
pub(crate) struct VirtualClock {
    epoch_ns: u64,
    fuel_consumed: AtomicU64,
    slept_ns: AtomicU64,
    last_mono: AtomicU64,
}

impl VirtualClock {
    pub(crate) fn new(epoch_secs: u64) -> VirtualClock {
        VirtualClock {
            epoch_ns: epoch_secs.saturating_mul(1_000_000_000),
            fuel_consumed: AtomicU64::new(0),
            slept_ns: AtomicU64::new(0),
            last_mono: AtomicU64::new(0),
        }
    }

    /// Called at every host call with the fuel consumed so far.
    pub(crate) fn set_fuel_consumed(&self, fuel: u64) {
        self.fuel_consumed.store(fuel, Ordering::Relaxed);
    }

    pub(crate) fn fuel_consumed(&self) -> u64 {
        self.fuel_consumed.load(Ordering::Relaxed)
    }

    fn raw_mono(&self) -> u64 {
        MONO_START_NS
            .saturating_add(self.fuel_consumed().saturating_mul(NS_PER_FUEL))
            .saturating_add(self.slept_ns.load(Ordering::Relaxed))
    }

    /// The monotonic clock, strictly increasing across reads.
    pub(crate) fn mono_now(&self) -> u64 {
        let raw = self.raw_mono();
        let last = self.last_mono.load(Ordering::Relaxed);
        let now = raw.max(last.saturating_add(1));
        self.last_mono.store(now, Ordering::Relaxed);
        now
    }

    /// The monotonic value without advancing the strictly-increasing guard.
    pub(crate) fn mono_peek(&self) -> u64 {
        self.raw_mono().max(self.last_mono.load(Ordering::Relaxed))
    }

    /// Wall-clock nanoseconds since the Unix epoch.
    pub(crate) fn wall_now(&self) -> u64 {
        self.epoch_ns
            .saturating_add(self.mono_now().saturating_sub(MONO_START_NS))
    }

    /// The fixed timestamp of every file (the policy's epoch).
    pub(crate) fn epoch_ns(&self) -> u64 {
        self.epoch_ns
    }

    /// CPU-time clocks: the fuel-derived part only.
    pub(crate) fn cpu_now(&self) -> u64 {
        self.fuel_consumed().saturating_mul(NS_PER_FUEL)
    }

    /// Advances virtual time so the monotonic clock reads at least `deadline`.
    pub(crate) fn sleep_until(&self, deadline: u64) {
        let now = self.mono_peek();
        if deadline > now {
            self.slept_ns.fetch_add(deadline - now, Ordering::Relaxed);
        }
    }
}

/// WASI 0.2 view of the virtual wall clock.
pub(crate) struct WallView(pub(crate) std::sync::Arc<VirtualClock>);
/// WASI 0.2 view of the virtual monotonic clock.
pub(crate) struct MonoView(pub(crate) std::sync::Arc<VirtualClock>);

impl wasmtime_wasi::HostWallClock for WallView {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(RESOLUTION_NS)
    }
    fn now(&self) -> Duration {
        Duration::from_nanos(self.0.wall_now())
    }
}

impl wasmtime_wasi::HostMonotonicClock for MonoView {
    fn resolution(&self) -> u64 {
        RESOLUTION_NS
    }
    fn now(&self) -> u64 {
        self.0.mono_now()
    }
}
