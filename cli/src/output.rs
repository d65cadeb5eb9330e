//! Human and JSON rendering of reports.

use std::io::{IsTerminal, Write};

use corral::RunReport;
use corral::record::trail::TrailSnapshot;

/// Makes guest bytes safe to show on a terminal: control characters other than newline and
/// tab become visible escapes, so a guest cannot move the cursor, set the title or write the
/// clipboard of the person reading its output.
pub fn escape_for_terminal(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            out.push_str(&c.escape_default().to_string());
        } else {
            out.push(c);
        }
    }
    out
}

/// Writes guest output to our stdout/stderr: raw into pipes and files, escaped on terminals.
pub fn pass_through(report: &RunReport) {
    let mut out = std::io::stdout();
    if out.is_terminal() {
        let _ = out.write_all(escape_for_terminal(&report.stdout).as_bytes());
    } else {
        let _ = out.write_all(&report.stdout);
    }
    let _ = out.flush();
    let mut err = std::io::stderr();
    if err.is_terminal() {
        let _ = err.write_all(escape_for_terminal(&report.stderr).as_bytes());
    } else {
        let _ = err.write_all(&report.stderr);
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The human summary block, written to stderr after the guest's own output.
pub fn summary(report: &RunReport, ran: bool) -> String {
    let v = &report.verdict;
    let mut verdict = v.kind().to_string();
    if let Some(t) = v.trap() {
        verdict.push_str(&format!(" ({t})"));
    }
    if let Some(l) = v.limit() {
        verdict.push_str(&format!(" ({l})"));
    }
    if let Some(c) = v.exit_code() {
        verdict.push_str(&format!(" (exit code {c})"));
    }
    let mut s = String::new();
    if !report.stdout.is_empty() && !report.stdout.ends_with(b"\n") {
        s.push('\n');
    }
    s.push_str("── corral ──\n");
    s.push_str(&format!("verdict   {verdict}\n"));
    s.push_str(&format!("message   {}\n", report.message));
    if let Some(d) = &report.diagnostics {
        s.push_str("diagnostics:\n");
        for line in d.lines() {
            s.push_str(&format!("  {line}\n"));
        }
    }
    if ran {
        s.push_str(&format!(
            "fuel      {} units\n",
            thousands(report.fuel_consumed)
        ));
        s.push_str(&format!(
            "calls     {} host calls, {} denied\n",
            thousands(report.calls.total),
            report.calls.denials
        ));
        if report.stdout_truncated || report.stderr_truncated {
            s.push_str(&format!(
                "output    truncated (stdout: {}, stderr: {})\n",
                report.stdout_truncated, report.stderr_truncated
            ));
        }
        s.push_str(&format!(
            "time      {:.1} ms\n",
            report.wall_time.as_secs_f64() * 1000.0
        ));
    }
    if let Some(h) = report.module_hash {
        s.push_str(&format!("module    {h}\n"));
    }
    if let Some(r) = &report.record {
        s.push_str(&format!("record    {r}\n"));
    }
    s
}

/// Prints the report as one JSON object on stdout.
pub fn print_json(value: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = serde_json::to_writer(&mut out, value);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

/// Human text for a replay.
pub fn replay_text(r: &corral::replay::ReplayReport) -> String {
    use corral::replay::Divergence as D;
    let mut s = String::new();
    for n in &r.notes {
        s.push_str(&format!("note      {n}\n"));
    }
    match &r.divergence {
        None if r.identical => s.push_str("replay    identical: every host call, the fuel count and the outputs match the record\n"),
        None => s.push_str("replay    not verified\n"),
        Some(D::HostCall { index, expected, actual }) => {
            s.push_str(&format!("replay    DIVERGED at host call #{index}\n"));
            let show = |c: &Option<corral::replay::CallView>| match c {
                Some(c) => format!("{} at fuel {} args {} → errno {} result {}", c.func, c.fuel, c.args, c.errno, c.result),
                None => "(no such call)".to_string(),
            };
            s.push_str(&format!("  recorded  {}\n", show(expected)));
            s.push_str(&format!("  replayed  {}\n", show(actual)));
        }
        Some(D::CallWindow { from_call, to_call, from_fuel }) => s.push_str(&format!(
            "replay    DIVERGED between host calls #{from_call} and #{to_call} (after fuel {from_fuel})\n"
        )),
        Some(D::FuelWindow { from_fuel, to_fuel, fields }) => s.push_str(&format!(
            "replay    DIVERGED after the last host call, in the fuel window ({from_fuel}, {to_fuel}]: {} differ\n",
            fields.join(", ")
        )),
        Some(_) => s.push_str("replay    DIVERGED\n"),
    }
    s
}

/// Prints `report` (JSON on stdout, or the guest's output and a summary on stderr), flushes,
/// and leaves the process with `status` — without unmapping the engine, the module artifact
/// and the pools one by one (the kernel reclaims them at once).
pub fn finish(report: &RunReport, json: bool, ran: bool, status: u8) -> ! {
    if json {
        print_json(&report.to_json());
    } else {
        if ran {
            pass_through(report);
        }
        eprint!("{}", summary(report, ran));
    }
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    std::process::exit(i32::from(status))
}

/// The audit trail, one call per line (`corral run --trace`).
pub fn trace_text(trail: &TrailSnapshot) -> String {
    let mut s = format!("── trace: {} host calls ──\n", trail.total);
    for ev in &trail.events {
        let result = match ev.errno {
            0 => format!("ok {}", ev.result),
            u16::MAX => "trap/exit".to_string(),
            e => format!("errno {e}"),
        };
        s.push_str(&format!(
            "#{:<6} fuel {:>12}  {:<24} args {}  → {}\n",
            ev.index, ev.fuel, ev.func, ev.args, result
        ));
    }
    if !trail.complete() {
        s.push_str(&format!(
            "… {} more calls not kept in memory (they are in the chain hash)\n",
            trail.total - trail.events.len() as u64
        ));
    }
    s.push_str(&format!("chain blake3:{}\n", trail.hash));
    s
}

/// A progress bar on a terminal (nothing otherwise).
pub fn progress(label: &'static str) -> impl Fn(usize, usize) + Send + Sync + 'static {
    let tty = std::io::stderr().is_terminal();
    move |done, total| {
        if !tty {
            return;
        }
        let width = 30;
        let filled = (done * width).checked_div(total).unwrap_or(width);
        let bar: String = "█".repeat(filled) + &"░".repeat(width - filled);
        eprint!("\r{label} {bar} {done}/{total}");
        if done == total {
            eprintln!();
        }
        let _ = std::io::stderr().flush();
    }
}

/// Guest- or suite-controlled text for a terminal line: escaped if stderr is a terminal.
pub fn for_terminal(text: &str) -> String {
    if std::io::stderr().is_terminal() {
        escape_for_terminal(text.as_bytes())
    } else {
        text.to_string()
    }
}
