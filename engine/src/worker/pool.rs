//! The supervisor: a pool of warm workers, their deadlines, their deaths and replacements.
//!
//! Each worker has a writer thread (requests, in order), a reader thread (results), and the
//! pool one watchdog thread. A worker runs its requests one at a time, in order, so the run
//! it is executing is always its oldest pending one; that run's clock starts when the run
//! before it returned. The watchdog kills a worker whose current run is past its wall time
//! plus the grace; when a worker dies (killed, crashed, OOM-killed), its current run ends —
//! `limit = wall_time` if the watchdog killed it, `host_error` naming what happened
//! otherwise — and its other pending runs, which had not started, are sent again to another
//! worker. A replacement is started at once. A run whose caller stops waiting (its future is
//! dropped: a client disconnected) is cancelled the same way: its worker is killed and
//! replaced, its other runs sent again. Runs with directory grants get a one-off
//! worker whose Landlock rules include their directories.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufReader, BufWriter, Read};
#[cfg(feature = "test-hooks")]
use std::path::Path;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use super::protocol::{self, Finished, FromWorker, ModuleRef, PolicyRef, RunRequest, ToWorker};
use super::{Walls, WorkerConfig};
use crate::error::Error;
use crate::inputs::Access;
use crate::report::ModuleHash;

/// Distinct modules (or policies) one worker is sent before it is retired and replaced, so
/// that its caches stay bounded.
const RETIRE_AFTER: usize = 512;
/// How long a new worker may take to say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the watchdog looks at deadlines.
const WATCH_EVERY: Duration = Duration::from_millis(20);
/// The most stderr of a worker kept to explain its death.
const LAST_WORDS: usize = 2048;

/// Why a worker's run did not come back.
#[derive(Debug, Clone)]
pub(crate) enum Lost {
    /// The watchdog killed the worker: the run passed its wall time plus the grace.
    Deadline,
    /// The worker died on its own (the message says how).
    Died(String),
    /// The worker died before it started the run: send it again.
    NotStarted,
}

/// What a run through the pool returns.
pub(crate) type Reply = Result<Box<Finished>, RunFailure>;

/// A run that ended without a result from a worker.
#[derive(Debug, Clone)]
pub(crate) enum RunFailure {
    Lost(Lost),
    /// The worker reported a host error (or, `true`, invalid input).
    Error(bool, String),
}

struct Pending {
    tx: tokio::sync::oneshot::Sender<Reply>,
    wall: Duration,
}

struct Worker {
    /// Its process id (for the test hook that kills workers at random).
    #[cfg_attr(
        not(feature = "test-hooks"),
        expect(dead_code, reason = "read by test hooks only")
    )]
    pid: u32,
    child: Arc<Mutex<Child>>,
    walls: Walls,
    root: PathBuf,
    tx: Mutex<Option<mpsc::Sender<Vec<u8>>>>,
    pending: Mutex<BTreeMap<u64, Pending>>,
    /// When the oldest pending run started (the previous one returned).
    head_since: Mutex<Instant>,
    modules: Mutex<HashSet<ModuleHash>>,
    policies: Mutex<HashSet<[u8; 32]>>,
    alive: AtomicBool,
    /// The watchdog killed it.
    killed: AtomicBool,
    /// Accepts no new runs (retired, or one-off).
    closed: AtomicBool,
    /// A warm worker of the pool (not a one-off worker for a run with directory grants).
    warm: bool,
    last_words: Arc<Mutex<Vec<u8>>>,
    /// Where a probe's answer goes (test hooks).
    probe_reply: Mutex<Option<mpsc::Sender<Result<(), String>>>>,
}

struct Shared {
    config: WorkerConfig,
    cache_dir: Option<PathBuf>,
    /// Where each worker gets its root directory.
    root: PathBuf,
    workers: Mutex<Vec<Arc<Worker>>>,
    next_id: AtomicU64,
    next_worker: AtomicUsize,
    /// Signalled when a worker has room again.
    room: Arc<tokio::sync::Notify>,
    stopped: AtomicBool,
}

/// The pool. Dropping it stops its workers.
pub(crate) struct Pool {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool").finish_non_exhaustive()
    }
}

impl Drop for Pool {
    /// Stops every worker and reaps it before returning, so that nothing of the pool runs
    /// or writes afterwards (runs still pending are abandoned with their engine).
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        let workers = std::mem::take(&mut *lock(&self.shared.workers));
        for w in &workers {
            close(w);
            kill(w);
        }
        for w in &workers {
            let _ = lock(&w.child).wait();
            let _ = std::fs::remove_dir_all(&w.root);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Stops sending to `w` and lets it exit when its input closes.
fn close(w: &Worker) {
    w.closed.store(true, Ordering::SeqCst);
    lock(&w.tx).take();
}

/// Kills `w` at once (SIGKILL). Through its `Child`, which knows whether it was reaped, so a
/// reused pid is never signalled.
fn kill(w: &Worker) {
    let _ = lock(&w.child).kill();
}

impl Pool {
    /// Starts `config.workers` workers under `root` and waits until each is locked down.
    ///
    /// # Errors
    ///
    /// A worker cannot be started or does not become ready.
    pub(crate) fn new(
        config: WorkerConfig,
        cache_dir: Option<PathBuf>,
        root: PathBuf,
    ) -> Result<Pool, Error> {
        std::fs::create_dir_all(&root)
            .map_err(|e| Error::host(format!("cannot create the workers' directory: {e}")))?;
        let n = config.workers.max(1);
        let shared = Arc::new(Shared {
            config,
            cache_dir,
            root,
            workers: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
            next_worker: AtomicUsize::new(0),
            room: Arc::new(tokio::sync::Notify::new()),
            stopped: AtomicBool::new(false),
        });
        let started: Vec<_> = (0..n)
            .map(|_| spawn(&shared, &[], &[], true))
            .collect::<Result<_, _>>()?;
        lock(&shared.workers).extend(started);
        let weak = Arc::downgrade(&shared);
        std::thread::Builder::new()
            .name("corral-watchdog".into())
            .spawn(move || watchdog(weak))
            .map_err(|e| Error::host(format!("cannot start the watchdog: {e}")))?;
        Ok(Pool { shared })
    }

    /// The walls the pool's workers have (the first one's; they are all started alike).
    pub(crate) fn walls(&self) -> Walls {
        lock(&self.shared.workers)
            .first()
            .map(|w| w.walls)
            .unwrap_or_default()
    }

    /// Runs one request on a worker (a one-off worker when it has directory grants);
    /// sends it again if the worker died before starting it.
    pub(crate) async fn run(
        &self,
        req: RunRequest,
        module_bytes: Option<Arc<[u8]>>,
        policy_text: (String, String),
        wall: Duration,
    ) -> Result<(Reply, Walls), Error> {
        loop {
            let dedicated = !req.invocation.dirs.is_empty();
            let worker = if dedicated {
                let mut ro = Vec::new();
                let mut rw = Vec::new();
                for d in &req.invocation.dirs {
                    let host = d.host.canonicalize().map_err(|e| {
                        Error::invalid_input(format!("cannot open `{}`: {e}", d.host.display()))
                    })?;
                    match d.access {
                        Access::ReadOnly => ro.push(host),
                        Access::ReadWrite => rw.push(host),
                    }
                }
                let shared = self.shared.clone();
                let w = tokio::task::spawn_blocking(move || spawn(&shared, &ro, &rw, false))
                    .await
                    .map_err(|e| Error::host(format!("cannot start a worker: {e}")))??;
                // Watched by the watchdog like the others, never given another run.
                lock(&self.shared.workers).push(w.clone());
                w
            } else {
                self.pick().await?
            };
            let rx = match send(
                &self.shared,
                &worker,
                &req,
                module_bytes.as_deref(),
                &policy_text,
                wall,
            ) {
                Ok(rx) => rx,
                // The worker died or was retired between picking and sending: pick again.
                Err(_) if !dedicated && lock(&worker.tx).is_none() => continue,
                Err(e) => return Err(e),
            };
            if dedicated {
                close(&worker);
            }
            let reply = rx.await.unwrap_or(Err(RunFailure::Lost(Lost::NotStarted)));
            if matches!(reply, Err(RunFailure::Lost(Lost::NotStarted))) {
                if self.shared.stopped.load(Ordering::SeqCst) {
                    return Err(Error::host("the worker pool was stopped"));
                }
                continue;
            }
            return Ok((reply, worker.walls));
        }
    }

    /// A warm worker with room (the one with the fewest pending runs); waits for room.
    async fn pick(&self) -> Result<Arc<Worker>, Error> {
        loop {
            let notified = self.shared.room.notified();
            {
                let workers = lock(&self.shared.workers);
                let best = workers
                    .iter()
                    .filter(|w| {
                        w.warm && w.alive.load(Ordering::SeqCst) && !w.closed.load(Ordering::SeqCst)
                    })
                    .map(|w| (lock(&w.pending).len(), w))
                    .filter(|(n, _)| *n < self.shared.config.depth.max(1))
                    .min_by_key(|(n, _)| *n);
                if let Some((_, w)) = best {
                    return Ok(w.clone());
                }
                if workers.is_empty() && self.shared.stopped.load(Ordering::SeqCst) {
                    return Err(Error::host("the worker pool was stopped"));
                }
            }
            notified.await;
        }
    }

    /// Test hook: a function that asks a fresh worker to try what its walls must refuse.
    #[cfg(feature = "test-hooks")]
    pub(crate) fn prober(
        &self,
    ) -> impl FnOnce(protocol::Probe, &Path) -> Result<Result<(), String>, Error> + Send + 'static
    {
        let shared = self.shared.clone();
        move |probe, outside| {
            let w = spawn(&shared, &[], &[], false)?;
            let (tx, rx) = std::sync::mpsc::channel();
            *lock(&w.probe_reply) = Some(tx);
            let frame = postcard::to_stdvec(&ToWorker::Probe(0, probe, outside.to_path_buf()))
                .map_err(|e| Error::host(e.to_string()))?;
            push(&w, frame)?;
            let answer = rx.recv_timeout(Duration::from_secs(20));
            close(&w);
            kill(&w);
            Ok(answer.unwrap_or_else(|_| Err("the worker died or did not answer".into())))
        }
    }

    /// Test hook: the process ids of the warm workers.
    #[cfg(feature = "test-hooks")]
    pub(crate) fn pids(&self) -> Vec<u32> {
        lock(&self.shared.workers)
            .iter()
            .filter(|w| w.warm && w.alive.load(Ordering::SeqCst))
            .map(|w| w.pid)
            .collect()
    }
}

/// Queues one frame (length-prefixed) for `w`'s writer thread.
fn push(w: &Worker, body: Vec<u8>) -> Result<(), Error> {
    let mut tx = lock(&w.tx);
    let Some(sender) = tx.as_ref() else {
        return Err(Error::host("the worker is closed"));
    };
    if sender.send(body).is_err() {
        // Its writer thread has ended (the worker died and its pipe broke) before the
        // reader saw the death: close it now, so that a run being sent to it is sent to
        // another worker (`Pool::run` retries when `tx` is gone) instead of failing.
        w.closed.store(true, Ordering::SeqCst);
        *tx = None;
        return Err(Error::host("the worker is gone"));
    }
    Ok(())
}

fn policy_id(name: &str, text: &str) -> [u8; 32] {
    *blake3::Hasher::new()
        .update(name.as_bytes())
        .update(&[0])
        .update(text.as_bytes())
        .finalize()
        .as_bytes()
}

/// Sends `req` to `w` and registers its reply.
fn send(
    shared: &Shared,
    w: &Arc<Worker>,
    req: &RunRequest,
    module_bytes: Option<&[u8]>,
    policy_text: &(String, String),
    wall: Duration,
) -> Result<tokio::sync::oneshot::Receiver<Reply>, Error> {
    let mut req = req.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    // Everything under the pending lock: ids, what the worker has seen, and the order of
    // frames must agree (a module or policy sent in full precedes every reference to it).
    let mut pending = lock(&w.pending);
    req.id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let hash = match &req.module {
        ModuleRef::Known(h) | ModuleRef::Bytes(h, _) | ModuleRef::File(h, _) => *h,
    };
    let mut modules = lock(&w.modules);
    let module_new = modules.insert(hash);
    if !module_new {
        req.module = ModuleRef::Known(hash);
    } else if let (ModuleRef::Known(_), Some(bytes)) = (&req.module, module_bytes) {
        req.module = ModuleRef::Bytes(hash, bytes.to_vec());
    }
    let pid = policy_id(&policy_text.0, &policy_text.1);
    let mut policies = lock(&w.policies);
    req.policy = if policies.insert(pid) {
        PolicyRef::Text(pid, policy_text.0.clone(), policy_text.1.clone())
    } else {
        PolicyRef::Known(pid)
    };
    if modules.len() >= RETIRE_AFTER || policies.len() >= RETIRE_AFTER {
        w.closed.store(true, Ordering::SeqCst);
    }
    let body = match postcard::to_stdvec(&ToWorker::Run(Box::new(req.clone()))) {
        Ok(b) => b,
        Err(e) => {
            modules.remove(&hash);
            policies.remove(&pid);
            return Err(Error::host(format!("cannot encode a run: {e}")));
        }
    };
    drop((modules, policies));
    if pending.is_empty() {
        *lock(&w.head_since) = Instant::now();
    }
    pending.insert(req.id, Pending { tx, wall });
    if let Err(e) = push(w, body) {
        pending.remove(&req.id);
        return Err(e);
    }
    drop(pending);
    if w.warm && w.closed.load(Ordering::SeqCst) {
        replace_if_retired(shared, w);
    }
    Ok(rx)
}

/// Starts a replacement for a worker that was retired (caches full).
fn replace_if_retired(shared: &Shared, w: &Arc<Worker>) {
    let mut workers = lock(&shared.workers);
    if let Some(i) = workers.iter().position(|x| Arc::ptr_eq(x, w)) {
        workers.remove(i);
        close(w);
        drop(workers);
        if let Ok(fresh) = spawn(shared, &[], &[], true) {
            lock(&shared.workers).push(fresh);
            shared.room.notify_waiters();
        }
    }
}

/// Starts `cmd` from the process's spawner thread, which never exits.
///
/// A worker's parent-death signal (`PR_SET_PDEATHSIG(SIGKILL)`, `lockdown.rs`) fires when
/// the *thread* that forked it exits, not the process. Workers used to be forked by whatever
/// thread asked (the pool is made in a tokio blocking thread, which tokio ends after 10 s
/// idle), so a run still going 10 s after its worker was started died as `host_error`
/// ("killed by signal 9"). Forking them all from one thread that lives as long as the process
/// keeps the signal's meaning: the worker dies with its supervisor.
fn spawn_child(mut cmd: Command) -> std::io::Result<Child> {
    type Request = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: std::sync::OnceLock<Option<mpsc::Sender<Request>>> = std::sync::OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("corral-spawner".into())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .ok()
            .map(|_| tx)
    });
    let Some(spawner) = spawner else {
        // No thread could be started for it: fork here (the signal then follows this thread).
        return cmd.spawn();
    };
    let (reply, answer) = mpsc::channel();
    let gone = || std::io::Error::other("the worker spawner thread is gone");
    spawner.send((cmd, reply)).map_err(|_| gone())?;
    answer.recv().map_err(|_| gone())?
}

/// Starts one worker (with extra read-only and read-write trees for a one-off worker) and
/// waits until it is locked down and ready.
fn spawn(
    shared: &Shared,
    ro: &[PathBuf],
    rw: &[PathBuf],
    warm: bool,
) -> Result<Arc<Worker>, Error> {
    let n = shared.next_worker.fetch_add(1, Ordering::Relaxed);
    let root = shared.root.join(format!("w{n}"));
    std::fs::create_dir_all(&root)
        .map_err(|e| Error::host(format!("cannot create a worker directory: {e}")))?;
    let join = |paths: &[PathBuf]| std::env::join_paths(paths).unwrap_or_default();
    let mut cmd = Command::new(&shared.config.program);
    cmd.arg(super::WORKER_ARG)
        .env_clear()
        .env(protocol::env::ROOT, &root)
        .env(
            protocol::env::POOL,
            shared.config.depth.clamp(1, 64).to_string(),
        )
        .env(protocol::env::READ_ONLY, join(ro))
        .env(protocol::env::READ_WRITE, join(rw))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(c) = &shared.cache_dir {
        cmd.env(protocol::env::CACHE, c);
    }
    if cfg!(all(feature = "test-hooks", debug_assertions))
        && let Some(v) = std::env::var_os(super::lockdown::NO_SECCOMP_FOR_TRACE)
    {
        cmd.env(super::lockdown::NO_SECCOMP_FOR_TRACE, v);
    }
    let mut child = spawn_child(cmd).map_err(|e| {
        Error::host(format!(
            "cannot start a worker ({}): {e}",
            shared.config.program.display()
        ))
    })?;
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.kill();
        return Err(Error::host("a worker has no pipes"));
    };
    let last_words = Arc::new(Mutex::new(Vec::new()));
    {
        let last_words = last_words.clone();
        let _ = std::thread::Builder::new()
            .name("corral-worker-err".into())
            .spawn(move || drain_stderr(stderr, &last_words));
    }
    let mut out = BufReader::with_capacity(1 << 16, stdout);
    let (ready_tx, ready_rx) = mpsc::channel();
    // The ready message may never come: read it on the reader thread, wait with a timeout.
    let reader = std::thread::Builder::new().name("corral-worker-rd".into());
    let (worker_tx, worker_rx) = mpsc::channel::<Arc<Worker>>();
    let child = Arc::new(Mutex::new(child));
    let child_for_reader = child.clone();
    let room = shared.room.clone();
    let spawned = reader.spawn(move || {
        let first = protocol::read::<FromWorker>(&mut out, 1 << 20);
        let walls = match first {
            Ok(Some(FromWorker::Ready(w))) => w,
            _ => {
                let _ = ready_tx.send(None);
                return;
            }
        };
        let _ = ready_tx.send(Some(walls));
        let Ok(w) = worker_rx.recv() else { return };
        read_results(&mut out, &w, &room);
        finish(&w, &child_for_reader);
        room.notify_waiters();
    });
    if spawned.is_err() {
        let _ = lock(&child).kill();
        return Err(Error::host("cannot start a worker's reader"));
    }
    let walls = match ready_rx.recv_timeout(READY_TIMEOUT) {
        Ok(Some(w)) => w,
        _ => {
            let mut c = lock(&child);
            let _ = c.kill();
            let status = c.wait().map(|s| s.to_string()).unwrap_or_default();
            let words = String::from_utf8_lossy(&lock(&last_words))
                .trim()
                .to_string();
            let _ = std::fs::remove_dir_all(&root);
            return Err(Error::host(format!(
                "a worker did not start ({status}): {}",
                crate::redact::scrub_host_paths(&words)
            )));
        }
    };
    let pid = lock(&child).id();
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    let w = Arc::new(Worker {
        pid,
        child: child.clone(),
        walls,
        root,
        tx: Mutex::new(Some(tx)),
        pending: Mutex::new(BTreeMap::new()),
        head_since: Mutex::new(Instant::now()),
        modules: Mutex::new(HashSet::new()),
        policies: Mutex::new(HashSet::new()),
        alive: AtomicBool::new(true),
        killed: AtomicBool::new(false),
        closed: AtomicBool::new(!warm),
        warm,
        last_words,
        probe_reply: Mutex::new(None),
    });
    let _ = worker_tx.send(w.clone());
    let writer = std::thread::Builder::new()
        .name("corral-worker-wr".into())
        .spawn(move || write_requests(stdin, &rx));
    if writer.is_err() {
        kill(&w);
        return Err(Error::host("cannot start a worker's writer"));
    }
    Ok(w)
}

/// The writer thread: frames in order, batched into as few writes as possible.
fn write_requests(stdin: std::process::ChildStdin, rx: &mpsc::Receiver<Vec<u8>>) {
    use std::io::Write;
    let mut out = BufWriter::with_capacity(1 << 16, stdin);
    while let Ok(body) = rx.recv() {
        let mut next = Some(body);
        while let Some(b) = next {
            let len = u32::try_from(b.len()).unwrap_or(u32::MAX).to_le_bytes();
            if out
                .write_all(&len)
                .and_then(|()| out.write_all(&b))
                .is_err()
            {
                return;
            }
            next = rx.try_recv().ok();
        }
        if out.flush().is_err() {
            return;
        }
    }
}

/// Keeps the end of a worker's stderr (to say how it died); never grows past a bound.
fn drain_stderr(mut err: std::process::ChildStderr, keep: &Mutex<Vec<u8>>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = err.read(&mut buf) {
        if n == 0 {
            break;
        }
        let mut k = lock(keep);
        k.extend_from_slice(&buf[..n]);
        let excess = k.len().saturating_sub(LAST_WORDS);
        k.drain(..excess);
    }
}

/// The reader thread: results to their runs, until the worker's output ends or misbehaves.
fn read_results(out: &mut impl Read, w: &Worker, room: &tokio::sync::Notify) {
    loop {
        let max = lock(&w.pending).len().max(1) as u64 * (3 << 30);
        let msg = match protocol::read::<FromWorker>(out, max) {
            Ok(Some(m)) => m,
            _ => return,
        };
        match msg {
            FromWorker::Done(id, result) => {
                let mut pending = lock(&w.pending);
                let Some(p) = pending.remove(&id) else {
                    return; // an answer to nothing: the worker is confused
                };
                *lock(&w.head_since) = Instant::now();
                drop(pending);
                let _ =
                    p.tx.send(result.map_err(|(invalid, m)| RunFailure::Error(invalid, m)));
                room.notify_waiters();
            }
            FromWorker::Probed(_, r) => {
                if let Some(tx) = lock(&w.probe_reply).take() {
                    let _ = tx.send(r);
                }
            }
            FromWorker::Ready(_) => return,
        }
    }
}

/// A worker's output ended: reap it, explain its death to its current run, send its other
/// runs back, remove its directory.
fn finish(w: &Worker, child: &Mutex<Child>) {
    w.alive.store(false, Ordering::SeqCst);
    close(w);
    let status = {
        let mut c = lock(child);
        let _ = c.kill();
        c.wait().ok()
    };
    let pending = std::mem::take(&mut *lock(&w.pending));
    let words = String::from_utf8_lossy(&lock(&w.last_words))
        .trim()
        .to_string();
    let how = match status {
        Some(s) => {
            use std::os::unix::process::ExitStatusExt;
            match (s.signal(), s.code()) {
                (Some(sig), _) => format!("was killed by signal {sig}"),
                (None, Some(code)) => format!("exited with status {code}"),
                _ => "ended".to_string(),
            }
        }
        None => "ended".to_string(),
    };
    let killed = w.killed.load(Ordering::SeqCst);
    for (i, (_, p)) in pending.into_iter().enumerate() {
        let lost = if i > 0 {
            Lost::NotStarted
        } else if killed {
            Lost::Deadline
        } else {
            let mut m = format!("the worker process running the guest {how}");
            if !words.is_empty() {
                let w = crate::redact::scrub_host_paths(&words);
                m.push_str(&format!(" ({})", w.lines().last().unwrap_or("")));
            }
            Lost::Died(m)
        };
        let _ = p.tx.send(Err(RunFailure::Lost(lost)));
    }
    let _ = std::fs::remove_dir_all(&w.root);
}

/// Kills workers whose current run is past its deadline; replaces dead workers.
fn watchdog(shared: std::sync::Weak<Shared>) {
    loop {
        std::thread::sleep(WATCH_EVERY);
        let Some(shared) = shared.upgrade() else {
            return;
        };
        if shared.stopped.load(Ordering::SeqCst) {
            return;
        }
        let grace = shared.config.grace;
        let workers: Vec<Arc<Worker>> = lock(&shared.workers).clone();
        let mut dead = 0;
        for w in &workers {
            if !w.alive.load(Ordering::SeqCst) {
                dead += 1;
                continue;
            }
            let (overdue, cancelled) = {
                let pending = lock(&w.pending);
                pending.values().next().map_or((false, false), |p| {
                    (
                        lock(&w.head_since).elapsed() > p.wall + grace,
                        p.tx.is_closed(),
                    )
                })
            };
            if overdue {
                w.killed.store(true, Ordering::SeqCst);
                kill(w);
            } else if cancelled {
                // Nobody waits for the run it is executing (the caller dropped it: a client
                // disconnected): stop it and free the worker; its queued runs are sent again.
                kill(w);
            }
        }
        if dead > 0 {
            let mut list = lock(&shared.workers);
            list.retain(|w| w.alive.load(Ordering::SeqCst));
            let warm = list.iter().filter(|w| w.warm).count();
            let missing = shared.config.workers.max(1).saturating_sub(warm);
            drop(list);
            for _ in 0..missing {
                if let Ok(fresh) = spawn(&shared, &[], &[], true) {
                    lock(&shared.workers).push(fresh);
                }
            }
            shared.room.notify_waiters();
        }
    }
}
