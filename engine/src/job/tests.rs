use super::*;
use crate::policy::{Fuel, MAX_FUEL, MAX_WALL_TIME};
use std::time::Duration;

#[test]
fn issue_18_budget_multiplies_fuel_and_wall_time_only() {
    let strict = Policy::strict();
    assert_eq!(budget(&strict, 1), strict);
    let p = budget(&strict, 24);
    assert_eq!(p.limits.fuel, Fuel(48_000_000_000));
    assert_eq!(p.limits.wall_time, Duration::from_secs(120));
    let mut rest = p.clone();
    rest.limits.fuel = strict.limits.fuel;
    rest.limits.wall_time = strict.limits.wall_time;
    assert_eq!(rest, strict, "nothing but fuel and wall time changes");
    // Held to the largest values a policy may have (a worker re-parses the policy).
    let big = Policy::parse(
        "p.toml",
        "[limits]\nfuel = 9_000_000_000_000\nwall_time_ms = 3_000_000\n",
    )
    .unwrap();
    let p = budget(&big, 25);
    assert_eq!(p.limits.fuel, Fuel(MAX_FUEL));
    assert_eq!(p.limits.wall_time, MAX_WALL_TIME);
    assert_eq!(Policy::parse("p.toml", &p.to_canonical_toml()).unwrap(), p);
    // Zero fuel stays zero.
    let zero = Policy::parse("p.toml", "[limits]\nfuel = 0\n").unwrap();
    assert_eq!(budget(&zero, 25).limits.fuel, Fuel(0));
}

#[test]
fn issue_18_runner_names_cannot_select_a_runner_mode() {
    assert_eq!(runner_argv0("main.py"), "main.py");
    assert_eq!(runner_argv0("--corral-compile"), "./--corral-compile");
    assert_eq!(runner_argv0("--corral-info"), "./--corral-info");
    assert_eq!(runner_argv0("-x.py"), "-x.py");
}

#[test]
fn issue_18_python_compile_errors_are_named_by_their_last_line() {
    let diag = "  File \"m.py\", line 2\n    x = error_count +\n                     ^\nSyntaxError: invalid syntax\n";
    assert_eq!(
        compile_error_line(Language::Python, diag),
        "SyntaxError: invalid syntax"
    );
    // The compiled languages keep the first line that says `error`.
    let clang = "m.c:1:1: warning: x\nm.c:2:1: error: y\nm.c:3:1: error: z\n";
    assert_eq!(compile_error_line(Language::C, clang), "m.c:2:1: error: y");
    assert_eq!(compile_error_line(Language::Python, ""), "");
}
