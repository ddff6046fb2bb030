//! `bb-remote route -- <bb argv...>`: show the verdict for an argv as pretty JSON.
//!
//! This is the operator's tool, not the shim, so the JSON goes to stdout. It uses
//! the real process environment and working directory, exactly as the shim would.

use super::plan::Plan;
use super::verdict::{route, NativeReason, Route};
use crate::config::{Env, Settings};
use crate::grammar::parse;
use serde::Serialize;
use std::process::ExitCode;

/// `bb-remote route -- <bb argv...>`: print the verdict and plan as JSON.
#[derive(Debug, clap::Args)]
pub struct RouteArgs {
    /// bb's argv, after `--` (without the program name).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub argv: Vec<std::ffi::OsString>,
}

/// The JSON document printed: `{"verdict":"remote","plan":{...}}` or
/// `{"verdict":"native","reason":{"code":...,"message":...}}`.
#[derive(Debug, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
enum Report<'a> {
    Remote { plan: &'a Plan },
    Native { reason: &'a NativeReason },
}

pub fn run_cli(args: RouteArgs) -> anyhow::Result<ExitCode> {
    let env = Env::from_process();
    let cwd = std::env::current_dir()?;
    let settings = match Settings::load(&env) {
        Ok(settings) => settings,
        Err(err) => {
            crate::diag::error(&err);
            return Ok(ExitCode::from(crate::exit::CONFIG));
        }
    };
    let invocation = parse(&args.argv, &env, settings.grammar_hint());
    let verdict = route(&invocation, &settings.delegate, &cwd);
    let report = match &verdict {
        Route::Remote(plan) => Report::Remote { plan },
        Route::Native(reason) => Report::Native { reason },
    };
    print_json(&serde_json::to_string_pretty(&report)?);
    Ok(ExitCode::SUCCESS)
}

#[expect(
    clippy::print_stdout,
    reason = "the operator asked for this JSON on stdout"
)]
fn print_json(json: &str) {
    println!("{json}");
}
