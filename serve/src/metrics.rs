//! Prometheus metrics, kept in atomics and rendered in the text exposition format
//! (`GET /metrics`): runs by verdict, refusals by reason, HTTP responses by status class,
//! queue depth and running gauges, and latency histograms.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::service::Refusal;

/// The verdicts, in the order they are rendered (the report's `verdict` strings).
const VERDICTS: [&str; 9] = [
    "ok",
    "exit",
    "trap",
    "limit",
    "denied",
    "rejected",
    "compile_error",
    "invalid_input",
    "host_error",
];

const REFUSALS: [&str; 7] = [
    "queue_full",
    "draining",
    "queue_timeout",
    "deadline",
    "invalid",
    "not_found",
    "host",
];

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
];

#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    /// Sum in microseconds.
    sum_us: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (b, le) in self.buckets.iter().zip(BUCKETS) {
            if s <= le {
                b.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(
            u64::try_from(d.as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    fn render(&self, name: &str, out: &mut String) {
        for (b, le) in self.buckets.iter().zip(BUCKETS) {
            out.push_str(&format!(
                "{name}_bucket{{le=\"{le}\"}} {}\n",
                b.load(Ordering::Relaxed)
            ));
        }
        let count = self.count.load(Ordering::Relaxed);
        out.push_str(&format!("{name}_bucket{{le=\"+Inf\"}} {count}\n"));
        out.push_str(&format!(
            "{name}_sum {}\n",
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6
        ));
        out.push_str(&format!("{name}_count {count}\n"));
    }
}

/// The service's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    runs: [AtomicU64; VERDICTS.len()],
    refusals: [AtomicU64; REFUSALS.len()],
    /// HTTP responses by status class (1xx … 5xx).
    responses: [AtomicU64; 5],
    run_seconds: Histogram,
    queue_seconds: Histogram,
}

impl Metrics {
    /// A run finished with `verdict` after `took` (queueing included; zero for the cases
    /// of an eval, which are timed as one request).
    pub fn run(&self, verdict: &str, took: Duration) {
        if let Some(i) = VERDICTS.iter().position(|v| *v == verdict) {
            self.runs[i].fetch_add(1, Ordering::Relaxed);
        }
        if !took.is_zero() {
            self.run_seconds.observe(took);
        }
    }

    /// A request was refused.
    pub fn refused(&self, r: &Refusal) {
        let i = match r {
            Refusal::Busy => 0,
            Refusal::Draining => 1,
            Refusal::QueueTimeout => 2,
            Refusal::Deadline => 3,
            Refusal::Invalid(_) => 4,
            Refusal::NotFound(_) => 5,
            Refusal::Host(_) => 6,
        };
        self.refusals[i].fetch_add(1, Ordering::Relaxed);
    }

    /// An eval request finished after `took`.
    pub fn eval(&self, took: Duration) {
        self.run_seconds.observe(took);
    }

    /// Time a request waited for a run slot.
    pub fn queue_wait(&self, d: Duration) {
        self.queue_seconds.observe(d);
    }

    /// An HTTP response with `status` was sent.
    pub fn response(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.responses[class].fetch_add(1, Ordering::Relaxed);
    }

    /// Runs finished with `verdict`.
    pub fn runs_with(&self, verdict: &str) -> u64 {
        VERDICTS
            .iter()
            .position(|v| *v == verdict)
            .map_or(0, |i| self.runs[i].load(Ordering::Relaxed))
    }

    /// The text exposition format, with the current queue depth and running count.
    pub fn render(&self, queued: usize, running: usize, uptime: Duration) -> String {
        let mut out = String::new();
        out.push_str("# HELP corral_runs_total Runs finished, by verdict.\n");
        out.push_str("# TYPE corral_runs_total counter\n");
        for (v, n) in VERDICTS.iter().zip(&self.runs) {
            out.push_str(&format!(
                "corral_runs_total{{verdict=\"{v}\"}} {}\n",
                n.load(Ordering::Relaxed)
            ));
        }
        out.push_str(
            "# HELP corral_refusals_total Requests answered without a verdict, by reason.\n",
        );
        out.push_str("# TYPE corral_refusals_total counter\n");
        for (r, n) in REFUSALS.iter().zip(&self.refusals) {
            out.push_str(&format!(
                "corral_refusals_total{{reason=\"{r}\"}} {}\n",
                n.load(Ordering::Relaxed)
            ));
        }
        out.push_str("# HELP corral_http_responses_total HTTP responses, by status class.\n");
        out.push_str("# TYPE corral_http_responses_total counter\n");
        for (i, n) in self.responses.iter().enumerate() {
            out.push_str(&format!(
                "corral_http_responses_total{{class=\"{}xx\"}} {}\n",
                i + 1,
                n.load(Ordering::Relaxed)
            ));
        }
        out.push_str("# HELP corral_queue_depth Requests waiting for a run slot.\n");
        out.push_str("# TYPE corral_queue_depth gauge\n");
        out.push_str(&format!("corral_queue_depth {queued}\n"));
        out.push_str("# HELP corral_running Requests running.\n");
        out.push_str("# TYPE corral_running gauge\n");
        out.push_str(&format!("corral_running {running}\n"));
        out.push_str("# HELP corral_uptime_seconds Seconds since the service started.\n");
        out.push_str("# TYPE corral_uptime_seconds gauge\n");
        out.push_str(&format!("corral_uptime_seconds {}\n", uptime.as_secs_f64()));
        out.push_str(
            "# HELP corral_request_duration_seconds Time from admission to verdict of a run request.\n",
        );
        out.push_str("# TYPE corral_request_duration_seconds histogram\n");
        self.run_seconds
            .render("corral_request_duration_seconds", &mut out);
        out.push_str("# HELP corral_queue_wait_seconds Time a request waited for a run slot.\n");
        out.push_str("# TYPE corral_queue_wait_seconds histogram\n");
        self.queue_seconds
            .render("corral_queue_wait_seconds", &mut out);
        out
    }
}
