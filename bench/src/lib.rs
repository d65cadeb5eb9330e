//! `corral bench`: what a run costs, measured on this machine, against baselines measured in
//! the same run.
//!
//! Every number is a median (and a p99 where the tail matters) of repeated measurements;
//! every ratio divides by a baseline taken in the same process, interleaved with the
//! measured runs where possible, because the machines this runs on are shared and noisy.
//! Baselines are real: wasmtime 48 and wasmtime-wasi used directly with no gate, fuel or
//! limits (`corral::sandbox::baseline`, behind the library's `bench-baseline` feature); a
//! native process per run (fork/exec); the same Rust kernels compiled natively by the same
//! `rustc`; `python3` run the way the reference HumanEval harness runs it. Everything corral
//! runs goes through its job stage (`corral::job`), as in real use.
//!
//! The groups (selectable with `--only`):
//!
//! | group | what |
//! |---|---|
//! | `per-run` | in-process cost of one complete run of a trivial module (gate and limits on) |
//! | `throughput` | trivial runs per second on all cores |
//! | `python` | Python hello from a fresh instance, in-process |
//! | `python-sci` | the scientific runner: `import numpy, pandas` + a DataFrame groupby, in-process and as `corral run`, vs the plain runner and native CPython with the same imports |
//! | `process` | `corral run` as a whole process (`.wat`, `.py`) vs `/bin/true` |
//! | `compute` | CPU kernels under full limits vs the same code native |
//! | `gate` | 1 M small `fd_write`s to a file: the gate vs wasmtime-wasi directly |
//! | `record` | recording on vs off, replay vs the original run, record sizes |
//! | `compile` | cold and cached compile per language |
//! | `eval` | a 1,000-case suite vs a native process per case |
//! | `humaneval` | the 164 HumanEval canonical solutions vs `python3` per problem |
//! | `memory` | resident memory per live sandbox, and for 1,000 at once |
//! | `workers` | the second wall: a run through a warm worker process vs in-process, throughput through workers, `corral run --isolate` as a whole process, HumanEval through workers |
//! | `amplification` | host time per fuel unit of hostile host-call patterns vs a plain wasm loop |
//! | `serve` | `corral serve` on loopback: Python via `/run_code` at 64 clients, a 100-case `/v1/eval`, against the same runs in-process |

mod amplification;
mod guests;
mod measure;
mod sci;
mod serve;

use std::path::PathBuf;
use std::time::Duration;

pub use guests::{KERNELS, KERNELS_RS, NOOP_WAT, SPIN_WAT, writes_wat};

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Fewer repetitions and smaller workloads (a smoke run; numbers are noisier).
    pub quick: bool,
    /// Only these groups (all when empty).
    pub only: Vec<String>,
    /// The `corral` executable, for the whole-process group (skipped without it).
    pub corral_exe: Option<PathBuf>,
    /// The repository's `fixtures/` directory (the eval suite, HumanEval); groups that need it
    /// are skipped without it.
    pub fixtures: Option<PathBuf>,
    /// The cache (compiled programs, runners, precompiled artifacts): the user's, so the
    /// runners are built once.
    pub cache_dir: PathBuf,
    /// Where temporary directories go.
    pub temp_root: PathBuf,
}

/// The groups, in the order they run.
pub const GROUPS: [&str; 15] = [
    "per-run",
    "throughput",
    "python",
    "python-sci",
    "process",
    "compute",
    "gate",
    "record",
    "compile",
    "eval",
    "humaneval",
    "memory",
    "workers",
    "amplification",
    "serve",
];

/// A measured quantity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// A duration.
    Time(Duration),
    /// Events per second.
    Rate(f64),
    /// A size.
    Bytes(u64),
    /// A plain ratio (e.g. a measured overhead factor).
    Ratio(f64),
}

impl Value {
    fn scalar(self) -> f64 {
        match self {
            Value::Time(d) => d.as_secs_f64(),
            Value::Rate(r) | Value::Ratio(r) => r,
            Value::Bytes(b) => b as f64,
        }
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Value::Time(d) => {
                let s = d.as_secs_f64();
                if s < 1e-3 {
                    write!(f, "{:.1} µs", s * 1e6)
                } else if s < 1.0 {
                    write!(f, "{:.2} ms", s * 1e3)
                } else {
                    write!(f, "{s:.2} s")
                }
            }
            Value::Rate(r) => {
                if r >= 1e4 {
                    write!(f, "{:.0}k/s", r / 1e3)
                } else {
                    write!(f, "{r:.0}/s")
                }
            }
            Value::Bytes(b) => {
                if b >= 10 << 20 {
                    write!(f, "{:.0} MiB", b as f64 / f64::from(1 << 20))
                } else if b >= 10 << 10 {
                    write!(f, "{:.0} KiB", b as f64 / 1024.0)
                } else {
                    write!(f, "{b} B")
                }
            }
            Value::Ratio(r) => write!(f, "{r:.2}×"),
        }
    }
}

/// A target from the issues, and whether this run met it.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// As written, e.g. `≤ 20 µs` or `≤ 1.10×`.
    pub text: String,
    /// Met in this run.
    pub met: bool,
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The group.
    pub group: &'static str,
    /// What was measured.
    pub name: String,
    /// The measurement (`None` when it could not be taken: see `note`).
    pub value: Option<Value>,
    /// The baseline: what it is, and its measurement.
    pub baseline: Option<(String, Value)>,
    /// A target, when the issues set one.
    pub target: Option<Target>,
    /// A remark (sample count, p99, why it was skipped).
    pub note: String,
}

impl Row {
    fn new(group: &'static str, name: impl Into<String>, value: Value) -> Row {
        Row {
            group,
            name: name.into(),
            value: Some(value),
            baseline: None,
            target: None,
            note: String::new(),
        }
    }

    fn skipped(group: &'static str, name: impl Into<String>, why: impl Into<String>) -> Row {
        Row {
            group,
            name: name.into(),
            value: None,
            baseline: None,
            target: None,
            note: format!("skipped: {}", why.into()),
        }
    }

    fn baseline(mut self, name: impl Into<String>, value: Value) -> Row {
        self.baseline = Some((name.into(), value));
        self
    }

    fn note(mut self, note: impl Into<String>) -> Row {
        self.note = note.into();
        self
    }

    /// The value divided by the baseline (for times: how many times slower).
    pub fn ratio(&self) -> Option<f64> {
        let v = self.value?.scalar();
        let (_, b) = self.baseline.as_ref()?;
        let b = b.scalar();
        (b > 0.0).then(|| v / b)
    }

    /// Sets a target on the value: at most `max`.
    fn at_most(mut self, max: Value, text: &str) -> Row {
        if let Some(v) = self.value {
            self.target = Some(Target {
                text: text.into(),
                met: v.scalar() <= max.scalar(),
            });
        }
        self
    }

    /// Sets a target on the value: at least `min`.
    fn at_least(mut self, min: Value, text: &str) -> Row {
        if let Some(v) = self.value {
            self.target = Some(Target {
                text: text.into(),
                met: v.scalar() >= min.scalar(),
            });
        }
        self
    }

    /// Sets a target on the ratio: at least `min`.
    fn ratio_at_least(mut self, min: f64, text: &str) -> Row {
        if let Some(r) = self.ratio() {
            self.target = Some(Target {
                text: text.into(),
                met: r >= min,
            });
        }
        self
    }

    /// Sets a target on the ratio: at most `max`.
    fn ratio_at_most(mut self, max: f64, text: &str) -> Row {
        if let Some(r) = self.ratio() {
            self.target = Some(Target {
                text: text.into(),
                met: r <= max,
            });
        }
        self
    }
}

/// Runs the selected groups in order, calling `progress` with a line before each step.
/// A group that cannot run (a missing tool, no fixtures directory) gives a skipped row;
/// it never stops the others.
pub fn run(opts: &BenchOptions, progress: &(dyn Fn(&str) + Sync)) -> Vec<Row> {
    let mut rows = Vec::new();
    for group in GROUPS {
        if !opts.only.is_empty() && !opts.only.iter().any(|g| g == group) {
            continue;
        }
        progress(&format!("bench: {group}"));
        let result = match group {
            "per-run" => measure::per_run(opts),
            "throughput" => measure::throughput(opts),
            "python" => measure::python(opts, progress),
            "python-sci" => sci::python_sci(opts, progress),
            "process" => measure::process(opts),
            "compute" => measure::compute(opts, progress),
            "gate" => measure::gate(opts),
            "record" => measure::record(opts),
            "compile" => measure::compile(opts),
            "eval" => measure::eval(opts),
            "humaneval" => measure::humaneval(opts),
            "memory" => measure::memory(opts),
            "workers" => measure::workers(opts),
            "amplification" => amplification::amplification(opts, progress),
            "serve" => serve::serve(opts, progress),
            _ => Ok(Vec::new()),
        };
        match result {
            Ok(r) => rows.extend(r),
            Err(e) => rows.push(Row::skipped(group, group, e.to_string())),
        }
    }
    rows
}

/// The table, for a terminal.
pub fn render(rows: &[Row]) -> String {
    let mut lines: Vec<[String; 6]> = vec![[
        "group".into(),
        "measurement".into(),
        "corral".into(),
        "baseline".into(),
        "ratio".into(),
        "target".into(),
    ]];
    for r in rows {
        let value = r.value.map(|v| v.to_string()).unwrap_or_else(|| "—".into());
        let baseline = r
            .baseline
            .as_ref()
            .map(|(n, v)| format!("{v} ({n})"))
            .unwrap_or_default();
        let ratio = r.ratio().map(|x| format!("{x:.2}×")).unwrap_or_default();
        let target = r
            .target
            .as_ref()
            .map(|t| format!("{} {}", t.text, if t.met { "✓" } else { "✗" }))
            .unwrap_or_default();
        lines.push([
            r.group.into(),
            r.name.clone(),
            value,
            baseline,
            ratio,
            target,
        ]);
    }
    let mut widths = [0usize; 6];
    for l in &lines {
        for (w, c) in widths.iter_mut().zip(l) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        let mut line = String::new();
        for (j, (c, w)) in l.iter().zip(widths).enumerate() {
            let pad = w.saturating_sub(c.chars().count());
            // Numbers right-aligned, text left-aligned.
            if j == 2 || j == 4 {
                line.push_str(&" ".repeat(pad));
                line.push_str(c);
            } else {
                line.push_str(c);
                line.push_str(&" ".repeat(pad));
            }
            line.push_str("  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
        if i > 0 && !rows[i - 1].note.is_empty() {
            out.push_str(&format!(
                "{:w$}  └ {}\n",
                "",
                rows[i - 1].note,
                w = widths[0]
            ));
        }
    }
    out
}

/// The rows as JSON.
pub fn to_json(rows: &[Row]) -> serde_json::Value {
    let enc = |v: Value| match v {
        Value::Time(d) => serde_json::json!({ "seconds": d.as_secs_f64() }),
        Value::Rate(r) => serde_json::json!({ "per_second": r }),
        Value::Bytes(b) => serde_json::json!({ "bytes": b }),
        Value::Ratio(r) => serde_json::json!({ "ratio": r }),
    };
    serde_json::Value::Array(
        rows.iter()
            .map(|r| {
                serde_json::json!({
                    "group": r.group,
                    "name": r.name,
                    "value": r.value.map(enc),
                    "baseline": r.baseline.as_ref().map(|(n, v)| serde_json::json!({ "name": n, "value": enc(*v) })),
                    "ratio": r.ratio(),
                    "target": r.target.as_ref().map(|t| serde_json::json!({ "text": t.text, "met": t.met })),
                    "note": r.note,
                })
            })
            .collect(),
    )
}

/// Median and p99 of samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stats {
    /// The median.
    pub p50: Duration,
    /// The 99th percentile.
    pub p99: Duration,
    /// How many samples.
    pub n: usize,
}

impl Stats {
    /// Of `samples` (reordered).
    pub fn of(samples: &mut [Duration]) -> Stats {
        samples.sort_unstable();
        let at = |q: usize| {
            samples
                .get((samples.len() * q / 100).min(samples.len().saturating_sub(1)))
                .copied()
                .unwrap_or_default()
        };
        Stats {
            p50: at(50),
            p99: at(99),
            n: samples.len(),
        }
    }
}
