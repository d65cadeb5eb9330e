//! Human and JSON rendering of reports.

use std::io::{IsTerminal, Write};

use engine::RunReport;

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
