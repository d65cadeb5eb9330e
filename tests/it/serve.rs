//! `corral serve` as a process on a loopback port, under faults: a client that disconnects
//! mid-run (the run is cancelled, its slot and its worker process freed), a worker process
//! killed during load (its run is one `host_error`, the rest succeed), a flood past the queue (429 with
//! `Retry-After`, memory does not grow, the service recovers), SIGTERM during load (runs in
//! flight finish, new ones are refused, exit 0), oversized and malformed bodies (4xx, never a
//! panic), auth (401 without the token; a non-loopback address needs one), records retrieved
//! and replayed by id, and `/v1/eval`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use libtest_mimic::{Failed, Trial};

use crate::cli::corral;

pub fn trials() -> Vec<Trial> {
    vec![
        Trial::test("serve::run_eval_records_replay", run_eval_records_replay),
        Trial::test("serve::client_disconnect_cancels_the_run", disconnect),
        Trial::test("serve::a_killed_worker_is_one_host_error", worker_killed),
        Trial::test("serve::flood_past_the_queue", flood),
        Trial::test("serve::sigterm_drains_in_flight_runs", sigterm),
        Trial::test("serve::hostile_bodies_are_4xx", hostile_bodies),
        Trial::test("serve::token_auth", auth),
        Trial::test("serve::openapi_names_every_endpoint", openapi),
    ]
}

/// An infinite loop: it ends by its wall-clock limit (or fuel).
const SPIN: &str = "(module (func (export \"_start\") (loop (br 0))))";
const HELLO: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16)) (i32.store (i32.const 4) (i32.const 6))
    (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))"#;

/// A `corral serve` child process, killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(extra: &[&str]) -> Result<Server, Failed> {
        let dir = tempfile::tempdir()?;
        let store = dir.path().join("store");
        let mut child = corral()
            .args(["serve", "--listen", "127.0.0.1:0", "--log-format", "text"])
            .arg("--record-dir")
            .arg(&store)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let mut err = child.stderr.take().ok_or("no stderr")?;
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let log = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let mut sent = false;
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
                l.push_str(&String::from_utf8_lossy(&buf[..n]));
                if !sent
                    && let Some(i) = l.find("listening on http://")
                    && let Some(line) = l[i + "listening on http://".len()..].split_once('\n')
                {
                    let _ = tx.send(line.0.trim().to_string());
                    sent = true;
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| "the server did not start")?;
        Ok(Server {
            child,
            addr: addr.parse()?,
            stderr,
            _dir: dir,
        })
    }

    fn log(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

/// A response: status, headers (lowercase names), body.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Result<serde_json::Value, Failed> {
        serde_json::from_str(&self.body)
            .map_err(|e| format!("not JSON ({e}): {}", self.body).into())
    }
}

/// One HTTP/1.1 request with `Connection: close`, raw bytes for the body.
fn request_raw(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Response, Failed> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    parse(&out)
}

fn parse(out: &[u8]) -> Result<Response, Failed> {
    let text = String::from_utf8_lossy(out);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP response: {text:?}"))?;
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or("no status line")?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect::<Vec<_>>();
    let body = if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn post(addr: SocketAddr, path: &str, body: &serde_json::Value) -> Result<Response, Failed> {
    request_raw(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
}

fn get(addr: SocketAddr, path: &str) -> Result<Response, Failed> {
    request_raw(addr, "GET", path, &[], b"")
}

/// The value of a metric line `name value` in `/metrics`.
fn metric(addr: SocketAddr, name: &str) -> Result<f64, Failed> {
    let m = get(addr, "/metrics")?;
    m.body
        .lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .ok_or_else(|| format!("no metric {name}").into())
}

fn rss_kib(pid: i32) -> Result<u64, Failed> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| "no VmRSS".into())
}

/// The worker processes of the server `pid` (its children).
fn worker_pids(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            if let Ok(c) = std::fs::read_to_string(t.path().join("children")) {
                out.extend(c.split_whitespace().filter_map(|p| p.parse::<i32>().ok()));
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Waits until the server `pid` has `n` worker processes.
fn wait_for_workers(pid: i32, n: usize) -> Result<Vec<i32>, Failed> {
    let t = Instant::now();
    loop {
        let w = worker_pids(pid);
        if w.len() >= n {
            return Ok(w);
        }
        if t.elapsed() > Duration::from_secs(20) {
            return Err(format!("the server has {} worker processes, not {n}", w.len()).into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn no_panic(s: &Server) -> Result<(), Failed> {
    let log = s.log();
    if log.contains("panicked") {
        return Err(format!("the server panicked:\n{log}").into());
    }
    Ok(())
}

fn run_eval_records_replay() -> Result<(), Failed> {
    let s = Server::start(&[])?;
    let r = post(
        s.addr,
        "/v1/run",
        &serde_json::json!({"code": HELLO, "language": "wat"}),
    )?;
    assert_eq!(r.status, 200, "{}", r.body);
    let rep = r.json()?;
    assert_eq!(rep["verdict"], "ok");
    assert_eq!(rep["stdout"], "hello\n");
    let id = rep["record"].as_str().ok_or("no record id")?.to_string();
    assert!(id.starts_with("blake3:"), "{id}");
    assert!(
        !r.body.contains(&*s._dir.path().to_string_lossy()),
        "a host path leaked"
    );
    let rec = get(s.addr, &format!("/v1/records/{id}"))?;
    assert_eq!(rec.status, 200);
    assert_eq!(
        blake3::hash(rec.body.as_bytes()).to_hex().as_str(),
        &id[7..]
    );
    let replayed = post(s.addr, "/v1/replay", &serde_json::json!({"record": id}))?;
    assert_eq!(replayed.status, 200, "{}", replayed.body);
    assert_eq!(replayed.json()?["identical"], true);
    let missing = format!("blake3:{}", "0".repeat(64));
    assert_eq!(get(s.addr, &format!("/v1/records/{missing}"))?.status, 404);
    assert_eq!(
        get(s.addr, "/v1/records/..%2f..%2fetc%2fpasswd")?.status,
        404
    );

    // A limit above the server policy is refused; a lower one applies.
    let over = post(
        s.addr,
        "/v1/run",
        &serde_json::json!({"code": SPIN, "language": "wat", "limits": {"fuel": 1u64 << 40}}),
    )?;
    assert_eq!(over.status, 422, "{}", over.body);
    let low = post(
        s.addr,
        "/v1/run",
        &serde_json::json!({"code": SPIN, "language": "wat", "limits": {"fuel": 1000}}),
    )?;
    assert_eq!(low.json()?["limit"], "fuel");

    // One program, many cases: per-case verdicts and a summary.
    let cases: Vec<_> = (0..100)
        .map(|i| serde_json::json!({"expect_stdout": if i % 10 == 0 { "nope\n" } else { "hello\n" }}))
        .collect();
    let e = post(
        s.addr,
        "/v1/eval",
        &serde_json::json!({"code": HELLO, "language": "wat", "cases": cases}),
    )?;
    assert_eq!(e.status, 200, "{}", e.body);
    let v = e.json()?;
    assert_eq!(v["summary"]["passed"], 90);
    assert_eq!(v["summary"]["failed"], 10);
    assert_eq!(v["cases"][0]["status"], "fail");
    assert!(
        v["cases"][0]["record"]
            .as_str()
            .is_some_and(|r| r.starts_with("blake3:"))
    );
    assert_eq!(v["cases"][1]["status"], "pass");
    no_panic(&s)
}

fn disconnect() -> Result<(), Failed> {
    let s = Server::start(&["--concurrency", "1", "--workers", "1"])?;
    // The worker process exists once a run has been served.
    let r = post(
        s.addr,
        "/v1/run",
        &serde_json::json!({"code": HELLO, "language": "wat", "record": false}),
    )?;
    assert_eq!(r.json()?["verdict"], "ok");
    let before = wait_for_workers(s.pid(), 1)?;
    // A run that would take the whole 5 s wall-clock limit of the strict policy.
    let body =
        serde_json::json!({"code": SPIN, "language": "wat", "limits": {"fuel": 2_000_000_000u64}})
            .to_string();
    let mut c = TcpStream::connect(s.addr)?;
    write!(
        c,
        "POST /v1/run HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let t0 = Instant::now();
    while metric(s.addr, "corral_running")? < 1.0 {
        if t0.elapsed() > Duration::from_secs(20) {
            return Err("the run never started".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Let it reach the worker.
    std::thread::sleep(Duration::from_millis(200));
    drop(c);
    let gone = Instant::now();
    while metric(s.addr, "corral_running")? > 0.0 {
        if gone.elapsed() > Duration::from_secs(3) {
            return Err("the run kept its slot after the client went away".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let freed = gone.elapsed();
    // The only worker was running the spin: it is killed and replaced, long before the
    // spin's 5 s, and the next run is served on the replacement at once.
    loop {
        let now = worker_pids(s.pid());
        if !now.is_empty() && now.iter().all(|p| !before.contains(p)) {
            break;
        }
        if gone.elapsed() > Duration::from_secs(3) {
            return Err(format!(
                "the worker of the cancelled run still runs ({before:?} -> {now:?})"
            )
            .into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let t1 = Instant::now();
    let r = post(
        s.addr,
        "/v1/run",
        &serde_json::json!({"code": HELLO, "language": "wat"}),
    )?;
    assert_eq!(r.json()?["verdict"], "ok");
    let next = t1.elapsed();
    if gone.elapsed() > Duration::from_secs(4) {
        return Err(format!("the next run waited for the cancelled one ({next:?})").into());
    }
    // The cancelled run never finished (no verdict was counted for it).
    assert_eq!(metric(s.addr, "corral_runs_total{verdict=\"limit\"}")?, 0.0);
    eprintln!("slot freed {freed:?} after the client disconnected; next run in {next:?}");
    no_panic(&s)
}

/// A worker process killed during load: the run it was executing answers `host_error`
/// (HTTP 500, naming the signal), every other request succeeds, and the service goes on with
/// a replacement worker.
fn worker_killed() -> Result<(), Failed> {
    let s = Server::start(&["--concurrency", "4", "--workers", "2", "--no-record"])?;
    // Each run spins until its 300 ms wall-clock limit (or the strict policy's fuel): the
    // workers are always busy.
    let body =
        serde_json::json!({"code": SPIN, "language": "wat", "limits": {"wall_time_ms": 300}});
    let first = post(s.addr, "/v1/run", &body)?;
    assert_eq!(first.json()?["verdict"], "limit", "{}", first.body);
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (addr, body) = (s.addr, body.clone());
            std::thread::spawn(move || -> Result<Vec<Response>, Failed> {
                (0..8).map(|_| post(addr, "/v1/run", &body)).collect()
            })
        })
        .collect();
    let workers = wait_for_workers(s.pid(), 2)?;
    let mut kills = 0;
    for victim in workers.iter().take(2) {
        std::thread::sleep(Duration::from_millis(700));
        #[expect(
            unsafe_code,
            reason = "killing a worker process is the fault under test"
        )]
        // SAFETY: kill takes integers; the pid is a child of the server we started.
        let r = unsafe { libc::kill(*victim, libc::SIGKILL) };
        if r == 0 {
            kills += 1;
        }
    }
    let mut limits = 0;
    let mut errors = Vec::new();
    for c in clients {
        for r in c.join().map_err(|_| "client thread panicked")?? {
            let j = r.json()?;
            match (r.status, j["verdict"].as_str()) {
                (200, Some("limit")) => limits += 1,
                (500, Some("host_error")) => errors.push(j["message"].to_string()),
                _ => return Err(format!("unexpected answer: {} {}", r.status, r.body).into()),
            }
        }
    }
    // Each kill ends at most the one run its worker was executing; its queued runs are sent
    // to another worker. The workers are busy all along, so at least one kill hits a run.
    if errors.is_empty() || errors.len() > kills {
        return Err(format!(
            "{kills} kills gave {} host errors: {errors:?}",
            errors.len()
        )
        .into());
    }
    if !errors.iter().all(|m| m.contains("signal 9")) {
        return Err(format!("host errors that do not name the signal: {errors:?}").into());
    }
    assert_eq!(limits + errors.len(), 32);
    eprintln!(
        "{kills} workers killed: {} host errors, {limits} runs ended normally",
        errors.len()
    );
    // The service goes on.
    let r = post(
        s.addr,
        "/v1/run",
        &serde_json::json!({"code": HELLO, "language": "wat"}),
    )?;
    assert_eq!(r.json()?["verdict"], "ok");
    no_panic(&s)
}

fn flood() -> Result<(), Failed> {
    let s = Server::start(&["--concurrency", "1", "--queue", "4"])?;
    let body = serde_json::json!({"code": SPIN, "language": "wat", "limits": {"wall_time_ms": 200},
                                  "record": false});
    // Warm up, then measure memory.
    post(s.addr, "/v1/run", &body)?;
    let before = rss_kib(s.pid())?;
    let mut statuses = Vec::new();
    for _round in 0..3 {
        let handles: Vec<_> = (0..40)
            .map(|_| {
                let (addr, body) = (s.addr, body.clone());
                std::thread::spawn(move || post(addr, "/v1/run", &body))
            })
            .collect();
        for h in handles {
            let r = h.join().map_err(|_| "client thread panicked")??;
            if r.status == 429 {
                assert_eq!(r.header("retry-after"), Some("1"), "{r:?}");
                assert!(r.json()?["error"].as_str().is_some());
            }
            statuses.push(r.status);
        }
    }
    let after = rss_kib(s.pid())?;
    let ok = statuses.iter().filter(|s| **s == 200).count();
    let busy = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(ok + busy, statuses.len(), "only 200 and 429: {statuses:?}");
    assert!(busy >= 60, "the queue of 4 turned away only {busy} of 120");
    assert!(ok >= 5, "only {ok} ran");
    // Memory: the queue does not grow with the flood.
    assert!(
        after < before + 64 * 1024,
        "resident memory grew from {before} KiB to {after} KiB"
    );
    // Recovery: the queue is empty again and runs are served.
    assert_eq!(metric(s.addr, "corral_queue_depth")?, 0.0);
    let r = post(
        s.addr,
        "/v1/run",
        &serde_json::json!({"code": HELLO, "language": "wat"}),
    )?;
    assert_eq!(r.status, 200);
    eprintln!("{ok} ran, {busy} answered 429; RSS {before} → {after} KiB");
    no_panic(&s)
}

fn sigterm() -> Result<(), Failed> {
    let mut s = Server::start(&["--concurrency", "4"])?;
    let body =
        serde_json::json!({"code": SPIN, "language": "wat", "limits": {"wall_time_ms": 1500}});
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (addr, body) = (s.addr, body.clone());
            std::thread::spawn(move || post(addr, "/v1/run", &body))
        })
        .collect();
    let t0 = Instant::now();
    while metric(s.addr, "corral_running")? < 4.0 {
        if t0.elapsed() > Duration::from_secs(20) {
            return Err("the runs never started".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: signalling our own child process.
    #[expect(unsafe_code, reason = "kill(2) on our own child")]
    unsafe {
        libc::kill(s.pid(), libc::SIGTERM);
    }
    std::thread::sleep(Duration::from_millis(200));
    // New work is refused: the listener is closed (or, racing it, a 503).
    match post(
        s.addr,
        "/v1/run",
        &serde_json::json!({"code": HELLO, "language": "wat"}),
    ) {
        Err(_) => {}
        Ok(r) => assert_eq!(r.status, 503, "a run was admitted while draining: {r:?}"),
    }
    for h in handles {
        let r = h.join().map_err(|_| "client thread panicked")??;
        assert_eq!(r.status, 200, "{}", r.body);
        // The in-flight run finished with its own verdict: the spin's wall time, or its
        // fuel when it had a core to itself (in a worker process on an idle machine).
        let j = r.json()?;
        assert_eq!(j["verdict"], "limit", "the in-flight run finished: {j}");
        assert!(
            j["limit"] == "wall_time" || j["limit"] == "fuel",
            "the in-flight run finished: {j}"
        );
    }
    let status = s.child.wait()?;
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM");
    no_panic(&s)
}

type Header<'a> = (&'a str, &'a str);

fn hostile_bodies() -> Result<(), Failed> {
    let s = Server::start(&["--max-body-bytes", "65536"])?;
    let json = [("Content-Type", "application/json")];
    let cases: Vec<(&str, Vec<u8>, &[Header], u16)> = vec![
        ("/v1/run", vec![b'{'; 100_000], &json, 413),
        ("/v1/run", b"{\"code\": ".to_vec(), &json, 400),
        ("/v1/run", b"[1,2,3]".to_vec(), &json, 422),
        (
            "/v1/run",
            b"{\"code\": 5, \"language\": \"wat\"}".to_vec(),
            &json,
            422,
        ),
        (
            "/v1/run",
            b"{\"code\":\"x\",\"language\":\"wat\",\"bogus\":1}".to_vec(),
            &json,
            422,
        ),
        (
            "/v1/run",
            b"{\"code\":\"x\",\"language\":\"cobol\"}".to_vec(),
            &json,
            422,
        ),
        (
            "/v1/run",
            b"{\"code\":\"x\",\"language\":\"wat\"}".to_vec(),
            &[("Content-Type", "text/plain")],
            415,
        ),
        (
            "/v1/run",
            [b"[".repeat(5000), b"]".repeat(5000)].concat(),
            &json,
            422,
        ),
        (
            "/submissions/batch",
            [
                &b"{\"submissions\":"[..],
                &b"[".repeat(5000),
                &b"]".repeat(5000),
                b"}",
            ]
            .concat(),
            &json,
            400,
        ),
        ("/v1/run", b"\xff\xfe\x00garbage".to_vec(), &json, 400),
        ("/v1/run", b"{\"wasm_base64\":\"!!!\"}".to_vec(), &json, 422),
        (
            "/v1/eval",
            b"{\"code\":\"x\",\"language\":\"wat\",\"cases\":{}}".to_vec(),
            &json,
            422,
        ),
        ("/run_code", vec![b' '; 70_000], &json, 413),
        ("/run_code", b"nope".to_vec(), &json, 400),
        ("/api/v2/execute", b"{}".to_vec(), &json, 400),
        (
            "/submissions?base64_encoded=true",
            b"{\"source_code\":\"%%%\",\"language_id\":71}".to_vec(),
            &json,
            422,
        ),
        (
            "/submissions/batch",
            b"{\"submissions\":[]}".to_vec(),
            &json,
            400,
        ),
        (
            "/v1/replay",
            b"{\"record\":\"../../etc/passwd\"}".to_vec(),
            &json,
            404,
        ),
    ];
    for (path, body, headers, want) in cases {
        let r = request_raw(s.addr, "POST", path, headers, &body)?;
        assert_eq!(
            r.status,
            want,
            "{path} {:?}: {}",
            String::from_utf8_lossy(&body[..body.len().min(60)]),
            r.body
        );
        assert!(
            r.header("content-type").is_some_and(|c| c.contains("json")),
            "{path}: an error without a JSON body: {r:?}"
        );
    }
    // A request line and headers that are garbage: the connection is answered or closed,
    // and the server lives on.
    let mut c = TcpStream::connect(s.addr)?;
    c.write_all(b"\x00\x01\x02 GARBAGE\r\n\r\n")?;
    let mut sink = Vec::new();
    let _ = c.read_to_end(&mut sink);
    let big = "x".repeat(200_000);
    let _ = request_raw(s.addr, "GET", "/healthz", &[("X-Big", &big)], b"");
    assert_eq!(get(s.addr, "/healthz")?.status, 200);
    // Unknown routes are JSON 404s.
    assert_eq!(get(s.addr, "/etc/passwd")?.status, 404);
    no_panic(&s)
}

fn auth() -> Result<(), Failed> {
    let dir = tempfile::tempdir()?;
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret-token\n")?;
    let s = Server::start(&["--token-file", &token.to_string_lossy()])?;
    let body = serde_json::json!({"code": HELLO, "language": "wat"}).to_string();
    let ct = ("Content-Type", "application/json");
    let no = request_raw(s.addr, "POST", "/v1/run", &[ct], body.as_bytes())?;
    assert_eq!(no.status, 401);
    assert_eq!(no.header("www-authenticate"), Some("Bearer"));
    let wrong = request_raw(
        s.addr,
        "POST",
        "/v1/run",
        &[ct, ("Authorization", "Bearer nope")],
        body.as_bytes(),
    )?;
    assert_eq!(wrong.status, 401);
    let yes = request_raw(
        s.addr,
        "POST",
        "/v1/run",
        &[ct, ("Authorization", "Bearer s3cret-token")],
        body.as_bytes(),
    )?;
    assert_eq!(yes.status, 200, "{}", yes.body);
    let judge0 = request_raw(
        s.addr,
        "GET",
        "/statuses",
        &[("X-Auth-Token", "s3cret-token")],
        b"",
    )?;
    assert_eq!(judge0.status, 200);
    assert_eq!(get(s.addr, "/metrics")?.status, 401);
    assert_eq!(get(s.addr, "/healthz")?.status, 200);
    assert_eq!(get(s.addr, "/readyz")?.status, 200);
    // A non-loopback address without a token is refused before anything listens.
    let out = corral().args(["serve", "--listen", "0.0.0.0:0"]).output()?;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("token"));
    no_panic(&s)
}

fn openapi() -> Result<(), Failed> {
    let doc: serde_json::Value =
        serde_json::from_str(corral_serve::http::OPENAPI).map_err(|e| e.to_string())?;
    let paths = doc["paths"].as_object().ok_or("no paths")?;
    let src = std::fs::read_to_string(crate::support::repo().join("serve/src/http.rs"))?;
    let mut routed = Vec::new();
    for line in src.lines() {
        if let Some(rest) = line.trim().strip_prefix(".route(\"") {
            routed.push(rest.split('"').next().unwrap_or("").to_string());
        } else if let Some(rest) = line.trim().strip_prefix('"')
            && rest.starts_with('/')
        {
            routed.push(rest.split('"').next().unwrap_or("").to_string());
        }
    }
    routed.retain(|p| p != "/mcp");
    routed.sort();
    routed.dedup();
    let mut documented: Vec<String> = paths.keys().cloned().collect();
    documented.sort();
    assert_eq!(routed, documented, "routes and /openapi.json disagree");
    // And the running server serves the same document.
    let s = Server::start(&[])?;
    let served = get(s.addr, "/openapi.json")?.json()?;
    assert_eq!(served, doc);
    Ok(())
}
