//! `router-scenario`: the weighted and adaptive strategies side by side while a simulated
//! provider slows down, fails or rate-limits; see `router-scenario --help`.

use std::process::ExitCode;

use anyhow::Context;
use bench::scenario::{self, Options};
use clap::Parser;

fn main() -> ExitCode {
    let options = Options::parse();
    if let Err(err) = options.validate() {
        eprintln!("router-scenario: {err:#}");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Runtime::new().context("starting the async runtime") {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("router-scenario: {err:#}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(scenario::run(&options)) {
        Ok(table) => {
            print!("{table}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("router-scenario: {err:#}");
            ExitCode::FAILURE
        }
    }
}
