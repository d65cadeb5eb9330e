//! JUnit XML for CI systems.

use super::{CaseResult, CaseStatus};

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => {
                out.push_str(&format!("&#x{:x};", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// A JUnit XML report of `results` for the suite named `suite`.
pub fn render(suite: &str, results: &[CaseResult]) -> String {
    let failures = results
        .iter()
        .filter(|r| matches!(r.status, CaseStatus::Fail { .. }))
        .count();
    let errors = results
        .iter()
        .filter(|r| matches!(r.status, CaseStatus::Error(_)))
        .count();
    let time: f64 = results
        .iter()
        .map(|r| r.report.wall_time.as_secs_f64())
        .sum();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str(&format!(
        "<testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time:.3}\">\n",
        esc(suite),
        results.len()
    ));
    for r in results {
        x.push_str(&format!(
            "  <testcase classname=\"{}\" name=\"{}\" time=\"{:.6}\">\n",
            esc(suite),
            esc(&r.name),
            r.report.wall_time.as_secs_f64()
        ));
        match &r.status {
            CaseStatus::Pass => {}
            CaseStatus::Fail { reason } => {
                x.push_str(&format!(
                    "    <failure message=\"{}\">{}</failure>\n",
                    esc(reason.lines().next().unwrap_or("")),
                    esc(reason)
                ));
            }
            CaseStatus::Error(_) => {
                x.push_str(&format!(
                    "    <error type=\"{}\" message=\"{}\"/>\n",
                    esc(&r.status.label()),
                    esc(&r.report.message)
                ));
            }
        }
        if let Some(rec) = &r.record {
            x.push_str(&format!(
                "    <system-out>record: {}</system-out>\n",
                esc(rec)
            ));
        }
        x.push_str("  </testcase>\n");
    }
    x.push_str("</testsuite>\n");
    x
}
