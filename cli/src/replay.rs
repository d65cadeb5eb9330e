//! `corral replay`: re-execute a recorded run and verify it bit-for-bit.

use std::path::PathBuf;
use std::process::ExitCode;

use corral::record::RecordStore;
use corral::replay::{self, ReplayOptions};
use corral::{Policy, exit, job};

use crate::{output, setup};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A record (`.json`, as printed in a report's `record`) or a bundle file.
    record: PathBuf,
    /// Print the replayed report as one JSON object, plus `identical`, `divergence`, `notes`.
    #[arg(long)]
    json: bool,
    /// Replay a record made by another corral version or configuration anyway, and say what
    /// may differ.
    #[arg(long)]
    best_effort: bool,
    /// Look for blobs in this store first (default: the store the record sits in, then
    /// $CORRAL_HOME/store or ~/.local/share/corral/store).
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
    /// The most a record's policy may grant (a bundled policy or a TOML file). Default:
    /// permissive.
    #[arg(long, value_name = "NAME|PATH", default_value = "permissive")]
    ceiling: String,
}

pub fn main(a: Args) -> ExitCode {
    let rt = match setup::current_thread() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let engine = match setup::engine(None, None) {
        Ok(e) => e,
        Err(e) => output::finish(&job::error_report(&e), a.json, false, exit::HOST),
    };
    let ceiling = match Policy::resolve(&a.ceiling) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("corral: {e}");
            return ExitCode::from(exit::INVALID);
        }
    };
    let opts = ReplayOptions {
        best_effort: a.best_effort,
        ceiling,
        store: a.store.map(RecordStore::new),
    };
    let result = rt.block_on(replay::replay(&engine, &a.record, &opts));
    engine.remove_work_dir();
    match result {
        Ok(r) => {
            if a.json {
                output::print_json(&r.to_json());
            } else {
                output::pass_through(&r.report);
                eprint!("{}", output::summary(&r.report, true));
                eprint!("{}", output::replay_text(&r));
            }
            ExitCode::from(if r.identical { exit::OK } else { exit::GUEST })
        }
        Err(e) => {
            if a.json {
                output::print_json(&e.to_json());
            } else {
                eprintln!("corral: replay refused: {e}");
            }
            ExitCode::from(e.exit_status())
        }
    }
}
