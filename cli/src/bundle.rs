//! `corral bundle`: one self-contained file holding a record and every blob it needs.

use std::path::PathBuf;
use std::process::ExitCode;

use corral::exit;
use corral::record::RecordStore;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The record to bundle.
    record: PathBuf,
    /// The bundle file to write.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// The store holding the record's blobs (default: the one the record sits in).
    #[arg(long, value_name = "DIR")]
    store: Option<PathBuf>,
}

pub fn main(a: Args) -> ExitCode {
    match corral::replay::bundle(&a.record, &a.output, a.store.map(RecordStore::new)) {
        Ok(p) => {
            eprintln!("corral: wrote {}", p.display());
            ExitCode::from(exit::OK)
        }
        Err(e) => {
            eprintln!("corral: {e}");
            ExitCode::from(e.exit_status())
        }
    }
}
