//! The policies embedded in the binary (`policies/*.toml` at the repository root).

/// `(name, TOML source)` of every bundled policy.
pub const BUNDLED: &[(&str, &str)] = &[
    ("strict", include_str!("../../../policies/strict.toml")),
    ("standard", include_str!("../../../policies/standard.toml")),
    (
        "permissive",
        include_str!("../../../policies/permissive.toml"),
    ),
];

/// The names of the bundled policies, in order of increasing authority.
pub fn bundled_names() -> Vec<&'static str> {
    BUNDLED.iter().map(|(n, _)| *n).collect()
}

pub(super) fn source(name: &str) -> Option<&'static str> {
    BUNDLED.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
}
