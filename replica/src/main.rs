//! `replica`: see the library docs and `replica --help`.

use std::process::ExitCode;

fn main() -> ExitCode {
    replica::run_cli(std::env::args_os())
}
