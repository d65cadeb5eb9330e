//! The run's limit log and the linear-memory/table limiter.

use std::sync::atomic::{AtomicU8, Ordering};

use crate::verdict::LimitKind;

/// The first limit reached during a run, shared by everything that enforces one (limiter,
/// output capture, quotas, epoch callback). "First reached" is deterministic for every limit
/// but `wall_time`.
#[derive(Debug, Default)]
pub(crate) struct LimitLog {
    first: AtomicU8,
}

const ORDER: [LimitKind; 9] = [
    LimitKind::Fuel,
    LimitKind::WallTime,
    LimitKind::Memory,
    LimitKind::Table,
    LimitKind::Stdout,
    LimitKind::Stderr,
    LimitKind::FsBytes,
    LimitKind::FsFiles,
    LimitKind::OpenFiles,
];

impl LimitLog {
    /// Notes that `kind` was reached; only the first note sticks.
    pub(crate) fn hit(&self, kind: LimitKind) {
        let code = ORDER
            .iter()
            .position(|k| *k == kind)
            .map_or(0, |i| i as u8 + 1);
        let _ = self
            .first
            .compare_exchange(0, code, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The first limit reached, if any.
    pub(crate) fn first(&self) -> Option<LimitKind> {
        match self.first.load(Ordering::Relaxed) {
            0 => None,
            n => ORDER.get(usize::from(n) - 1).copied(),
        }
    }
}

/// Enforces linear memory, table elements and the one-instance/one-memory/one-table shape,
/// noting which limit refused a request. A refused `memory.grow` returns -1 to the guest.
#[derive(Debug)]
pub(crate) struct Limiter {
    /// All linear memories together.
    pub(crate) memory_bytes: usize,
    /// All table elements together.
    pub(crate) table_elements: usize,
    /// Core instances (1 for core modules; a component's cap).
    pub(crate) instances: usize,
    /// Linear memories.
    pub(crate) memories: usize,
    /// Tables.
    pub(crate) tables: usize,
    pub(crate) log: std::sync::Arc<LimitLog>,
    /// Bytes of linear memory currently granted (all memories).
    pub(crate) memory_total: usize,
    /// Table elements currently granted (all tables).
    pub(crate) table_total: usize,
}

impl Limiter {
    pub(crate) fn new(
        memory_bytes: u64,
        table_elements: u64,
        (instances, memories, tables): (usize, usize, usize),
        log: std::sync::Arc<LimitLog>,
    ) -> Limiter {
        Limiter {
            memory_bytes: usize::try_from(memory_bytes).unwrap_or(usize::MAX),
            table_elements: usize::try_from(table_elements).unwrap_or(usize::MAX),
            instances,
            memories,
            tables,
            log,
            memory_total: 0,
            table_total: 0,
        }
    }
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.memory_total - current.min(self.memory_total) + desired;
        if desired > self.memory_bytes || total > self.memory_bytes {
            self.log.hit(LimitKind::Memory);
            return Ok(false);
        }
        self.memory_total = total;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let total = self.table_total - current.min(self.table_total) + desired;
        if desired > self.table_elements || total > self.table_elements {
            self.log.hit(LimitKind::Table);
            return Ok(false);
        }
        self.table_total = total;
        Ok(true)
    }

    fn instances(&self) -> usize {
        self.instances
    }

    fn tables(&self) -> usize {
        self.tables
    }

    fn memories(&self) -> usize {
        self.memories
    }
}
