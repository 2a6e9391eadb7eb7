//! `router-bench` command line; see `router-bench --help`.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Context;
use bench::cli::{Args, Plan};
use bench::environment::HostFacts;
use clap::Parser;

fn main() -> ExitCode {
    let args = Args::parse();
    let plan = match Plan::from_args(&args, std::io::stderr().is_terminal()) {
        Ok(plan) => plan,
        Err(err) => {
            eprintln!("router-bench: {err:#}");
            return ExitCode::from(2);
        }
    };
    match run(&args, &plan) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("router-bench: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args, plan: &Plan) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let workdir = std::env::current_dir().context("reading the current directory")?;
    eprintln!("{}", bench::run::describe(plan));
    let candidate = runtime.block_on(bench::run::run(plan, HostFacts::gather(&workdir)));
    // Stop the connections' background tasks before printing.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));

    print!("{}", candidate.to_markdown());
    if let Some(out) = &args.out {
        let md = candidate.write(out)?;
        eprintln!("router-bench: wrote {} and {}", out.display(), md.display());
    }
    if let Some(reason) = &candidate.reason {
        eprintln!("router-bench: run failed: {reason}");
    }
    Ok(match candidate.exit_status {
        0 => ExitCode::SUCCESS,
        _ => ExitCode::FAILURE,
    })
}
