//! The `python-sci` group: start-up of the scientific Python runner, against the plain
//! Python runner and native CPython with the same imports, measured in one run.
//!
//! The program is `ANALYSIS_PY`: `import numpy, pandas` plus a small DataFrame computation
//! (a groupby over 1,000 rows). Native CPython needs numpy and pandas: `$CORRAL_BENCH_PYTHON`
//! if set, else `python3`; without them its row says so.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use super::guests::HELLO_PY;
use super::measure::{
    count, current_thread, engine, prepare, run_job, seeded, spawn_time, temp_dir,
};
use super::{BenchOptions, Row, Stats, Value};
use corral::job::Program;
use corral::policy::Policy;
use corral::{Error, Verdict};

/// The benchmark program: the target's "import numpy, pandas plus a small dataframe
/// computation".
pub const ANALYSIS_PY: &str = "\
import numpy as np
import pandas as pd

df = pd.DataFrame({\"g\": np.arange(1000) % 7, \"x\": np.arange(1000, dtype=float)})
s = df.groupby(\"g\")[\"x\"].agg([\"mean\", \"sum\", \"count\"])
print(s.loc[3, \"count\"], round(float(s[\"mean\"].sum()), 3))
";

/// What `ANALYSIS_PY` prints.
const ANALYSIS_OUT: &[u8] = b"143 3496.5\n";

type Rows = Result<Vec<Row>, Error>;

/// A native Python with numpy and pandas, if there is one.
fn native_python() -> Option<String> {
    let candidates = std::env::var("CORRAL_BENCH_PYTHON")
        .ok()
        .into_iter()
        .chain(["python3".to_string()]);
    for py in candidates {
        let ok = Command::new(&py)
            .args(["-c", "import numpy, pandas"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(py);
        }
    }
    None
}

pub(super) fn python_sci(opts: &BenchOptions, progress: &(dyn Fn(&str) + Sync)) -> Rows {
    let engine = engine(opts, None)?;
    let strict = Policy::strict();
    progress(
        "bench: preparing the scientific Python runner (built and compiled once, then cached)",
    );
    let sci = prepare(&engine, "analysis.py", ANALYSIS_PY, &strict)?;
    let sci_hello = prepare(
        &engine,
        "hello.py",
        "import numpy\nprint('hello')\n",
        &strict,
    )?;
    let plain = prepare(&engine, "hello.py", HELLO_PY, &strict)?;
    let rt = current_thread()?;
    let run = |program: &Program, want: &[u8], i: u64| -> Result<Duration, Error> {
        let t = Instant::now();
        let r = rt.block_on(run_job(&engine, program, &strict, &seeded(i)))?;
        let d = t.elapsed();
        if r.verdict != Verdict::Ok || r.stdout != want {
            return Err(Error::host(format!(
                "{} failed: {} ({:?})",
                program.name(),
                r.message,
                String::from_utf8_lossy(&r.stdout)
            )));
        }
        Ok(d)
    };
    for i in 0..5 {
        run(&sci, ANALYSIS_OUT, i)?;
        run(&sci_hello, b"hello\n", i)?;
        run(&plain, b"hello\n", i)?;
    }
    let rounds = count(opts, 20, 4);
    let (mut a, mut h, mut p) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        for i in 0..5 {
            let seed = (round * 5 + i) as u64;
            a.push(run(&sci, ANALYSIS_OUT, seed)?);
            h.push(run(&sci_hello, b"hello\n", seed)?);
            p.push(run(&plain, b"hello\n", seed)?);
        }
    }
    let (a, h, p) = (Stats::of(&mut a), Stats::of(&mut h), Stats::of(&mut p));
    let plain_base = "plain Python runner, hello, fresh instance, in-process";
    let mut rows = vec![
        Row::new(
            "python-sci",
            "python-sci: import numpy, pandas + DataFrame groupby, fresh instance, in-process, p50",
            Value::Time(a.p50),
        )
        .baseline(plain_base, Value::Time(p.p50))
        .at_most(Value::Time(Duration::from_millis(50)), "≤ 50 ms")
        .note(format!("{} runs each, interleaved; p99 {:?}", a.n, a.p99)),
        Row::new(
            "python-sci",
            "python-sci: hello (numpy imported), fresh instance, in-process, p50",
            Value::Time(h.p50),
        )
        .baseline(plain_base, Value::Time(p.p50))
        .note(format!("p99 {:?}", h.p99)),
    ];
    rows.extend(whole_process(opts)?);
    Ok(rows)
}

fn whole_process(opts: &BenchOptions) -> Rows {
    let name = "corral run analysis.py (python-sci), whole process, warm cache, p50";
    let Some(exe) = &opts.corral_exe else {
        return Ok(vec![Row::skipped(
            "python-sci",
            name,
            "no corral executable (run `corral bench`)",
        )]);
    };
    let dir = temp_dir(opts)?;
    let file = dir.path().join("analysis.py");
    let hello = dir.path().join("hello.py");
    std::fs::write(&file, ANALYSIS_PY).map_err(|e| Error::host(e.to_string()))?;
    std::fs::write(&hello, HELLO_PY).map_err(|e| Error::host(e.to_string()))?;
    let corral = |file: &Path| {
        let mut c = Command::new(exe);
        c.arg("run").arg(file).arg("--no-record").env(
            "CORRAL_HOME",
            opts.cache_dir.parent().unwrap_or(&opts.cache_dir),
        );
        c
    };
    let native = native_python();
    for _ in 0..3 {
        spawn_time(&mut corral(&file))?;
        spawn_time(&mut corral(&hello))?;
        if let Some(py) = &native {
            spawn_time(Command::new(py).arg(&file))?;
        }
    }
    let n = count(opts, 20, 5);
    let (mut c, mut ch, mut nat) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        c.push(spawn_time(&mut corral(&file))?);
        ch.push(spawn_time(&mut corral(&hello))?);
        if let Some(py) = &native {
            nat.push(spawn_time(Command::new(py).arg(&file))?);
        }
    }
    let (c, ch) = (Stats::of(&mut c), Stats::of(&mut ch));
    let mut row = Row::new("python-sci", name, Value::Time(c.p50));
    let note = format!(
        "{} runs each, interleaved; p99 {:?}; `corral run hello.py` (plain runner) p50 {:?}",
        c.n, c.p99, ch.p50
    );
    match native {
        Some(py) => {
            let nat = Stats::of(&mut nat);
            row = row
                .baseline(
                    format!("native `{py} analysis.py` (same imports), unsandboxed"),
                    Value::Time(nat.p50),
                )
                .note(note);
        }
        None => {
            row = row.note(format!(
                "{note}; no native baseline: python3 has no numpy/pandas (set CORRAL_BENCH_PYTHON)"
            ));
        }
    }
    row = row.at_most(Value::Time(Duration::from_millis(150)), "≤ 150 ms");
    Ok(vec![row])
}
