//! A whole job: source file in, report out (compile → admit → run).
//!
//! This is what `corral run` and `corral check` do, as a library call, so embedders and the
//! evaluation harness get exactly the CLI's behaviour.

use std::collections::BTreeMap;

use crate::AuditTrail;
use crate::compile::{self, Compiled, Language};
use crate::engine::{Engine, GuestModule};
use crate::error::{Error, ErrorKind};
use crate::policy::Policy;
use crate::report::RunReport;
use crate::sandbox::{DirGrant, Finished, RunInputs};
use crate::verdict::Verdict;

/// Everything one run needs.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The source or wasm bytes.
    pub source: Vec<u8>,
    /// The file name as the user gave it (used in messages, never shown to the guest).
    pub name: String,
    /// How to turn `source` into wasm.
    pub language: Language,
    /// The policy.
    pub policy: Policy,
    /// Guest arguments after `argv[0]`.
    pub args: Vec<String>,
    /// Guest environment from the invocation (merged over the policy's).
    pub env: BTreeMap<String, String>,
    /// Guest stdin.
    pub stdin: Vec<u8>,
    /// Directory grants.
    pub dirs: Vec<DirGrant>,
    /// Seed of the virtual random streams.
    pub seed: u64,
    /// Keep input bytes for a record.
    pub keep_inputs: bool,
    /// The case input offered through `corral_v1` (the guest SDK).
    pub input: Option<std::sync::Arc<[u8]>>,
}

impl RunRequest {
    /// A request with deny-by-default inputs: no args, no env, empty stdin, no dirs, seed 0.
    pub fn new(
        source: Vec<u8>,
        name: impl Into<String>,
        language: Language,
        policy: Policy,
    ) -> RunRequest {
        RunRequest {
            source,
            name: name.into(),
            language,
            policy,
            args: Vec::new(),
            env: BTreeMap::new(),
            stdin: Vec::new(),
            dirs: Vec::new(),
            seed: 0,
            keep_inputs: false,
            input: None,
        }
    }
}

/// The outcome of a request: the report, plus (when the guest ran) the trail and inputs.
#[derive(Debug)]
pub struct Outcome {
    /// The report (every verdict, including compile errors and rejections).
    pub report: RunReport,
    /// The admitted module, when admission succeeded.
    pub module: Option<GuestModule>,
    /// The trail and inputs, when the guest ran.
    pub run: Option<(AuditTrail, RunInputs)>,
}

/// `` `NAME` failed to compile: FIRST ERROR `` (the first line that says `error`, else the
/// first line).
fn compile_message(name: &str, diag: &str) -> String {
    let first = diag
        .lines()
        .map(str::trim)
        .find(|l| l.contains("error") || l.starts_with("the compiler"))
        .or_else(|| diag.lines().map(str::trim).find(|l| !l.is_empty()))
        .unwrap_or("");
    let first: String = first.chars().take(200).collect();
    if first.is_empty() {
        format!("`{name}` failed to compile")
    } else {
        format!("`{name}` failed to compile: {first}")
    }
}

fn early(verdict: Verdict, message: String) -> Outcome {
    Outcome {
        report: RunReport::without_run(verdict, message),
        module: None,
        run: None,
    }
}

impl Engine {
    /// Writes the run record of `outcome` into `store` (when the guest ran) and sets the
    /// report's `record` to its path.
    ///
    /// # Errors
    ///
    /// The store cannot be written. (The request must have had `keep_inputs` set for input
    /// directories to be recorded.)
    pub fn record(
        &self,
        req: &RunRequest,
        outcome: &mut Outcome,
        store: &crate::record::Store,
    ) -> Result<Option<std::path::PathBuf>, Error> {
        let (Some(module), Some((trail, inputs))) = (&outcome.module, &outcome.run) else {
            return Ok(None);
        };
        let path = crate::record::write(
            store,
            crate::record::RecordParts {
                module,
                language: req.language,
                policy: &req.policy,
                inputs,
                report: &outcome.report,
                trail,
                engine: self.identity(),
            },
        )?;
        outcome.report.record = Some(path.display().to_string());
        Ok(Some(path))
    }

    /// Compiles and admits `req` without running it (`corral check`).
    ///
    /// # Errors
    ///
    /// Host failures only; compile errors and rejections are verdicts.
    pub fn check_request(&self, req: &RunRequest) -> Result<Outcome, Error> {
        Ok(self.prepare_request(req)?.0)
    }

    /// Compiles and admits; returns the outcome so far and, for interpreted languages, the
    /// program text that becomes `argv[1]`.
    ///
    /// # Errors
    ///
    /// Host failures only.
    pub fn prepare_request(&self, req: &RunRequest) -> Result<(Outcome, Option<String>), Error> {
        let compiled = compile::compile(
            req.language,
            &req.source,
            &req.name,
            &self.config().temp_root,
            self.config().cache_dir.as_deref(),
        )?;
        let runner = match &compiled {
            Compiled::Runner { runner, .. } => Some(runner.kind),
            _ => None,
        };
        let (admitted, program) = match compiled {
            Compiled::Wasm(w) => (
                self.admit(&w, &req.policy)
                    .map_err(|r| (r, crate::ModuleHash::of(&w))),
                None,
            ),
            Compiled::Runner { runner, source } => (
                self.admit_file(&runner.wasm, runner.hash, &req.policy)
                    .map_err(|r| (r, runner.hash)),
                Some(source),
            ),
            Compiled::Error(diag) => {
                let mut o = early(
                    Verdict::CompileError(diag.clone()),
                    compile_message(&req.name, &diag),
                );
                o.report.diagnostics = Some(diag);
                return Ok((o, None));
            }
        };
        match admitted {
            Ok(module) => {
                let message = match runner {
                    Some(kind) => format!(
                        "the program was admitted, to run on the {} runner ({} bytes)",
                        kind.name(),
                        module.info().size
                    ),
                    None => format!(
                        "the module was admitted ({} functions, {} bytes)",
                        module.info().functions,
                        module.info().size
                    ),
                };
                let mut report = RunReport::without_run(Verdict::Ok, message);
                report.module_hash = Some(module.hash());
                Ok((
                    Outcome {
                        report,
                        module: Some(module),
                        run: None,
                    },
                    program,
                ))
            }
            Err((rejection, hash)) => {
                let mut o = early(
                    Verdict::Rejected(rejection.0.clone()),
                    format!("the module was rejected: {}", rejection.0),
                );
                o.report.module_hash = Some(hash);
                Ok((o, None))
            }
        }
    }

    /// Compiles, admits and runs `req` (`corral run`).
    ///
    /// # Errors
    ///
    /// Host failures only. Invalid invocations (bad arguments, environment, directory
    /// grants) come back as an `invalid_input` verdict, compile errors and rejections as
    /// theirs.
    pub async fn run_request(&self, req: &RunRequest) -> Result<Outcome, Error> {
        let (checked, program) = self.prepare_request(req)?;
        let Some(module) = checked.module else {
            return Ok(checked);
        };
        let mut b = self.sandbox(&module, &req.policy);
        if let Some(source) = program {
            // Interpreters get the display name as argv[0] and the program as argv[1].
            b = b.argv0(req.name.clone()).args([source]);
            if req.language == compile::Language::JavaScript {
                b = b.env(
                    crate::compile::runner::JS_STACK_ENV.0,
                    crate::compile::runner::JS_STACK_ENV.1,
                );
            }
        }
        let mut b = b
            .args(req.args.iter().cloned())
            .stdin(req.stdin.clone())
            .seed(req.seed)
            .input(req.input.clone())
            .keep_inputs(req.keep_inputs);
        for (k, v) in &req.env {
            b = b.env(k.clone(), v.clone());
        }
        for d in &req.dirs {
            b = b.dir(d.clone());
        }
        let sandbox = match b.build() {
            Ok(s) => s,
            Err(e) if *e.kind() == ErrorKind::InvalidInput => {
                let mut o = early(
                    Verdict::InvalidInput(e.message().to_string()),
                    e.message().to_string(),
                );
                o.report.module_hash = Some(module.hash());
                return Ok(o);
            }
            Err(e) => return Err(e),
        };
        let finished: Finished = match sandbox.run_full().await {
            Ok(f) => f,
            Err(e) if *e.kind() == ErrorKind::InvalidInput => {
                let mut o = early(
                    Verdict::InvalidInput(e.message().to_string()),
                    e.message().to_string(),
                );
                o.report.module_hash = Some(module.hash());
                return Ok(o);
            }
            Err(e) => return Err(e),
        };
        Ok(Outcome {
            report: finished.report,
            module: Some(module),
            run: Some((finished.trail, finished.inputs)),
        })
    }
}
