//! The options `run` and `check` share: how the program, policy and invocation are given.

use std::path::{Path, PathBuf};

use corral::compile::{Language, Source};
use corral::job::Invocation;
use corral::{DirGrant, Error, Policy, hostfs};

/// Options shared by `run` and `check`.
#[derive(clap::Args, Debug, Clone)]
pub struct JobArgs {
    /// A bundled policy by name (strict, standard, permissive) or a TOML file. Default: strict.
    #[arg(long, value_name = "NAME|PATH", default_value = "strict")]
    pub policy: String,
    /// Expose a host directory at a guest path: read-only (a private copy) unless `:rw` and
    /// the policy allows it. Repeatable.
    #[arg(long = "dir", value_name = "HOST::GUEST[:ro|:rw]")]
    pub dirs: Vec<String>,
    /// One guest environment variable (repeatable); overrides the policy's `[env]`.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Guest stdin from a file (`-` = this process's stdin, read fully first). Default: empty.
    /// At most the policy's `stdin_bytes`.
    #[arg(long, value_name = "FILE")]
    pub stdin: Option<PathBuf>,
    /// Seed of the guest's random and clock virtualisation (recorded). Default: 0.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,
    /// Print the report as one JSON object on stdout (guest output is inside it).
    #[arg(long)]
    pub json: bool,
    /// The runner of a .py program: `python` (CPython 3.14 with the standard library),
    /// `python-sci` (CPython 3.15 with numpy, pandas, scipy, scikit-learn, …) or `auto`
    /// (the default: `python-sci` when the program imports one of its packages).
    #[arg(long, value_name = "NAME", default_value = "auto")]
    pub runner: String,
}

/// Everything a job needs, from the command line.
#[derive(Debug)]
pub struct Job {
    pub source: Source,
    pub policy: Policy,
    pub invocation: Invocation,
}

impl JobArgs {
    /// Reads the policy, the program at `file` and the inputs; an `invalid_input` error
    /// naming what is wrong.
    pub fn job(&self, file: &Path, args: Vec<String>) -> Result<Job, Error> {
        let policy = Policy::resolve(&self.policy)?;
        let runner = Language::python_runner(&self.runner).ok_or_else(|| {
            Error::invalid_input(format!(
                "`--runner {}`: unknown runner (hint: `python`, `python-sci` or `auto`)",
                self.runner
            ))
        })?;
        let mut source = Source::from_file(file, policy.limits.module_bytes.0)?;
        if source.language == Language::Python {
            source.language = runner;
        } else if self.runner != "auto" {
            return Err(Error::invalid_input(format!(
                "`--runner {}` applies to .py programs only",
                self.runner
            )));
        }
        let mut invocation = Invocation {
            args,
            seed: self.seed,
            ..Invocation::default()
        };
        for kv in &self.env {
            let (k, v) = kv.split_once('=').ok_or_else(|| {
                Error::invalid_input(format!("`--env {kv}` is not of the form KEY=VALUE"))
            })?;
            invocation.env.insert(k.to_string(), v.to_string());
        }
        for d in &self.dirs {
            invocation.dirs.push(DirGrant::parse(d)?);
        }
        if let Some(path) = &self.stdin {
            let max = policy.limits.stdin.0;
            invocation.stdin = if path.as_os_str() == "-" {
                hostfs::read_capped(std::io::stdin().lock(), max)
                    .map_err(|e| Error::invalid_input(format!("cannot read stdin: {e}")))?
            } else {
                hostfs::read_bounded(path, max).map_err(|e| {
                    Error::invalid_input(format!("cannot read `{}`: {e}", path.display()))
                })?
            };
        }
        Ok(Job {
            source,
            policy,
            invocation,
        })
    }
}
