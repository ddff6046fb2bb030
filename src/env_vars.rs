//! Every environment variable bb-remote reads, in one place.
//!
//! The README's table is checked against [`ALL`] by a test, so adding a variable
//! here without documenting it (or the reverse) fails CI.

/// One variable the shim or the operator tool reads.
#[derive(Debug, Clone, Copy)]
pub struct EnvVar {
    pub name: &'static str,
    pub doc: &'static str,
}

macro_rules! env_vars {
    ($($(#[doc = $doc:literal])* $id:ident = $name:literal;)*) => {
        $( $(#[doc = $doc])* pub const $id: &str = $name; )*
        /// All variables, in documentation order.
        pub const ALL: &[EnvVar] = &[ $( EnvVar { name: $name, doc: concat!($($doc),*) } ),* ];
    };
}

env_vars! {
    /// TES base URL of the proving backend; unset means nothing is delegated.
    BACKEND = "BB_REMOTE_BACKEND";
    /// Object store URL for inputs and outputs (s3://, gs://, az://, file://, http(s)://).
    STORE = "BB_REMOTE_STORE";
    /// Bearer token sent to the backend.
    TOKEN = "BB_REMOTE_TOKEN";
    /// Executor image named in each TES task.
    IMAGE = "BB_REMOTE_IMAGE";
    /// Comma-separated command set to delegate, replacing the default heavy set.
    DELEGATE = "BB_REMOTE_DELEGATE";
    /// Force a grammar: `legacy` or `modern` (default: told apart from argv).
    GRAMMAR = "BB_REMOTE_GRAMMAR";
    /// What to do when the backend is unreachable: `fail` or `native`.
    FALLBACK = "BB_REMOTE_FALLBACK";
    /// Longest wait for a delegated task, in seconds.
    TIMEOUT = "BB_REMOTE_TIMEOUT";
    /// CPU cores to request per delegated task (default: from the circuit).
    CPU_CORES = "BB_REMOTE_CPU_CORES";
    /// Memory in GiB to request per delegated task (default: from the circuit).
    RAM_GB = "BB_REMOTE_RAM_GB";
    /// Path of the native bb executable (exec'd for passthrough).
    NATIVE_BIN = "BB_REMOTE_NATIVE_BIN";
    /// Path of a native libbb shared library (dlopen'd for passthrough).
    NATIVE_LIB = "BB_REMOTE_NATIVE_LIB";
    /// Symbol to call in BB_REMOTE_NATIVE_LIB (default `bb_main`).
    NATIVE_SYMBOL = "BB_REMOTE_NATIVE_SYMBOL";
    /// Directory to record every invocation into as fixtures.
    RECORD = "BB_REMOTE_RECORD";
    /// Directory of fixtures to answer invocations from.
    REPLAY = "BB_REMOTE_REPLAY";
    /// On a replay miss: `fail`, `native` or `remote`.
    REPLAY_MISS = "BB_REMOTE_REPLAY_MISS";
    /// Log filter for the shim's own diagnostics on stderr (tracing syntax).
    LOG = "BB_REMOTE_LOG";
    /// Log format: `text` or `json`.
    LOG_FORMAT = "BB_REMOTE_LOG_FORMAT";
    /// Bearer token `bb-remote worker` requires of clients (same as its --token).
    WORKER_TOKEN = "BB_REMOTE_WORKER_TOKEN";
}

/// Set by the shim before handing over to a native bb, so a native that turns out to
/// be the shim itself is caught instead of looping forever.
pub const RECURSION_GUARD: &str = "__BB_REMOTE_DEPTH";
