//! The shim's own exit codes. bb's codes (0, 1, 105, 109, 114, signals) pass through
//! untouched; these sysexits-style values are ones bb never uses.

/// A `BB_REMOTE_*` variable has a value the shim cannot use (EX_CONFIG).
pub const CONFIG: u8 = 78;
/// No native bb could be found or loaded (EX_UNAVAILABLE).
pub const NATIVE_MISSING: u8 = 69;
/// The backend could not be reached or failed after retries (EX_TEMPFAIL).
pub const BACKEND_UNAVAILABLE: u8 = 75;
/// The backend refused the request (a 4xx) or broke the protocol (EX_PROTOCOL).
pub const BACKEND_REJECTED: u8 = 76;
/// A local I/O failure of the shim itself, e.g. writing outputs (EX_IOERR).
pub const IO: u8 = 74;
/// Replay mode found no fixture for this invocation (EX_NOINPUT).
pub const REPLAY_MISS: u8 = 66;
/// Fixture data is corrupt or of an unknown format (EX_DATAERR).
pub const FIXTURE_INVALID: u8 = 65;
/// Interrupted by SIGINT / SIGTERM while waiting (shell convention 128+n).
pub const SIGINT: u8 = 130;
pub const SIGTERM: u8 = 143;

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
        "backend unreachable or failing after retries (and fallback is off)",
    ),
    (
        BACKEND_REJECTED,
        "backend rejected the task (4xx) or returned bad outputs",
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
        "replay: fixture corrupt or of an unknown format version",
    ),
    (
        SIGINT,
        "interrupted by SIGINT while waiting (remote task cancelled)",
    ),
    (
        SIGTERM,
        "terminated by SIGTERM while waiting (remote task cancelled)",
    ),
];
