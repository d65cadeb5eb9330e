//! Guest paths: absolute, normalised paths inside the sandbox's virtual filesystem.

use std::fmt;

/// Longest guest path accepted, in bytes.
pub const MAX_GUEST_PATH_BYTES: usize = 1024;
/// Longest path component accepted, in bytes.
pub const MAX_COMPONENT_BYTES: usize = 255;

/// An absolute, normalised guest path such as `/tmp` or `/data/in`: starts with `/`, has no
/// empty, `.` or `..` components, no trailing `/`, no NUL, and is not `/` itself.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub struct GuestPath(String);

impl TryFrom<String> for GuestPath {
    type Error = GuestPathError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        GuestPath::new(&s)
    }
}

impl From<GuestPath> for String {
    fn from(p: GuestPath) -> String {
        p.0
    }
}

/// Why a string is not a [`GuestPath`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuestPathError {
    /// Empty string.
    #[error("guest path is empty")]
    Empty,
    /// Does not start with `/`.
    #[error("guest path `{0}` is not absolute")]
    NotAbsolute(String),
    /// Is `/` itself.
    #[error("guest path `/` cannot be a mount point")]
    Root,
    /// Contains `//`, `.`, `..` or a trailing `/`.
    #[error("guest path `{0}` is not normalised")]
    NotNormalised(String),
    /// Contains a NUL byte.
    #[error("guest path `{0}` contains a NUL byte")]
    Nul(String),
    /// Too long overall or in one component.
    #[error("guest path `{0}` is too long")]
    TooLong(String),
}

impl GuestPathError {
    /// A hint for the user.
    pub fn hint(&self) -> &'static str {
        match self {
            GuestPathError::Empty | GuestPathError::NotAbsolute(_) | GuestPathError::Root => {
                "use an absolute path below `/`, such as `/tmp` or `/data`"
            }
            GuestPathError::NotNormalised(_) => {
                "write it without `.`, `..`, `//` or a trailing `/`, e.g. `/data/in`"
            }
            GuestPathError::Nul(_) => "remove the NUL byte",
            GuestPathError::TooLong(_) => "paths are at most 1024 bytes, components 255",
        }
    }
}

impl GuestPath {
    /// Validates `s` as a guest path.
    ///
    /// # Errors
    ///
    /// See [`GuestPathError`].
    pub fn new(s: &str) -> Result<GuestPath, GuestPathError> {
        let shown = || s.escape_debug().to_string();
        if s.is_empty() {
            return Err(GuestPathError::Empty);
        }
        if s.contains('\0') {
            return Err(GuestPathError::Nul(shown()));
        }
        if !s.starts_with('/') {
            return Err(GuestPathError::NotAbsolute(shown()));
        }
        if s == "/" {
            return Err(GuestPathError::Root);
        }
        if s.len() > MAX_GUEST_PATH_BYTES {
            return Err(GuestPathError::TooLong(shown()));
        }
        for comp in s[1..].split('/') {
            if comp.is_empty() || comp == "." || comp == ".." {
                return Err(GuestPathError::NotNormalised(shown()));
            }
            if comp.len() > MAX_COMPONENT_BYTES {
                return Err(GuestPathError::TooLong(shown()));
            }
        }
        Ok(GuestPath(s.to_string()))
    }

    /// The path as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `self` equals `other` or one contains the other (`/a` and `/a/b`).
    pub fn overlaps(&self, other: &GuestPath) -> bool {
        let (a, b) = (self.as_str(), other.as_str());
        a == b || is_under(a, b) || is_under(b, a)
    }
}

fn is_under(child: &str, parent: &str) -> bool {
    child.len() > parent.len()
        && child.starts_with(parent)
        && child.as_bytes()[parent.len()] == b'/'
}

impl fmt::Display for GuestPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
