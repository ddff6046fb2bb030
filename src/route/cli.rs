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
    pub(crate) argv: Vec<std::ffi::OsString>,
}

/// The JSON document printed: `{"verdict":"remote","plan":{...}}` or
/// `{"verdict":"native","reason":{"code":...,"message":...}}`.
#[derive(Debug, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
enum Report<'a> {
    Remote {
        plan: &'a Plan,
    },
    Native {
        reason: &'a NativeReason,
    },
    /// `msgpack run --input <P>.sock`: the shim serves the socket itself.
    MsgpackServer {
        socket: std::path::PathBuf,
        /// Whether this environment enables serving (else bb is exec'd).
        served: bool,
        /// Requests sent to the backend; all others go to one native bb child.
        delegated: &'a [&'a str],
        relayed: &'a str,
    },
}

pub fn run_cli(args: RouteArgs) -> anyhow::Result<ExitCode> {
    let env = Env::from_process();
    if let Some(socket) = crate::grammar::msgpack_run::socket_input(&args.argv) {
        print_json(&serde_json::to_string_pretty(&msgpack_report(
            &env, socket,
        ))?);
        return Ok(ExitCode::SUCCESS);
    }
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

/// What the shim would do with a `msgpack run` socket in this environment.
fn msgpack_report(env: &Env, socket: std::path::PathBuf) -> Report<'static> {
    use crate::env_vars::{BACKEND, RECORD, REPLAY};
    let served = [BACKEND, RECORD, REPLAY]
        .iter()
        .any(|v| env.get(v).is_some());
    let delegating = env.get(BACKEND).is_some() || env.get(REPLAY).is_some();
    Report::MsgpackServer {
        socket,
        served,
        delegated: if delegating {
            super::MSGPACK_DELEGATED
        } else {
            &[]
        },
        relayed: if served {
            "every other request, byte for byte, to one native `bb msgpack run` child"
        } else {
            "nothing: BB_REMOTE_BACKEND, _RECORD and _REPLAY are unset, so bb itself is exec'd"
        },
    }
}

#[expect(
    clippy::print_stdout,
    reason = "the operator asked for this JSON on stdout"
)]
fn print_json(json: &str) {
    println!("{json}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(env: &[(&str, &str)]) -> serde_json::Value {
        let env = Env::from_pairs(env.iter().copied());
        serde_json::to_value(msgpack_report(&env, "/t/bb-1-0-0.sock".into())).unwrap()
    }

    #[test]
    fn a_msgpack_socket_is_explained() {
        let plain = report(&[]);
        assert_eq!(plain["verdict"], "msgpack_server");
        assert_eq!(plain["served"], false);
        assert_eq!(plain["delegated"], serde_json::json!([]));
        let delegating = report(&[("BB_REMOTE_BACKEND", "http://tes")]);
        assert_eq!(delegating["served"], true);
        assert_eq!(
            delegating["delegated"],
            serde_json::json!(["CircuitProve", "AvmProve"])
        );
        let recording = report(&[("BB_REMOTE_RECORD", "/f")]);
        assert_eq!(recording["served"], true);
        assert_eq!(recording["delegated"], serde_json::json!([]));
        let replaying = report(&[("BB_REMOTE_REPLAY", "/f")]);
        assert_eq!(replaying["delegated"], delegating["delegated"]);
    }
}
