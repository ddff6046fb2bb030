//! `bb-remote`: the operator's tool (routing inspection, the reference worker, ...).
use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "bb-remote",
    version,
    about = "Operator tool for the bb-remote proving shim"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show how the shim would route a bb invocation: `bb-remote route -- prove -b ...`.
    Route(bb_remote::route::RouteArgs),
    /// Run the reference GA4GH TES proving backend.
    #[cfg(feature = "worker")]
    Worker(Box<bb_remote::worker::WorkerArgs>),
    /// Inspect, verify and prune recorded fixtures (BB_REMOTE_RECORD / BB_REMOTE_REPLAY).
    Fixtures(bb_remote::record::fixtures::FixturesArgs),
    /// Check configuration, store, backend and native bb; exit 1 if anything is broken.
    Doctor(bb_remote::doctor::DoctorArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Route(args) => bb_remote::route::run_cli(args),
        #[cfg(feature = "worker")]
        Command::Worker(args) => bb_remote::worker::run_cli(*args),
        Command::Fixtures(args) => bb_remote::record::fixtures::run_cli(args),
        Command::Doctor(args) => bb_remote::doctor::run_cli(args),
    };
    // A value it was given that it cannot use exits 78, like the shim; anything else 1.
    result.unwrap_or_else(|err| {
        let env = bb_remote::config::Env::from_process();
        ExitCode::from(bb_remote::tool_error(&err, &env))
    })
}
