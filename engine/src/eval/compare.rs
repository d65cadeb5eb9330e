//! Comparing a case's output with the expected output, and showing how they differ.

/// How stdout is compared.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Compare {
    /// Byte for byte.
    Exact,
    /// Ignoring trailing whitespace on each line and trailing blank lines.
    Trim,
    /// Whitespace-separated tokens; numbers equal within `tolerance` (absolute, or relative
    /// to the larger magnitude).
    Tokens {
        /// The tolerance.
        tolerance: f64,
    },
}

fn trim_lines(s: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = s.lines().map(str::trim_end).collect();
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    if a == b {
        return true;
    }
    let diff = (a - b).abs();
    diff <= tol || diff <= tol * a.abs().max(b.abs())
}

impl Compare {
    /// Whether `actual` matches `expected`.
    pub fn matches(self, expected: &str, actual: &str) -> bool {
        match self {
            Compare::Exact => expected == actual,
            Compare::Trim => trim_lines(expected) == trim_lines(actual),
            Compare::Tokens { tolerance } => {
                let e: Vec<&str> = expected.split_whitespace().collect();
                let a: Vec<&str> = actual.split_whitespace().collect();
                e.len() == a.len()
                    && e.iter().zip(&a).all(|(x, y)| {
                        x == y
                            || matches!((x.parse::<f64>(), y.parse::<f64>()), (Ok(p), Ok(q)) if p.is_finite() && q.is_finite() && close(p, q, tolerance))
                    })
            }
        }
    }

    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Compare::Exact => "exact",
            Compare::Trim => "trim",
            Compare::Tokens { .. } => "tokens",
        }
    }
}

/// A short, readable description of how `actual` differs from `expected`: the first
/// differing line with a little context, both sides shown escaped.
pub fn diff(expected: &str, actual: &str) -> String {
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    let first = (0..e.len().max(a.len())).find(|&i| e.get(i) != a.get(i));
    let Some(i) = first else {
        // Same lines: the difference is in line endings or trailing whitespace.
        return format!(
            "lines are equal but the bytes differ (expected {} bytes, got {}; check trailing newlines or spaces)",
            expected.len(),
            actual.len()
        );
    };
    let show = |l: Option<&&str>| match l {
        Some(l) => format!("{:?}", truncate(l, 200)),
        None => "(no line)".to_string(),
    };
    let mut out = format!("first difference at line {}:\n", i + 1);
    if i > 0 {
        out.push_str(&format!("    {:>5}  {}\n", i, show(e.get(i - 1))));
    }
    out.push_str(&format!("  - {:>5}  {}\n", i + 1, show(e.get(i))));
    out.push_str(&format!("  + {:>5}  {}\n", i + 1, show(a.get(i))));
    out.push_str(&format!("(expected {} lines, got {})", e.len(), a.len()));
    out
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let t: String = s.chars().take(n).collect();
        format!("{t}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes() {
        assert!(Compare::Exact.matches("a\n", "a\n"));
        assert!(!Compare::Exact.matches("a\n", "a"));
        assert!(Compare::Trim.matches("a \nb\n\n", "a\nb"));
        assert!(!Compare::Trim.matches("a\nb", "a\nc"));
        let t = Compare::Tokens { tolerance: 1e-6 };
        assert!(t.matches("1.0 2", "1.0000001\n2"));
        assert!(!t.matches("1.0 2", "1.1 2"));
        assert!(!t.matches("1 2", "1 2 3"));
        assert!(t.matches("1e9", "1000000000.5"));
        assert!(!t.matches("nan", "nan0"));
    }

    #[test]
    fn diffs_name_the_line() {
        let d = diff("a\nb\nc\n", "a\nx\nc\n");
        assert!(d.starts_with("first difference at line 2"), "{d}");
        assert!(d.contains("\"b\"") && d.contains("\"x\""), "{d}");
        assert!(diff("a\n", "a").contains("bytes differ"));
    }
}
