//! The `bb` shim's main: environment → settings → (parse → route → run) or passthrough.
//!
//! While `BB_REMOTE_BACKEND` is unset the shim is pure passthrough: it checks the
//! `BB_REMOTE_*` values (string comparisons) and hands argv to the native bb without
//! parsing it, so passthrough costs next to nothing.

use crate::config::{Env, Settings};
use crate::{exit, native};
use std::ffi::OsString;
use std::process::ExitCode;

pub fn main() -> ExitCode {
    let env = Env::from_process();
    let argv: Vec<OsString> = std::env::args_os().collect();
    ExitCode::from(run(&env, &argv))
}

/// The shim's whole behaviour for one invocation; returns the exit code.
pub fn run(env: &Env, argv: &[OsString]) -> u8 {
    let settings = match Settings::load(env) {
        Ok(s) => s,
        Err(err) => return report(&err, exit::CONFIG),
    };
    if settings.is_passthrough() {
        return passthrough(env, argv);
    }
    crate::diag::init(env);
    crate::logging::init_with(&settings.log, "warn");
    if let Some(code) = crate::msgpack::intercept(&settings, env, argv) {
        return code;
    }
    if let Some(code) = crate::record::intercept(&settings, env, argv) {
        return code;
    }
    crate::delegate::run(&settings, env, argv)
}

/// Hand the invocation to the native bb (exec or dlopen); the exit code on failure.
pub(crate) fn passthrough(env: &Env, argv: &[OsString]) -> u8 {
    match native::passthrough(env, argv) {
        Ok(code) => code,
        Err(err) => report(&err, err.exit_code()),
    }
}

/// The shim's own error line: always stderr, prefixed so it is told apart from bb's.
pub(crate) fn report(err: &dyn std::fmt::Display, code: u8) -> u8 {
    crate::diag::error(err);
    code
}

/// A single-threaded runtime for the delegated and recording paths (one invocation per
/// process), or the exit code to give. Passthrough never builds one.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, u8> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|err| report(&format!("starting the async runtime: {err}"), exit::IO))
}
