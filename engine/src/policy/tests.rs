use super::*;

#[test]
fn guest_paths() {
    for ok in ["/tmp", "/data/in", "/a-b_c.d"] {
        assert!(GuestPath::new(ok).is_ok(), "{ok}");
    }
    let bad = [
        ("", GuestPathError::Empty),
        ("tmp", GuestPathError::NotAbsolute("tmp".into())),
        ("/", GuestPathError::Root),
        ("/a/../b", GuestPathError::NotNormalised("/a/../b".into())),
        ("/a/./b", GuestPathError::NotNormalised("/a/./b".into())),
        ("//a", GuestPathError::NotNormalised("//a".into())),
        ("/a/", GuestPathError::NotNormalised("/a/".into())),
        ("/a\0b", GuestPathError::Nul("/a\\0b".into())),
    ];
    for (s, e) in bad {
        assert_eq!(GuestPath::new(s), Err(e), "{s:?}");
    }
    let long = format!("/{}", "a".repeat(256));
    assert!(matches!(
        GuestPath::new(&long),
        Err(GuestPathError::TooLong(_))
    ));
}

#[test]
fn overlaps() {
    let p = |s| GuestPath::new(s).unwrap();
    assert!(p("/a").overlaps(&p("/a")));
    assert!(p("/a").overlaps(&p("/a/b")));
    assert!(p("/a/b").overlaps(&p("/a")));
    assert!(!p("/a").overlaps(&p("/ab")));
    assert!(!p("/a/b").overlaps(&p("/a/c")));
}

#[test]
fn env_checks() {
    assert!(check_env_var("A", "x=y").is_ok());
    assert!(check_env_var("", "x").is_err());
    assert!(check_env_var("A=B", "x").is_err());
    assert!(check_env_var("A\0", "x").is_err());
    assert!(check_env_var("A", "x\0").is_err());
    let many: BTreeMap<String, String> = (0..=MAX_ENV_VARS)
        .map(|i| (format!("K{i}"), String::new()))
        .collect();
    assert!(check_env_size(&many).is_err());
    let big: BTreeMap<String, String> = [("K".to_string(), "v".repeat(MAX_ENV_BYTES))].into();
    assert!(check_env_size(&big).is_err());
}

#[test]
fn bytes_display() {
    assert_eq!(Bytes(1 << 20).to_string(), "1 MiB");
    assert_eq!(Bytes(256 << 20).to_string(), "256 MiB");
    assert_eq!(Bytes(3 << 30).to_string(), "3 GiB");
    assert_eq!(Bytes(1536).to_string(), "1536 bytes");
    assert_eq!(Bytes(0).to_string(), "0 bytes");
}

#[test]
fn zero_limits_are_accepted_where_documented() {
    let p = Policy::parse(
        "z.toml",
        "[limits]\nfuel = 0\nmemory_bytes = 0\nstdout_bytes = 0\nfs_bytes = 0\nopen_files = 0\n",
    )
    .unwrap();
    assert_eq!(p.limits.fuel, Fuel(0));
    assert!(Policy::parse("z.toml", "[limits]\nwall_time_ms = 0\n").is_err());
    assert!(Policy::parse("z.toml", "[limits]\nmodule_bytes = 0\n").is_err());
}

#[test]
fn error_positions_point_at_the_value() {
    let e = Policy::parse("p.toml", "\n\n[limits]\nfuel = 99999999999999999\n").unwrap_err();
    assert_eq!(e.position, Some((4, 8)));
    assert!(e.to_string().starts_with("p.toml:4:8: `limits.fuel`"));
}

#[test]
fn resolve_prefers_bundled_names() {
    assert_eq!(Policy::resolve("standard").unwrap().name(), "standard");
    let e = Policy::resolve("nonexistent-policy").unwrap_err();
    assert!(e.to_string().contains("unknown bundled policy"), "{e}");
}

#[test]
fn issue_18_scratch_false_drops_the_inherited_scratch_dir() {
    let p = Policy::parse("p.toml", "extends = \"standard\"\n[fs]\nscratch = false\n").unwrap();
    assert_eq!(p.fs.scratch, None);
    // Everything else is still inherited.
    assert_eq!(p.limits, Policy::bundled("standard").unwrap().limits);
    assert_eq!(p.env.get("LANG").map(String::as_str), Some("C.UTF-8"));
    // A later path still sets one; without `extends` `false` is simply the default.
    let p = Policy::parse(
        "p.toml",
        "extends = \"standard\"\n[fs]\nscratch = \"/work\"\n",
    )
    .unwrap();
    assert_eq!(p.fs.scratch.as_ref().map(GuestPath::as_str), Some("/work"));
    assert_eq!(
        Policy::parse("p.toml", "[fs]\nscratch = false\n")
            .unwrap()
            .fs
            .scratch,
        None
    );
    // The trimmed policy round-trips through its canonical form (which has no `extends`).
    let p = Policy::parse(
        "p.toml",
        "extends = \"permissive\"\n[fs]\nscratch = false\n",
    )
    .unwrap();
    let back = Policy::parse("p.toml", &p.to_canonical_toml()).unwrap();
    assert_eq!(back, p);
}

#[test]
fn issue_18_scratch_takes_a_path_or_false_only() {
    let e = Policy::parse("p.toml", "[fs]\nscratch = true\n").unwrap_err();
    assert_eq!(e.position, Some((2, 11)));
    assert!(
        e.to_string().starts_with(
            "p.toml:2:11: `fs.scratch` is `true`, not a guest path or `false` (hint: "
        ),
        "{e}"
    );
    for (value, what) in [("1", "an integer"), ("[]", "an array"), ("{}", "a table")] {
        let e = Policy::parse("p.toml", &format!("[fs]\nscratch = {value}\n")).unwrap_err();
        assert!(
            e.message == format!("`fs.scratch` is {what}, not a guest path or `false`"),
            "{e}"
        );
    }
}

#[test]
fn issue_18_env_mode_replace_drops_the_inherited_environment() {
    let merged = Policy::parse("p.toml", "extends = \"standard\"\n[env]\nA = \"1\"\n").unwrap();
    assert_eq!(merged.env.len(), 2);
    let explicit = Policy::parse(
        "p.toml",
        "extends = \"standard\"\nenv_mode = \"merge\"\n[env]\nA = \"1\"\n",
    )
    .unwrap();
    assert_eq!(explicit, merged);
    let replaced = Policy::parse(
        "p.toml",
        "extends = \"standard\"\nenv_mode = \"replace\"\n[env]\nA = \"1\"\n",
    )
    .unwrap();
    assert_eq!(
        replaced.env,
        BTreeMap::from([("A".to_string(), "1".to_string())])
    );
    let empty = Policy::parse(
        "p.toml",
        "extends = \"permissive\"\nenv_mode = \"replace\"\n",
    )
    .unwrap();
    assert!(empty.env.is_empty());
    assert_eq!(
        empty.fs.scratch,
        Policy::bundled("permissive").unwrap().fs.scratch
    );
    let back = Policy::parse("p.toml", &replaced.to_canonical_toml()).unwrap();
    assert_eq!(back, replaced);
}

#[test]
fn issue_18_env_mode_errors_say_what_is_allowed() {
    let e = Policy::parse("p.toml", "extends = \"standard\"\nenv_mode = \"drop\"\n").unwrap_err();
    assert_eq!(e.position, Some((2, 12)));
    assert!(
        e.message
            .contains("`env_mode` = `drop` is not a known mode"),
        "{e}"
    );
    assert!(
        e.to_string().contains("`merge`") && e.to_string().contains("`replace`"),
        "{e}"
    );
    // The mode written after `[env]` would be a variable: refused, with where it belongs.
    let e = Policy::parse("p.toml", "[env]\nenv_mode = \"replace\"\n").unwrap_err();
    assert_eq!(e.position, Some((2, 12)));
    assert!(
        e.to_string().contains("before the first `[section]`"),
        "{e}"
    );
    let e = Policy::parse("p.toml", "env_mode = 1\n").unwrap_err();
    assert_eq!(e.position.map(|p| p.0), Some(1));
}
