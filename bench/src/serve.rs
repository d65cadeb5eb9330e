//! The `serve` group: `corral serve` under load on loopback, against the in-process rate of
//! the same runs through `corral::job`, measured in the same run.
//!
//! - Python `print` through SandboxFusion's `/run_code` from 64 concurrent keep-alive
//!   clients (a small HTTP/1.1 load generator on one thread of this process, sharing the
//!   machine's cores with the service, as a load tool would), bounded in time; requests per
//!   second and p50/p99 latency. Baseline: fresh Python runs through `job::run` on every core,
//!   64 in flight, no HTTP.
//! - A 100-case `/v1/eval` of a compiled C program: cases per second. Baseline: the same
//!   cases through `eval::run_cases` in-process.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use corral::compile::{Language, Source};
use corral::eval::{self, Case, EvalOptions};
use corral::job::{Invocation, Program};
use corral::{Engine, Error, Policy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{BenchOptions, Row, Stats, Value};

type Rows = Result<Vec<Row>, Error>;

const CLIENTS: usize = 64;
const C_PROGRAM: &str = "#include <stdio.h>\nint main(void){long x; if(scanf(\"%ld\",&x)!=1) return 1; printf(\"%ld\\n\", x*2); return 0;}\n";

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn host(e: impl std::fmt::Display) -> Error {
    Error::host(format!("serve benchmark: {e}"))
}

/// The engine the service uses (`corral_serve::engine_config`: worker processes unless
/// `in_process`), with the bench's cache and temporary root.
fn engine(opts: &BenchOptions, workers: usize, in_process: bool) -> Result<Engine, Error> {
    Engine::new(corral::EngineConfig {
        temp_root: opts.temp_root.clone(),
        cache_dir: Some(opts.cache_dir.clone()),
        ..corral_serve::engine_config(workers, in_process)
    })
}

/// One keep-alive connection: sends `request` and reads one response; the status and the
/// latency.
async fn exchange(
    conn: &mut tokio::net::TcpStream,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> Result<u16, Error> {
    conn.write_all(request).await.map_err(host)?;
    buf.clear();
    let mut chunk = [0u8; 8192];
    loop {
        let n = conn.read(&mut chunk).await.map_err(host)?;
        if n == 0 {
            return Err(host("connection closed"));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| host("no content-length"))?;
            while buf.len() < end + 4 + len {
                let n = conn.read(&mut chunk).await.map_err(host)?;
                if n == 0 {
                    return Err(host("connection closed mid-body"));
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let status = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            return Ok(status);
        }
    }
}

fn post_request(addr: SocketAddr, path: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// `clients` connections sending `request` until `span` passes; latencies of the 200s and
/// the number of other statuses.
fn load(
    addr: SocketAddr,
    request: Vec<u8>,
    clients: usize,
    span: Duration,
) -> Result<(Vec<Duration>, usize, Duration), Error> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(host)?;
    rt.block_on(async move {
        let request = Arc::new(request);
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let request = request.clone();
            tasks.push(tokio::spawn(async move {
                let mut conn = tokio::net::TcpStream::connect(addr).await.map_err(host)?;
                conn.set_nodelay(true).map_err(host)?;
                let mut buf = Vec::new();
                let (mut lat, mut other) = (Vec::new(), 0usize);
                // At least one request per client, then until `span` has passed.
                loop {
                    let t = Instant::now();
                    let status = exchange(&mut conn, &request, &mut buf).await?;
                    if status == 200 {
                        lat.push(t.elapsed());
                    } else {
                        other += 1;
                    }
                    if started.elapsed() >= span {
                        break;
                    }
                }
                Ok::<_, Error>((lat, other))
            }));
        }
        let (mut all, mut other) = (Vec::new(), 0);
        for t in tasks {
            let (l, o) = t.await.map_err(host)??;
            all.extend(l);
            other += o;
        }
        Ok((all, other, started.elapsed()))
    })
}

/// The in-process baseline: fresh Python runs through `job::run` on `threads` workers, `inflight`
/// at once, for `span`.
fn in_process_rate(
    engine: &Engine,
    program: &Arc<Program>,
    policy: &Arc<Policy>,
    threads: usize,
    inflight: usize,
    span: Duration,
) -> Result<f64, Error> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(host)?;
    super::measure::rate(&rt, engine, program, policy, inflight, span)
}

/// A service on `engine`, serving on a loopback port from its own runtime (`workers`
/// threads) until the returned flag is set.
fn start_service(
    engine: Engine,
    workers: usize,
    records: Option<corral::record::RecordStore>,
) -> Result<(SocketAddr, Arc<AtomicBool>, std::thread::JoinHandle<()>), Error> {
    let mut config = corral_serve::Config::new(Policy::strict());
    config.concurrency = workers * 2;
    config.queue = 1024;
    config.records = records;
    let svc = corral_serve::Service::new(engine, config);
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = std::sync::mpsc::channel();
    let flag = stop.clone();
    let handle = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            let Ok(listener) = tokio::net::TcpListener::bind("127.0.0.1:0").await else {
                return;
            };
            let _ = tx.send(listener.local_addr().ok());
            let shutdown = async move {
                while !flag.load(Ordering::Relaxed) {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            };
            let _ = corral_serve::serve(listener, svc, shutdown).await;
        });
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(10))
        .ok()
        .flatten()
        .ok_or_else(|| host("the service did not start"))?;
    Ok((addr, stop, handle))
}

pub(super) fn serve(opts: &BenchOptions, progress: &(dyn Fn(&str) + Sync)) -> Rows {
    let workers = cores();
    let span = Duration::from_millis(if opts.quick { 1500 } else { 5000 });
    // The service's engine (worker processes, as `corral serve` runs) and the baselines'
    // (in-process).
    let engine = engine(opts, workers, false)?;
    let local = self::engine(opts, workers, true)?;
    let strict = Arc::new(Policy::strict());
    let py = Source::new(b"print('hello')\n".to_vec(), "main.py", Language::Python);
    let program = Arc::new(Program::prepare(&local, &py, &strict)?);
    // Warm the pool and the runner.
    in_process_rate(
        &local,
        &program,
        &strict,
        workers,
        CLIENTS,
        Duration::from_millis(300),
    )?;

    let store_dir = tempfile::Builder::new()
        .prefix("corral-bench-store-")
        .tempdir_in(&opts.temp_root)
        .map_err(host)?;
    let mut rows = Vec::new();
    let body = serde_json::json!({
        "code": "print('hello')\n", "language": "python", "stdin": null,
        "compile_timeout": 10, "run_timeout": 10, "files": {}, "fetch_files": []
    })
    .to_string();
    for (label, records) in [
        ("records off", None),
        (
            "every run recorded",
            Some(corral::record::RecordStore::new(store_dir.path())),
        ),
    ] {
        progress(&format!("bench: serve /run_code, {label}"));
        let base = in_process_rate(&local, &program, &strict, workers, CLIENTS, span)?;
        let (addr, stop, handle) = start_service(engine.clone(), workers, records)?;
        let request = post_request(addr, "/run_code", &body);
        // Warm-up, then the measured load.
        load(addr, request.clone(), 8, Duration::from_millis(300))?;
        let (mut lat, other, took) = load(addr, request, CLIENTS, span)?;
        stop.store(true, Ordering::Relaxed);
        let _ = handle.join();
        let rate = lat.len() as f64 / took.as_secs_f64();
        let s = Stats::of(&mut lat);
        let base_again = in_process_rate(&local, &program, &strict, workers, CLIENTS, span)?;
        let baseline = (base + base_again) / 2.0;
        rows.push(
            Row::new(
                "serve",
                format!("Python print via /run_code, {CLIENTS} clients, {label}"),
                Value::Rate(rate),
            )
            .baseline(
                format!("fresh Python runs through corral::job in-process, {workers} cores"),
                Value::Rate(baseline),
            )
            .ratio_at_least(0.85, "≥ 0.85×")
            .note(format!(
                "{} requests in {took:.1?}; latency p50 {:?}, p99 {:?} (target p99 ≤ 50 ms: {}); {other} non-200; in-process before/after: {base:.0}/s, {base_again:.0}/s",
                s.n,
                s.p50,
                s.p99,
                if s.p99 <= Duration::from_millis(50) { "met" } else { "not met" }
            )),
        );
    }

    // A 100-case eval of a compiled C program.
    progress("bench: serve /v1/eval, 100 cases of a C program");
    let c = Source::new(C_PROGRAM.as_bytes().to_vec(), "main.c", Language::C);
    let c_program = Arc::new(Program::prepare(&local, &c, &strict)?);
    if let Some(f) = c_program.failure() {
        return Err(host(format!("the C program did not build: {}", f.message)));
    }
    let cases: Vec<serde_json::Value> = (0..100)
        .map(|i| serde_json::json!({"stdin": format!("{i}\n"), "expect_stdout": format!("{}\n", i * 2)}))
        .collect();
    let eval_body =
        serde_json::json!({"code": C_PROGRAM, "language": "c", "cases": cases}).to_string();
    let in_process_cases: Vec<Case> = (0..100)
        .map(|i| Case {
            name: format!("case-{i}"),
            invocation: Invocation {
                stdin: format!("{i}\n").into_bytes(),
                ..Invocation::default()
            },
            expect_stdout: Some(format!("{}\n", i * 2)),
            expect_exit: 0,
            compare: eval::compare::Compare::Trim,
            policy: strict.clone(),
        })
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .map_err(host)?;
    let eval_opts = EvalOptions {
        jobs: workers * 2,
        store: None,
    };
    let rounds = if opts.quick { 20 } else { 100 };
    let mut inproc = Vec::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let r = rt.block_on(eval::run_cases(
            &local,
            c_program.clone(),
            in_process_cases.clone(),
            &eval_opts,
            |_, _| {},
        ))?;
        inproc.push(t.elapsed());
        if r.iter().any(|c| c.status != eval::CaseStatus::Pass) {
            return Err(host("an in-process eval case failed"));
        }
    }
    drop(rt);
    let (addr, stop, handle) = start_service(engine.clone(), workers, None)?;
    let request = post_request(addr, "/v1/eval", &eval_body);
    let (mut lat, other, _) = load(addr, request.clone(), 1, Duration::from_millis(300))?;
    lat.clear();
    let mut served = Vec::new();
    for _ in 0..rounds {
        let (l, o, _) = load(addr, request.clone(), 1, Duration::from_nanos(1))?;
        if o > 0 || l.is_empty() {
            return Err(host("an eval request failed"));
        }
        served.extend(l);
    }
    stop.store(true, Ordering::Relaxed);
    let _ = handle.join();
    let (s, b) = (Stats::of(&mut served), Stats::of(&mut inproc));
    let per_s = |d: Duration| 100.0 / d.as_secs_f64();
    rows.push(
        Row::new(
            "serve",
            "/v1/eval, 100 cases of a compiled C program: cases per second",
            Value::Rate(per_s(s.p50)),
        )
        .baseline(
            "eval::run_cases in-process, same cases",
            Value::Rate(per_s(b.p50)),
        )
        .at_least(Value::Rate(20_000.0), "≥ 20k/s")
        .note(format!(
            "{} requests, one at a time; request p50 {:?}, p99 {:?}; in-process p50 {:?}; {other} warm-up non-200",
            s.n, s.p50, s.p99, b.p50
        )),
    );
    Ok(rows)
}
