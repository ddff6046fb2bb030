//! The shim's own exit codes. bb's codes (0, 1, 105, 109, 114, signals) pass through
//! untouched; these sysexits-style values are ones bb never uses.

/// A `BB_REMOTE_*` variable has a value the shim cannot use (EX_CONFIG).
pub const CONFIG: u8 = 78;
/// No native bb could be found or loaded (EX_UNAVAILABLE).
pub const NATIVE_MISSING: u8 = 69;
/// The backend could not be reached or failed after retries (EX_TEMPFAIL).
pub const BACKEND_UNAVAILABLE: u8 = 75;
/// The backend refused the request (a 4xx), or its answer is unusable: outputs that
/// fail their digest, unsafe names, an oversized answer (EX_PROTOCOL).
pub(crate) const BACKEND_REJECTED: u8 = 76;
/// A local I/O failure of the shim itself, e.g. writing outputs (EX_IOERR).
pub(crate) const IO: u8 = 74;
/// Replay mode found no fixture for this invocation (EX_NOINPUT).
pub(crate) const REPLAY_MISS: u8 = 66;
/// Fixture data is corrupt or of an unknown format (EX_DATAERR).
pub(crate) const FIXTURE_INVALID: u8 = 65;
/// Interrupted by SIGINT / SIGTERM in any phase of a delegated call (shell convention 128+n).
pub(crate) const SIGINT: u8 = 130;
pub(crate) const SIGTERM: u8 = 143;

/// Every code with its meaning, for the README table and `bb-remote doctor`.
pub const ALL: &[(u8, &str)] = &[
    (
        CONFIG,
        "configuration error: a BB_REMOTE_* variable is invalid",
    ),
    (
        NATIVE_MISSING,
        "native bb not found, not loadable, or the symbol is missing",
    ),
    (
        BACKEND_UNAVAILABLE,
        "backend unreachable, failing after retries, or BB_REMOTE_TIMEOUT reached (and fallback is off)",
    ),
    (
        BACKEND_REJECTED,
        "backend rejected the task (4xx), or answered something unusable (outputs that fail their digest, unsafe names, oversized answers)",
    ),
    (
        IO,
        "local I/O error while reading inputs or writing outputs",
    ),
    (
        REPLAY_MISS,
        "replay: no recorded fixture matches this invocation",
    ),
    (
        FIXTURE_INVALID,
        "replay: fixture corrupt, of an unknown format version, or not a regular file",
    ),
    (
        SIGINT,
        "interrupted by SIGINT (the task this call created is cancelled)",
    ),
    (
        SIGTERM,
        "terminated by SIGTERM (the task this call created is cancelled)",
    ),
];

/// Which signal asked the shim to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Interrupt {
    Int,
    Term,
}

impl Interrupt {
    /// Shell convention: 128 + signal number.
    pub(crate) fn exit_code(self) -> u8 {
        match self {
            Interrupt::Int => SIGINT,
            Interrupt::Term => SIGTERM,
        }
    }
}

/// A bb exit code as this process's exit code: 0-255 as is; a death by signal n,
/// reported either as 128+n or as -n, becomes 128+n (shell convention); anything
/// else is 1. The one mapping for remote, recorded and child exit codes.
pub(crate) fn of_remote(code: i32) -> u8 {
    match code {
        0..=255 => code as u8,
        -255..=-1 => (128 - code).min(255) as u8,
        _ => 1,
    }
}

/// `bb-remote` (the operator tool) when it cannot go on for a reason other than its
/// configuration, and `bb-remote doctor` when a check other than `config` failed.
pub(crate) const TOOL_FAILED: u8 = 1;

/// The operator tool's exit code for an error it stopped on: [`CONFIG`] when a value it
/// was given is the cause (a flag or a `BB_REMOTE_*` variable, typed as
/// [`crate::config::BadValue`] anywhere in the chain), like the shim; else [`TOOL_FAILED`].
pub(crate) fn of_tool_error(err: &anyhow::Error) -> u8 {
    if err.chain().any(|e| e.is::<crate::config::BadValue>()) {
        CONFIG
    } else {
        TOOL_FAILED
    }
}

/// A child's status as bb's exit code: its code, or 128+n for a death by signal n.
pub(crate) fn of_status(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|n| 128 + n))
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_map_like_a_shell() {
        assert_eq!(of_remote(0), 0);
        assert_eq!(of_remote(1), 1);
        assert_eq!(of_remote(134), 134);
        assert_eq!(of_remote(-9), 137);
        assert_eq!(of_remote(1000), 1);
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(of_status(std::process::ExitStatus::from_raw(9)), 137);
        assert_eq!(of_status(std::process::ExitStatus::from_raw(3 << 8)), 3);
    }

    #[test]
    fn the_operator_tool_exits_78_only_for_a_bad_value() {
        let bad = crate::config::BadValue {
            name: "--cpus".into(),
            value: "0".into(),
            expected: "at least one".into(),
        };
        let err = anyhow::Error::new(bad).context("starting the worker");
        assert_eq!(of_tool_error(&err), CONFIG);
        assert_eq!(
            of_tool_error(&anyhow::anyhow!("address in use")),
            TOOL_FAILED
        );
    }
}
