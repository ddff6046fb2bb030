//! The routing verdict: `Remote(plan)` or `Native(reason)`. No I/O.
//!
//! Order of the checks: the parse outcome (anything bb would reject, print help
//! for, or that this crate does not model goes native so bb answers it itself),
//! then the delegated set, then whether a faithful plan can be built (`build.rs`).

use super::build::build_plan;
use super::plan::Plan;
use crate::config::DelegateSet;

use crate::grammar::{Invocation, Parsed};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Where an invocation runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Remote(Plan),
    Native(NativeReason),
}

/// Why an invocation runs on the native bb: a stable code for machines and tests,
/// and a sentence for people (logged at debug level by the shim).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NativeReason {
    pub code: NativeCode,
    pub message: String,
}

/// Stable machine codes of [`NativeReason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NativeCode {
    /// An argument is not UTF-8.
    NotUtf8,
    /// No command: bb prints usage or help.
    NoCommand,
    /// Help or version output.
    Informational,
    /// bb does not know the command.
    UnknownCommand,
    /// bb's own parser rejects the argv (CLI11 105/109/114).
    BbParseError,
    /// Valid for bb, but in a form this crate does not model.
    UnsupportedSyntax,
    /// Not in the delegated set (the default heavy set or `BB_REMOTE_DELEGATE`).
    NotDelegated,
    /// The command has no remote plan: it writes single files or stdout, or its
    /// arguments are not modelled (`msgpack`, ...).
    NoPlan,
    /// `prove`/`write_vk` with a scheme other than `ultra_honk` (chonk, avm, client_ivc).
    SchemeNotDelegated,
    /// `-o -` (stdout).
    StdoutOutput,
    /// An empty string as a file path.
    EmptyPath,
    /// A legacy token bb ignores but whose meaning here is unknown.
    UnknownArgument,
    /// A legacy token that is both an option and another option's value.
    AmbiguousArgv,
    /// An option that writes a file outside the output directory.
    ExtraOutput,
    /// The working directory is not an absolute UTF-8 path.
    BadWorkingDirectory,
}

impl NativeReason {
    pub(crate) fn new(code: NativeCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Decide where `invocation` runs. `cwd` is the directory bb would run in (relative
/// paths resolve against it); `delegate` is the configured set of commands to delegate.
pub fn route(invocation: &Invocation, delegate: &DelegateSet, cwd: &Path) -> Route {
    match decide(invocation, delegate, cwd) {
        Ok(plan) => Route::Remote(plan),
        Err(reason) => Route::Native(reason),
    }
}

fn decide(
    invocation: &Invocation,
    delegate: &DelegateSet,
    cwd: &Path,
) -> Result<Plan, NativeReason> {
    use NativeCode as C;
    let grammar = invocation.generation.as_str();
    let command = match &invocation.parsed {
        Parsed::Command(c) => c,
        Parsed::NotUtf8 { index } => {
            return Err(NativeReason::new(
                C::NotUtf8,
                format!("argument {} is not valid UTF-8", index + 1),
            ))
        }
        Parsed::NoCommand => return Err(NativeReason::new(C::NoCommand, "no command given")),
        Parsed::Informational { token } => {
            return Err(NativeReason::new(
                C::Informational,
                format!("`{token}` asks bb for help or its version"),
            ))
        }
        Parsed::UnknownCommand { name } => {
            return Err(NativeReason::new(
                C::UnknownCommand,
                format!("{grammar} bb has no command `{name}`"),
            ))
        }
        Parsed::BbError { exit_code, message } => {
            let msg = format!("{grammar} bb rejects this argv (exit {exit_code}): {message}");
            return Err(NativeReason::new(C::BbParseError, msg));
        }
        Parsed::Unsupported { message } => {
            return Err(NativeReason::new(C::UnsupportedSyntax, message.clone()))
        }
    };
    if !delegate.contains(invocation.generation, command.name()) {
        let msg = format!(
            "{grammar} command `{}` is not in the delegated set",
            command.name()
        );
        return Err(NativeReason::new(C::NotDelegated, msg));
    }
    let cwd = cwd.to_str().filter(|_| cwd.is_absolute()).ok_or_else(|| {
        NativeReason::new(
            C::BadWorkingDirectory,
            format!("working directory {cwd:?} is not an absolute UTF-8 path"),
        )
    })?;
    build_plan(invocation, command, cwd)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Env;
    use crate::grammar::{parse, GrammarHint};

    fn code(line: &str) -> NativeCode {
        let argv: Vec<std::ffi::OsString> = line.split_whitespace().map(Into::into).collect();
        let inv = parse(&argv, &Env::default(), GrammarHint::Auto);
        match route(&inv, &DelegateSet::Default, Path::new("/w")) {
            Route::Native(reason) => reason.code,
            Route::Remote(plan) => panic!("{line}: remote {plan:?}"),
        }
    }

    #[test]
    fn parse_outcomes_map_to_codes() {
        assert_eq!(code(""), NativeCode::NoCommand);
        assert_eq!(code("--version"), NativeCode::Informational);
        assert_eq!(code("nope"), NativeCode::UnknownCommand);
        assert_eq!(code("prove -b a -b b"), NativeCode::BbParseError);
        assert_eq!(code("verify"), NativeCode::NotDelegated);
    }

    #[test]
    fn codes_serialise_in_snake_case() {
        let reason = NativeReason::new(NativeCode::SchemeNotDelegated, "x");
        let json = serde_json::to_string(&reason).unwrap();
        assert_eq!(json, r#"{"code":"scheme_not_delegated","message":"x"}"#);
    }
}
