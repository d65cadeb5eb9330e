use super::*;

fn toolchain(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

fn pin(hash: crate::ModuleHash, recipe: &str) -> Pin {
    Pin {
        blake3: hash.to_string(),
        size: 10,
        recipe: recipe.into(),
        toolchain: toolchain(&[("rustc", "rustc 1.95.0"), ("clang", "clang 14")]),
    }
}

#[test]
fn every_runner_is_pinned() {
    for kind in [RunnerKind::Python, RunnerKind::JavaScript] {
        let pin = kind.pin();
        assert!(
            crate::ModuleHash::parse(&pin.blake3).is_some(),
            "{}: `{}` is not blake3:<hex>",
            kind.name(),
            pin.blake3
        );
        assert_eq!(pin.recipe.len(), 16, "{}", kind.name());
        assert!(!pin.toolchain.is_empty(), "{}", kind.name());
    }
}

#[test]
fn a_matching_runner_passes() {
    let h = crate::ModuleHash::of(b"runner");
    let t = toolchain(&[("rustc", "rustc 1.95.0"), ("clang", "clang 14")]);
    assert_eq!(verify_against(&pin(h, "r1"), "r1", "JS", h, 10, &t), Ok(()));
}

#[test]
fn a_different_size_or_hash_fails() {
    let h = crate::ModuleHash::of(b"runner");
    let other = crate::ModuleHash::of(b"other");
    let t = toolchain(&[("rustc", "rustc 1.95.0"), ("clang", "clang 14")]);
    assert!(verify_against(&pin(h, "r1"), "r1", "JS", h, 11, &t).is_err());
    assert!(verify_against(&pin(h, "r1"), "r1", "JS", other, 10, &t).is_err());
}

#[test]
fn the_message_names_the_toolchain_that_differs() {
    let h = crate::ModuleHash::of(b"runner");
    let other = crate::ModuleHash::of(b"other");
    let t = toolchain(&[("rustc", "rustc 1.96.0"), ("clang", "clang 14")]);
    let msg = verify_against(&pin(h, "r1"), "r1", "JavaScript", other, 10, &t).unwrap_err();
    assert!(
        msg.starts_with("the JavaScript runner built here is blake3:"),
        "{msg}"
    );
    assert!(
        msg.contains("rustc is `rustc 1.96.0` here but `rustc 1.95.0` in the pin"),
        "{msg}"
    );
    assert!(!msg.contains("clang is"), "{msg}");
}

#[test]
fn the_message_names_changed_sources() {
    let h = crate::ModuleHash::of(b"runner");
    let other = crate::ModuleHash::of(b"other");
    let t = toolchain(&[("rustc", "rustc 1.95.0"), ("clang", "clang 14")]);
    let msg = verify_against(&pin(h, "r1"), "r2", "Python", other, 10, &t).unwrap_err();
    assert!(
        msg.contains("its sources changed since the pin (recipe `r2`, pinned `r1`"),
        "{msg}"
    );
}

#[test]
fn the_message_says_when_nothing_explains_the_difference() {
    let h = crate::ModuleHash::of(b"runner");
    let other = crate::ModuleHash::of(b"other");
    let t = toolchain(&[("rustc", "rustc 1.95.0"), ("clang", "clang 14")]);
    let msg = verify_against(&pin(h, "r1"), "r1", "Python", other, 10, &t).unwrap_err();
    assert!(msg.contains("not reproducible on this machine"), "{msg}");
}

#[test]
fn shell_quoting_survives_spaces_and_quotes() {
    assert_eq!(shell_quote("a b"), "'a b'");
    assert_eq!(shell_quote("it's"), "'it'\\''s'");
}
