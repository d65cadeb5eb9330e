//! The `corral` command line. Argument parsing and output only; the logic is in the library.

mod bench;
mod cli;
mod evalcmd;
mod output;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
