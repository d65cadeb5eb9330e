//! `corral._corral`: the native half of the `corral` Python package.
//!
//! A thin layer over the library's job stage ([`corral::job`]), evaluation
//! ([`corral::eval`]) and replay ([`corral::replay`]): it converts Python arguments into a
//! [`corral::compile::Source`], a [`corral::Policy`] and a [`corral::Invocation`], runs them
//! exactly as the `corral` command does, and converts the [`corral::RunReport`] back. It
//! never builds a sandbox itself.
//!
//! - Every call that runs guests releases the GIL (`Python::detach`) and blocks on one
//!   process-wide tokio runtime, so Python threads run guests in parallel.
//! - The `*_async` methods return an `asyncio` future: the job runs on the runtime's workers
//!   and the result is handed to the event loop with `call_soon_threadsafe`.
//! - Host failures and invalid input raise the exceptions of `corral.errors`; a guest's
//!   misbehaviour is a `Report`, never an exception.
//!
//! The Python API, its docstrings and stubs are in `python/corral/`.

use std::sync::Mutex;

use pyo3::prelude::*;

mod convert;
mod engine;
mod inputs;
mod results;
mod signals;

/// The process's runtime: multi-threaded, one worker per core, created on first use. A
/// process forked after that gets its own (a runtime's threads do not survive `fork`).
fn runtime() -> PyResult<&'static tokio::runtime::Runtime> {
    static RT: Mutex<Option<(u32, &'static tokio::runtime::Runtime)>> = Mutex::new(None);
    let pid = std::process::id();
    let mut slot = RT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((owner, rt)) = *slot
        && owner == pid
    {
        return Ok(rt);
    }
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .thread_name("corral")
        .enable_time()
        .build()
        .map_err(|e| errors::host(format!("cannot start the runtime: {e}")))?;
    // Leaked on purpose: it lives as long as the process (a forked child's copy is never
    // dropped either, since its threads do not exist there).
    let rt: &'static tokio::runtime::Runtime = Box::leak(Box::new(rt));
    *slot = Some((pid, rt));
    Ok(rt)
}

/// Something to do with the GIL held: settle an `asyncio` future with a job's result.
pub(crate) type Completion = Box<dyn FnOnce(Python<'_>) + Send>;

/// Hands `done` to the process's completion thread, which takes the GIL once for every
/// completion waiting and runs them. So the runtime's workers, which run guests, never block
/// on the GIL (the event loop's thread may hold it for a while), and completions that finish
/// together cost one GIL acquisition.
pub(crate) fn complete(done: Completion) {
    static TX: Mutex<Option<(u32, std::sync::mpsc::Sender<Completion>)>> = Mutex::new(None);
    let pid = std::process::id();
    let mut slot = TX.lock().unwrap_or_else(|p| p.into_inner());
    if !matches!(&*slot, Some((owner, _)) if *owner == pid) {
        let (tx, rx) = std::sync::mpsc::channel::<Completion>();
        let spawned = std::thread::Builder::new()
            .name("corral-complete".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    // None: the interpreter is shutting down, and nobody is waiting.
                    let _ = Python::try_attach(|py| {
                        first(py);
                        while let Ok(next) = rx.try_recv() {
                            next(py);
                        }
                    });
                }
            });
        if spawned.is_err() {
            // No thread: settle it here, as a last resort.
            drop(slot);
            let _ = Python::try_attach(done);
            return;
        }
        *slot = Some((pid, tx));
    }
    if let Some((_, tx)) = &*slot {
        let _ = tx.send(done);
    }
}

/// Runs `work` to completion on this thread, on a current-thread runtime of this thread's
/// own: what a single run needs, without waking the shared runtime's workers (measured: the
/// multi-threaded runtime's `block_on` from a Python thread costs tens of microseconds more
/// per call). Calls that run many guests at once use [`runtime`] instead.
fn block_on_here<F: std::future::Future>(work: F) -> PyResult<F::Output> {
    thread_local! {
        static LOCAL: std::cell::RefCell<Option<(u32, tokio::runtime::Runtime)>> =
            const { std::cell::RefCell::new(None) };
    }
    LOCAL.with(|local| {
        let mut local = local.borrow_mut();
        let pid = std::process::id();
        if local.as_ref().is_none_or(|(owner, _)| *owner != pid) {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .map_err(|e| errors::host(format!("cannot start the runtime: {e}")))?;
            // A runtime inherited through fork is forgotten, never dropped: its blocking
            // threads do not exist in this process.
            if let Some((_, old)) = local.replace((pid, rt)) {
                std::mem::forget(old);
            }
        }
        match local.as_ref() {
            Some((_, rt)) => Ok(rt.block_on(work)),
            None => Err(errors::host("no runtime")),
        }
    })
}

/// The exceptions of `corral.errors` (defined in Python so that they can subclass both
/// `CorralError` and the matching builtin).
pub(crate) mod errors {
    use pyo3::prelude::*;
    use pyo3::types::PyType;

    fn raise(name: &'static str, message: String) -> PyErr {
        Python::attach(|py| {
            let ty = py
                .import("corral.errors")
                .and_then(|m| m.getattr(name))
                .and_then(|t| t.cast_into::<PyType>().map_err(PyErr::from));
            match ty {
                Ok(ty) => PyErr::from_type(ty, message),
                Err(e) => e,
            }
        })
    }

    /// `corral.errors.HostError`: corral itself failed.
    pub(crate) fn host(message: impl Into<String>) -> PyErr {
        raise("HostError", message.into())
    }

    /// `corral.errors.InvalidInputError`: the caller's input is invalid.
    pub(crate) fn invalid(message: impl Into<String>) -> PyErr {
        raise("InvalidInputError", message.into())
    }

    /// `corral.errors.RecordError`: a record was refused (invalid, altered, not allowed).
    pub(crate) fn record(message: impl Into<String>) -> PyErr {
        raise("RecordError", message.into())
    }

    /// The exception for a library error, by its kind (never by its message).
    pub(crate) fn from_corral(e: corral::Error) -> PyErr {
        let name = match e.kind() {
            corral::ErrorKind::InvalidInput => "InvalidInputError",
            corral::ErrorKind::Policy => "PolicyError",
            _ => "HostError",
        };
        raise(name, e.to_string())
    }
}

/// `blake3:<hex>` of the file at `path`, as corral names modules (`module_hash`): used to
/// check a bundled runner before it is installed into a cache.
#[pyfunction]
fn module_hash_of_file(py: Python<'_>, path: std::path::PathBuf) -> PyResult<String> {
    let bytes = py
        .detach(|| std::fs::read(&path))
        .map_err(|e| errors::host(format!("cannot read `{}`: {e}", path.display())))?;
    Ok(corral::ModuleHash::of(&bytes).to_string())
}

/// The native module.
#[pymodule]
fn _corral(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<engine::Engine>()?;
    m.add_class::<engine::Program>()?;
    m.add_class::<inputs::Policy>()?;
    m.add_class::<results::Report>()?;
    m.add_class::<results::CaseResult>()?;
    m.add_class::<results::EvalResult>()?;
    m.add_class::<results::HumanEvalResult>()?;
    m.add_class::<results::ReplayResult>()?;
    m.add_function(wrap_pyfunction!(results::pass_at_k, m)?)?;
    m.add_function(wrap_pyfunction!(module_hash_of_file, m)?)?;
    m.add("WASMTIME_VERSION", corral::WASMTIME_VERSION)?;
    m.add("CORRAL_VERSION", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
