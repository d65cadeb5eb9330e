//! JUnit XML for CI systems, written by `quick-junit` (the crate nextest uses).
//!
//! Case names, diffs, messages and record paths come from the suite and the guest, so they
//! may hold anything: `quick-junit` escapes markup and drops what XML 1.0 cannot carry at all
//! (NUL, other control characters, ANSI escape sequences), so the file always parses.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use super::{CaseResult, CaseStatus};

/// A JUnit XML report of `results` for the suite named `suite`.
pub fn render(suite: &str, results: &[CaseResult]) -> String {
    let mut ts = TestSuite::new(suite);
    let mut total = Duration::ZERO;
    for r in results {
        let status = match &r.status {
            CaseStatus::Pass => TestCaseStatus::success(),
            CaseStatus::Fail { reason } => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(reason.lines().next().unwrap_or(""));
                s.set_description(reason.as_str());
                s
            }
            CaseStatus::Error(_) => {
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
                s.set_type(r.status.label());
                s.set_message(r.report.message.as_str());
                s
            }
        };
        let mut tc = TestCase::new(r.name.as_str(), status);
        tc.set_classname(suite);
        tc.set_time(r.report.wall_time);
        if let Some(rec) = &r.record {
            tc.set_system_out(format!("record: {rec}"));
        }
        total += r.report.wall_time;
        ts.add_test_case(tc);
    }
    ts.set_time(total);
    let mut report = Report::new(suite);
    report.add_test_suite(ts);
    // Serialising to a `String` only fails if the XML writer fails, which it cannot in memory.
    report.to_string().unwrap_or_default()
}
