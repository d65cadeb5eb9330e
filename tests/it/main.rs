//! corral's integration tests: one binary, data-driven over `fixtures/` and `policies/`.
//!
//! - `fixture::<category>::<name>`: every fixture, run twice in fresh stores (reports must
//!   match), its expectation checked, and the host checked afterwards (canaries unchanged,
//!   nothing created outside the run's dirs, no scratch left behind, no secret or host path
//!   in any output).
//! - `fixture_no_openat2::…`: the filesystem fixtures again, in a child process whose
//!   `openat2` fails with `ENOSYS` (a seccomp filter), so the fallback path resolver runs.
//! - `policy::…`: bundled policies load; every `policies/invalid/*.toml` fails with exactly
//!   the message in its `.err` file; property tests of the policy model.
//! - `cli::…`: the `corral` binary: JSON keys, exit statuses, `--help`.
//! - `determinism::…`: reports identical while epoch ticks land every few microseconds.
//! - `isolation::…`: runs on one engine share nothing (reused scratch dirs are empty).
//! - `runner::…`: the language runners have their pinned bytes, and a second build in another
//!   environment gives the same bytes and the same reports.
//! - `workers::…`: the second wall: worker lock-down probes, crashes, deadlines, load.
//! - `architecture::…`: the library's modules are acyclic, the choke points hold, and the
//!   command's files do not import each other.
//! - `serve::…`: `corral serve` as a process on a loopback port, under faults (disconnects,
//!   floods, SIGTERM, hostile bodies), with auth, records and the OpenAPI document.
//! - `wall::…`: the wall clock holds when a guest reaches for a host object that would
//!   block (a FIFO in a `:rw` dir): the run ends at its wall time plus the grace.
//!
//! Every fixture file must be claimed by an expectation; the harness fails otherwise.

mod architecture;
mod cli;
mod determinism;
mod eval;
mod fixtures;
mod isolation;
mod policies;
mod replay;
mod runners;
mod seccomp;
mod serve;
mod support;
mod wall;
mod workers;

use std::process::ExitCode;

fn main() -> ExitCode {
    // The worker tests use this binary as their worker program.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == corral::worker::WORKER_ARG)
    {
        return corral::job::serve_worker();
    }
    // SAFETY: single-threaded at this point; the secret must be in this process's
    // environment so that fixtures prove guests cannot see it.
    #[expect(unsafe_code, reason = "set_var before any thread exists")]
    unsafe {
        std::env::set_var(support::SECRET_ENV, support::secret());
    }
    if let Ok(kind) = std::env::var(runners::CHILD_KIND_ENV) {
        return runners::child_build(&kind);
    }
    if std::env::var_os(seccomp::NO_OPENAT2_ENV).is_some() {
        seccomp::deny_openat2();
    }
    let args = libtest_mimic::Arguments::from_args();
    let mut trials = Vec::new();
    trials.extend(fixtures::trials());
    trials.extend(policies::trials());
    trials.extend(cli::trials());
    trials.extend(replay::trials());
    trials.extend(eval::trials());
    trials.extend(determinism::trials());
    trials.extend(isolation::trials());
    trials.extend(runners::trials());
    trials.extend(architecture::trials());
    trials.extend(workers::trials());
    trials.extend(wall::trials());
    trials.extend(serve::trials());
    let conclusion = libtest_mimic::run(&args, trials);
    support::remove_ct_canary();
    print_record_sizes();
    conclusion.exit_code()
}

/// The size of the fixture runs' records (each fixture is recorded and replayed).
fn print_record_sizes() {
    let Ok(mut sizes) = fixtures::RECORD_SIZES.lock().map(|s| s.clone()) else {
        return;
    };
    if sizes.is_empty() {
        return;
    }
    sizes.sort_unstable();
    let at = |q: usize| sizes[(sizes.len() * q / 100).min(sizes.len() - 1)];
    println!(
        "run records of {} fixture runs: median {} bytes, p99 {} bytes, max {} bytes (without blobs)",
        sizes.len(),
        at(50),
        at(99),
        sizes[sizes.len() - 1]
    );
}
