//! Policy tests: bundled policies, `policies/invalid/*` with exact errors, properties.

use corral::Policy;
use corral::policy::BUNDLED;
use libtest_mimic::{Failed, Trial};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::support;

pub fn trials() -> Vec<Trial> {
    let mut t = vec![
        Trial::test("policy::bundled_load_and_round_trip", bundled),
        Trial::test("policy::strict_is_the_default", strict_default),
        Trial::test("policy::extends_chain", extends_chain),
        Trial::test("policy::within", within),
        Trial::test("policy::prop_round_trip", prop_round_trip),
        Trial::test("policy::prop_arbitrary_text_never_panics", prop_arbitrary),
    ];
    let dir = support::repo().join("policies").join("invalid");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let mut count = 0;
    for p in files {
        match p.extension().and_then(|e| e.to_str()) {
            Some("toml") => {
                count += 1;
                let name = p
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let path = p.clone();
                t.push(Trial::test(format!("policy::invalid::{name}"), move || {
                    invalid(&path)
                }));
            }
            Some("err") => {
                let toml = p.with_extension("toml");
                if !toml.exists() {
                    let shown = p.display().to_string();
                    t.push(Trial::test(
                        format!("policy::invalid::orphan::{shown}"),
                        move || Err(format!("{shown} has no .toml beside it").into()),
                    ));
                }
            }
            _ => {
                let shown = p.display().to_string();
                t.push(Trial::test(
                    format!("policy::invalid::unclaimed::{shown}"),
                    move || Err(format!("unclaimed file {shown}").into()),
                ));
            }
        }
    }
    t.push(Trial::test(
        "policy::invalid_suite_is_not_empty",
        move || {
            if count < 15 {
                return Err(format!("only {count} invalid policies").into());
            }
            Ok(())
        },
    ));
    t
}

fn invalid(path: &std::path::Path) -> Result<(), Failed> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let expected = std::fs::read_to_string(path.with_extension("err"))
        .map_err(|e| format!("{}: missing .err file: {e}", path.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match Policy::parse(&name, &text) {
        Ok(_) => Err(format!("{name} was accepted").into()),
        Err(e) if e.to_string() == expected.trim_end() => Ok(()),
        Err(e) => Err(format!("{name}:\nexpected: {}\n     got: {e}", expected.trim_end()).into()),
    }
}

fn bundled() -> Result<(), Failed> {
    for (name, _) in BUNDLED {
        let p = Policy::bundled(name).map_err(|e| e.to_string())?;
        let text = p.to_canonical_toml();
        let back =
            Policy::parse("canonical.toml", &text).map_err(|e| format!("{name}: {e}\n{text}"))?;
        if back.with_name(name) != p {
            return Err(format!("{name} does not round-trip through its canonical form").into());
        }
    }
    Ok(())
}

fn strict_default() -> Result<(), Failed> {
    let strict = Policy::strict();
    let empty = Policy::parse("empty.toml", "").map_err(|e| e.to_string())?;
    if empty.with_name("strict") != strict {
        return Err("an empty policy must equal strict".into());
    }
    if strict.fs.scratch.is_some()
        || strict.fs.allow_rw_dirs
        || strict.limits.fs_bytes.0 != 0
        || !strict.env.is_empty()
    {
        return Err("strict must grant no filesystem and no env".into());
    }
    Ok(())
}

fn extends_chain() -> Result<(), Failed> {
    let p = Policy::parse("x.toml", "extends = \"permissive\"\n[limits]\nfuel = 5\n")
        .map_err(|e| e.to_string())?;
    let perm = Policy::bundled("permissive").map_err(|e| e.to_string())?;
    if p.limits.fuel.0 != 5
        || p.limits.memory != perm.limits.memory
        || !p.fs.allow_rw_dirs
        || p.fs.scratch.is_none()
    {
        return Err(format!("extends did not layer correctly: {p:?}").into());
    }
    Ok(())
}

fn within() -> Result<(), Failed> {
    let strict = Policy::strict();
    let perm = Policy::bundled("permissive").map_err(|e| e.to_string())?;
    strict.within(&perm).map_err(Failed::from)?;
    if perm.within(&strict).is_ok() {
        return Err("permissive must not fit within strict".into());
    }
    Ok(())
}

fn arb_policy_text() -> impl Strategy<Value = String> {
    (
        0u64..=10_000_000_000_000,
        1u64..=3_600_000,
        0u64..=(4u64 << 30),
        0u64..=1_000_000,
        0u64..=1024,
        proptest::option::of("/[a-z]{1,8}(/[a-z0-9_]{1,8}){0,2}"),
        any::<bool>(),
        proptest::collection::btree_map("[A-Z_][A-Z0-9_]{0,8}", "[ -~]{0,16}", 0..4),
        prop_oneof![Just("errno"), Just("end_run")],
    )
        .prop_map(|(fuel, wall, mem, files, open, scratch, rw, env, denial)| {
            let mut s = format!(
                "[limits]\nfuel = {fuel}\nwall_time_ms = {wall}\nmemory_bytes = {mem}\nfs_files = {files}\nopen_files = {open}\n[fs]\nallow_rw_dirs = {rw}\n"
            );
            if let Some(sc) = scratch {
                s.push_str(&format!("scratch = \"{sc}\"\n"));
            }
            s.push_str(&format!("[gate]\non_denial = \"{denial}\"\n[env]\n"));
            for (k, v) in env {
                s.push_str(&format!("{k} = {}\n", toml::Value::String(v)));
            }
            s
        })
}

fn prop_round_trip() -> Result<(), Failed> {
    let mut runner = TestRunner::new(Config {
        cases: 256,
        ..Config::default()
    });
    runner
        .run(&arb_policy_text(), |text| {
            let p = Policy::parse("p.toml", &text)
                .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            let canon = p.to_canonical_toml();
            let q = Policy::parse("p.toml", &canon)
                .map_err(|e| TestCaseError::fail(format!("{e}\n{canon}")))?;
            prop_assert_eq!(p, q);
            Ok(())
        })
        .map_err(|e| Failed::from(e.to_string()))
}

fn prop_arbitrary() -> Result<(), Failed> {
    let mut runner = TestRunner::new(Config {
        cases: 512,
        ..Config::default()
    });
    let strat = prop_oneof![
        ".{0,200}".boxed(),
        proptest::collection::vec(
            prop_oneof![
                Just("[limits]\n".to_string()),
                Just("fuel = ".to_string()),
                Just("-1\n".to_string()),
                Just("1e309\n".to_string()),
                Just("\"x\"\n".to_string()),
                Just("[fs]\nscratch = \"/a/../b\"\n".to_string()),
                Just("[env]\n\"A=B\" = \"x\"\n".to_string()),
                Just("extends = \"nope\"\n".to_string()),
                Just("[[limits]]\n".to_string()),
                "[a-z_]{1,10} = [0-9]{1,25}\n",
            ],
            0..12
        )
        .prop_map(|v| v.concat())
        .boxed(),
    ];
    runner
        .run(&strat, |text| {
            let _ = Policy::parse("p.toml", &text);
            Ok(())
        })
        .map_err(|e| Failed::from(e.to_string()))
}
