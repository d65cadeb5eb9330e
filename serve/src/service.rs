//! The service core every face shares: the engine, the server policy (the ceiling of every
//! request), the bounded queue, the prepared-program cache, the record store, and the one
//! function that runs a job for a request ([`Service::run`]) or a batch of cases
//! ([`Service::eval`]). Faces (the HTTP APIs, MCP) translate their request shapes into a
//! [`Job`] and the report back into their response shapes; none builds a sandbox.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use corral::compile::{Language, Source};
use corral::eval::{self, CaseResult, EvalOptions};
use corral::job::{self, Invocation, Program, Recording};
use corral::policy::{LimitRequest, Policy};
use corral::record::RecordStore;
use corral::replay::{self, ReplayError, ReplayOptions, ReplayReport};
use corral::{Engine, EngineConfig, Error, Isolation, RunReport, WorkerConfig};

use crate::metrics::Metrics;

/// Most prepared programs kept in memory (by source, language and limits).
pub const PROGRAM_CACHE: usize = 256;

/// How the service is configured (`corral serve` / `corral mcp` options).
#[derive(Debug, Clone)]
pub struct Config {
    /// The server policy: the default and the ceiling of every request's limits.
    pub policy: Policy,
    /// The bearer token every request but `/healthz` and `/readyz` must carry, if any.
    pub token: Option<String>,
    /// Runs executing at once (the rest wait in the queue). By default twice the cores.
    pub concurrency: usize,
    /// Requests allowed to wait for a run slot; past that a request is answered 429 at once.
    pub queue: usize,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Longest a request may take, queueing included; past it the run is cancelled and the
    /// request answered 504 (503 if it was still queued).
    pub deadline: Duration,
    /// Where runs are recorded (`None`: no records; `/v1/records` and `/v1/replay` answer
    /// 404).
    pub records: Option<RecordStore>,
    /// Most cases in one `/v1/eval` request or MCP `run_tests` call.
    pub max_cases: usize,
    /// Most Judge0 submissions kept for `GET /submissions/{token}` (oldest finished go first).
    pub max_submissions: usize,
}

impl Config {
    /// A configuration with the defaults documented on each field, for `policy`.
    pub fn new(policy: Policy) -> Config {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Config {
            policy,
            token: None,
            concurrency: cores * 2,
            queue: 256,
            max_body_bytes: 8 << 20,
            deadline: Duration::from_secs(60),
            records: None,
            max_cases: 10_000,
            max_submissions: 10_000,
        }
    }
}

/// The configuration of the service's engine: the one place it is decided. Guests run in
/// `workers` locked-down worker processes (the second wall: no new privileges, seccomp,
/// Landlock, no network, rlimits), started from this program (it must dispatch
/// [`corral::worker::WORKER_ARG`] to [`corral::job::serve_worker`], as the `corral` command
/// does), unless `in_process`. The engine's pool has slots for four runs per worker.
pub fn engine_config(workers: usize, in_process: bool) -> EngineConfig {
    let slots = u32::try_from(workers.max(1) * 4)
        .unwrap_or(u32::MAX)
        .max(16);
    let isolation = if in_process {
        Isolation::InProcess
    } else {
        Isolation::Workers(WorkerConfig {
            workers: workers.max(1),
            ..WorkerConfig::default()
        })
    };
    EngineConfig {
        pool: Some(slots),
        isolation,
        ..EngineConfig::from_env()
    }
}

/// The service's engine ([`engine_config`]).
///
/// # Errors
///
/// The engine cannot be created (a host error).
pub fn engine(workers: usize, in_process: bool) -> Result<Engine, Error> {
    Engine::new(engine_config(workers, in_process))
}

/// Why a request got no verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The queue is full (HTTP 429 with `Retry-After`).
    Busy,
    /// The service is shutting down (HTTP 503).
    Draining,
    /// The deadline passed while the request was queued (HTTP 503 with `Retry-After`).
    QueueTimeout,
    /// The deadline passed while the request ran; the run was cancelled (HTTP 504).
    Deadline,
    /// The request is invalid (HTTP 400/422 in each API's shape).
    Invalid(String),
    /// Something that is not there (HTTP 404).
    NotFound(String),
    /// The host failed (HTTP 500).
    Host(String),
}

impl Refusal {
    /// One sentence for the error body (never a host path).
    pub fn message(&self) -> String {
        match self {
            Refusal::Busy => "the queue is full (hint: retry after the Retry-After delay)".into(),
            Refusal::Draining => "the service is shutting down".into(),
            Refusal::QueueTimeout => "the request's deadline passed while it was queued".into(),
            Refusal::Deadline => "the request's deadline passed; its run was cancelled".into(),
            Refusal::Invalid(m) | Refusal::NotFound(m) | Refusal::Host(m) => {
                corral::scrub_host_paths(m)
            }
        }
    }
}

/// One run a face asks for: the program, the policy (already lowered under the ceiling),
/// the inputs, and whether to record it.
#[derive(Debug, Clone)]
pub struct Job {
    /// The program.
    pub source: Source,
    /// Its policy (never above the server policy: [`Service::policy_for`]).
    pub policy: Arc<Policy>,
    /// The run's inputs.
    pub invocation: Invocation,
    /// Write a run record (when the service has a store).
    pub record: bool,
}

/// Waiting and running requests, bounded.
#[derive(Debug)]
struct Admission {
    /// Requests admitted and not finished (queued + running).
    inflight: AtomicUsize,
    /// Requests running.
    running: AtomicUsize,
    limit: usize,
    slots: tokio::sync::Semaphore,
    draining: AtomicBool,
}

/// A place in the queue; leaving it (drop) frees the place.
#[derive(Debug)]
struct Ticket<'a>(&'a Admission);

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A run slot held by a request.
#[derive(Debug)]
struct Running<'a> {
    adm: &'a Admission,
    _permit: tokio::sync::SemaphorePermit<'a>,
    _ticket: Ticket<'a>,
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.adm.running.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Admission {
    fn enter(&self) -> Result<Ticket<'_>, Refusal> {
        if self.draining.load(Ordering::SeqCst) {
            return Err(Refusal::Draining);
        }
        let n = self.inflight.fetch_add(1, Ordering::SeqCst);
        let ticket = Ticket(self);
        if n >= self.limit {
            return Err(Refusal::Busy);
        }
        Ok(ticket)
    }

    async fn start<'a>(
        &'a self,
        ticket: Ticket<'a>,
        until: tokio::time::Instant,
    ) -> Result<Running<'a>, Refusal> {
        let permit = tokio::time::timeout_at(until, self.slots.acquire())
            .await
            .map_err(|_| Refusal::QueueTimeout)?
            .map_err(|_| Refusal::Draining)?;
        self.running.fetch_add(1, Ordering::SeqCst);
        Ok(Running {
            adm: self,
            _permit: permit,
            _ticket: ticket,
        })
    }
}

#[derive(Debug, Default)]
struct Programs {
    map: HashMap<[u8; 32], (Arc<Program>, u64)>,
    tick: u64,
}

/// The shared state of a running service. Create with [`Service::new`]; share as an `Arc`.
#[derive(Debug)]
pub struct Service {
    engine: Engine,
    config: Config,
    admission: Admission,
    programs: Mutex<Programs>,
    /// Counters, gauges and histograms for `/metrics`.
    pub metrics: Metrics,
    /// Judge0 submissions.
    pub(crate) submissions: crate::judge0::Submissions,
    started: Instant,
    runs: AtomicU64,
    /// Background runs (Judge0 submissions without `wait`), drained at shutdown.
    tasks: tokio_util::task::TaskTracker,
    /// Cancelled by [`Service::drain`] (ends MCP sessions on streamable HTTP).
    cancel: tokio_util::sync::CancellationToken,
}

impl Service {
    /// A service on `engine` with `config`.
    pub fn new(engine: Engine, config: Config) -> Arc<Service> {
        let concurrency = config.concurrency.max(1);
        Arc::new(Service {
            engine,
            admission: Admission {
                inflight: AtomicUsize::new(0),
                running: AtomicUsize::new(0),
                limit: concurrency + config.queue,
                slots: tokio::sync::Semaphore::new(concurrency),
                draining: AtomicBool::new(false),
            },
            programs: Mutex::new(Programs::default()),
            metrics: Metrics::default(),
            submissions: crate::judge0::Submissions::new(config.max_submissions),
            config,
            started: Instant::now(),
            runs: AtomicU64::new(0),
            tasks: tokio_util::task::TaskTracker::new(),
            cancel: tokio_util::sync::CancellationToken::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Stops admitting requests (they get 503); requests already admitted finish.
    pub fn drain(&self) {
        self.admission.draining.store(true, Ordering::SeqCst);
        self.cancel.cancel();
    }

    /// A token cancelled when the service drains.
    pub fn shutdown_token(&self) -> tokio_util::sync::CancellationToken {
        self.cancel.child_token()
    }

    /// Whether a request admitted now would find a place in the queue.
    pub fn has_room(&self) -> bool {
        self.admission.inflight.load(Ordering::SeqCst) < self.admission.limit
    }

    /// Runs `f` in the background; [`Service::finish_background`] waits for it.
    pub fn spawn(&self, f: impl std::future::Future<Output = ()> + Send + 'static) {
        self.tasks.spawn(f);
    }

    /// Waits for background runs to finish (at shutdown, after [`Service::drain`]).
    pub async fn finish_background(&self) {
        self.tasks.close();
        self.tasks.wait().await;
    }

    /// Whether the service admits requests.
    pub fn ready(&self) -> bool {
        !self.admission.draining.load(Ordering::SeqCst)
    }

    /// Requests waiting for a run slot.
    pub fn queued(&self) -> usize {
        let a = &self.admission;
        a.inflight
            .load(Ordering::SeqCst)
            .saturating_sub(a.running.load(Ordering::SeqCst))
    }

    /// Requests running.
    pub fn running(&self) -> usize {
        self.admission.running.load(Ordering::SeqCst)
    }

    /// Runs finished since start.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    /// Seconds since start.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// The server policy lowered by `limits`, and by a wall-time cap `wall_ms` (an API's
    /// timeout field) when given.
    ///
    /// # Errors
    ///
    /// A limit above the server policy's ([`Refusal::Invalid`], naming the key).
    pub fn policy_for(&self, limits: &LimitRequest) -> Result<Arc<Policy>, Refusal> {
        self.config
            .policy
            .lowered(limits)
            .map(Arc::new)
            .map_err(Refusal::Invalid)
    }

    /// The prepared program for `source` under `policy`, from the cache or prepared now (on
    /// a blocking thread: compilers are processes).
    async fn program(&self, source: &Source, policy: &Policy) -> Result<Arc<Program>, Refusal> {
        let key = {
            let mut h = blake3::Hasher::new_derive_key("corral serve program cache v1");
            h.update(source.language.name().as_bytes());
            h.update(&[0]);
            h.update(source.name.as_bytes());
            h.update(&[0]);
            h.update(format!("{:?}", policy.limits).as_bytes());
            h.update(&[0]);
            h.update(&source.bytes);
            *h.finalize().as_bytes()
        };
        if let Ok(mut p) = self.programs.lock() {
            p.tick += 1;
            let tick = p.tick;
            if let Some((prog, used)) = p.map.get_mut(&key) {
                *used = tick;
                return Ok(prog.clone());
            }
        }
        let (engine, source2, policy2) = (self.engine.clone(), source.clone(), policy.clone());
        let program =
            tokio::task::spawn_blocking(move || Program::prepare(&engine, &source2, &policy2))
                .await
                .map_err(|e| Refusal::Host(format!("preparing the program failed: {e}")))?
                .map_err(|e| host_or_invalid(&e))?;
        let program = Arc::new(program);
        if let Ok(mut p) = self.programs.lock() {
            if p.map.len() >= PROGRAM_CACHE
                && let Some(oldest) = p.map.iter().min_by_key(|(_, (_, t))| *t).map(|(k, _)| *k)
            {
                p.map.remove(&oldest);
            }
            let tick = p.tick;
            p.map.insert(key, (program.clone(), tick));
        }
        Ok(program)
    }

    /// Runs one job: a place in the queue, a run slot, the program (cached), one run through
    /// the job stage, the record. The whole request is bounded by the configured deadline;
    /// dropping the returned future (a client that went away) cancels the run and frees its
    /// slot.
    ///
    /// # Errors
    ///
    /// A [`Refusal`]: queue full, draining, deadline, invalid input the job stage refused
    /// before running, a host failure. Every guest outcome is a report.
    pub async fn run(&self, job: Job) -> Result<RunReport, Refusal> {
        let t0 = Instant::now();
        let until = tokio::time::Instant::now() + self.config.deadline;
        let ticket = self
            .admission
            .enter()
            .inspect_err(|r| self.metrics.refused(r))?;
        let running = self
            .admission
            .start(ticket, until)
            .await
            .inspect_err(|r| self.metrics.refused(r))?;
        self.metrics.queue_wait(t0.elapsed());
        let result = tokio::time::timeout_at(until, self.run_admitted(job)).await;
        drop(running);
        let report = match result {
            Ok(r) => r?,
            Err(_) => {
                self.metrics.refused(&Refusal::Deadline);
                return Err(Refusal::Deadline);
            }
        };
        self.finished(&report, t0.elapsed());
        Ok(report)
    }

    fn finished(&self, report: &RunReport, took: Duration) {
        self.runs.fetch_add(1, Ordering::Relaxed);
        self.metrics.run(report.verdict.kind(), took);
        tracing::info!(
            verdict = report.verdict.kind(),
            limit = report.verdict.limit().map(|l| l.as_str()),
            trap = report.verdict.trap().map(|t| t.as_str()),
            fuel = report.fuel_consumed,
            record = report.record.as_deref(),
            ms = took.as_secs_f64() * 1000.0,
            "run"
        );
    }

    async fn run_admitted(&self, job: Job) -> Result<RunReport, Refusal> {
        let program = self.program(&job.source, &job.policy).await?;
        let store = self.config.records.clone().filter(|_| job.record);
        let recording = if store.is_some() {
            Recording::On
        } else {
            Recording::Off
        };
        let outcome = job::run(
            &self.engine,
            &program,
            &job.policy,
            &job.invocation,
            recording,
        )
        .await
        .map_err(|e| host_or_invalid(&e))?;
        match store {
            Some(store) if outcome.ran() => self.write_record(outcome, store).await,
            _ => Ok(outcome.report),
        }
    }

    /// Writes the record on a blocking thread (the store fsyncs) and puts its id, never its
    /// host path, in the report's `record`.
    async fn write_record(
        &self,
        mut outcome: job::Outcome,
        store: RecordStore,
    ) -> Result<RunReport, Refusal> {
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || {
            let written = outcome.write_record(&engine, &store);
            let mut report = outcome.report;
            report.record = match written {
                Ok(Some(path)) => RecordStore::id_of(&path),
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(error = %e, "the run record could not be written");
                    None
                }
            };
            report
        })
        .await
        .map_err(|e| Refusal::Host(format!("writing the record failed: {e}")))
    }

    /// Runs `cases` of one program (compiled once) as one request: one place in the queue,
    /// then the cases `concurrency` at a time. Cases that did not pass are recorded when
    /// `record` is set and the service has a store.
    ///
    /// # Errors
    ///
    /// As [`Service::run`].
    pub async fn eval(
        &self,
        source: Source,
        policy: Arc<Policy>,
        cases: Vec<eval::Case>,
        record: bool,
    ) -> Result<Vec<CaseResult>, Refusal> {
        let t0 = Instant::now();
        let until = tokio::time::Instant::now() + self.config.deadline;
        let ticket = self
            .admission
            .enter()
            .inspect_err(|r| self.metrics.refused(r))?;
        let running = self
            .admission
            .start(ticket, until)
            .await
            .inspect_err(|r| self.metrics.refused(r))?;
        self.metrics.queue_wait(t0.elapsed());
        let work = async {
            // A program that did not compile gives its report for every case.
            let program = self.program(&source, &policy).await?;
            let opts = EvalOptions {
                jobs: self.config.concurrency.max(1),
                store: self.config.records.clone().filter(|_| record),
            };
            eval::run_cases(&self.engine, program, cases, &opts, |_, _| {})
                .await
                .map_err(|e| host_or_invalid(&e))
        };
        let result = tokio::time::timeout_at(until, work).await;
        drop(running);
        let mut results = match result {
            Ok(r) => r?,
            Err(_) => {
                self.metrics.refused(&Refusal::Deadline);
                return Err(Refusal::Deadline);
            }
        };
        for r in &mut results {
            r.record = r
                .record
                .as_deref()
                .and_then(|p| RecordStore::id_of(p.as_ref()));
            r.report.record = r.record.clone();
            self.runs.fetch_add(1, Ordering::Relaxed);
            self.metrics.run(r.report.verdict.kind(), Duration::ZERO);
        }
        self.metrics.eval(t0.elapsed());
        tracing::info!(
            cases = results.len(),
            passed = results
                .iter()
                .filter(|r| r.status == eval::CaseStatus::Pass)
                .count(),
            ms = t0.elapsed().as_secs_f64() * 1000.0,
            "eval"
        );
        Ok(results)
    }

    /// The bytes of the record `id` from the service's store.
    ///
    /// # Errors
    ///
    /// [`Refusal::NotFound`] when the service keeps no records or has none by that id.
    pub fn record(&self, id: &str) -> Result<Vec<u8>, Refusal> {
        let store = self
            .config
            .records
            .as_ref()
            .ok_or_else(|| Refusal::NotFound("this service keeps no records".into()))?;
        store
            .read_record(id)
            .map_err(|e| Refusal::NotFound(e.message().to_string()))
    }

    /// Replays the record `id` from the service's store, held under the server policy.
    ///
    /// # Errors
    ///
    /// [`Refusal::NotFound`] for an unknown record; `Ok(Err(_))` when the record was refused
    /// (nothing ran); queue refusals as [`Service::run`].
    pub async fn replay(&self, id: &str) -> Result<Result<ReplayReport, ReplayError>, Refusal> {
        self.record(id)?;
        let store = self
            .config
            .records
            .clone()
            .ok_or_else(|| Refusal::NotFound("this service keeps no records".into()))?;
        let path = store
            .record_path(id)
            .ok_or_else(|| Refusal::NotFound(format!("`{id}` is not a record id")))?;
        let until = tokio::time::Instant::now() + self.config.deadline;
        let ticket = self
            .admission
            .enter()
            .inspect_err(|r| self.metrics.refused(r))?;
        let running = self.admission.start(ticket, until).await?;
        let opts = ReplayOptions {
            best_effort: false,
            ceiling: self.config.policy.clone(),
            store: Some(store),
        };
        let result = tokio::time::timeout_at(until, replay::replay(&self.engine, &path, &opts))
            .await
            .map_err(|_| Refusal::Deadline)?;
        drop(running);
        Ok(result)
    }
}

/// A job-stage error as a refusal: the caller's input → invalid, corral's own → host.
fn host_or_invalid(e: &Error) -> Refusal {
    match e.kind() {
        corral::ErrorKind::Host => Refusal::Host(e.message().to_string()),
        _ => Refusal::Invalid(e.message().to_string()),
    }
}

/// A source from request text: the language's default file name.
pub fn source(code: Vec<u8>, language: Language) -> Source {
    Source::new(code, language.default_file_name(), language)
}
