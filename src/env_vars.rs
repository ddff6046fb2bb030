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
    /// Path of bb inside the executor image (default `bb`, found on its PATH).
    EXECUTOR_BB = "BB_REMOTE_EXECUTOR_BB";
    /// CRS directory inside the executor, passed to the remote bb as `-c` (default: none).
    EXECUTOR_CRS = "BB_REMOTE_EXECUTOR_CRS";
    /// `BB_*` variables forwarded to the remote bb when set (comma-separated, or `none`).
    FORWARD_ENV = "BB_REMOTE_FORWARD_ENV";
    /// Comma-separated command set to delegate, replacing the default heavy set.
    DELEGATE = "BB_REMOTE_DELEGATE";
    /// Force a grammar: `legacy` or `modern` (default: told apart from argv).
    GRAMMAR = "BB_REMOTE_GRAMMAR";
    /// What to do when the backend is unreachable: `fail` or `native`.
    FALLBACK = "BB_REMOTE_FALLBACK";
    /// Bound on the whole delegated call (upload, lookup, create, wait, fetch), in seconds.
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
pub(crate) const RECURSION_GUARD: &str = "__BB_REMOTE_DEPTH";

/// The process environment as the shim saw it. Empty values count as unset.
/// Injectable, so tests never mutate the process environment.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: std::collections::BTreeMap<String, String>,
    /// `BB_REMOTE_*` variables whose value is not UTF-8: a configuration error, never
    /// silently ignored (see `config::Settings::load`).
    not_utf8: Vec<String>,
}

impl Env {
    /// Read the real process environment. Non-UTF-8 values are left out; the names of
    /// `BB_REMOTE_*` ones are kept so the configuration can refuse them.
    pub fn from_process() -> Self {
        let mut env = Self::default();
        for (name, value) in std::env::vars_os() {
            let Ok(name) = name.into_string() else {
                continue;
            };
            match value.into_string() {
                Ok(value) => {
                    env.vars.insert(name, value);
                }
                Err(_) if name.starts_with(PREFIX) => env.not_utf8.push(name),
                Err(_) => {}
            }
        }
        env
    }

    pub fn from_pairs<K: Into<String>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
            not_utf8: Vec::new(),
        }
    }

    /// The value of `name`, or `None` when unset or empty.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// Mark `name` as set to a value that is not UTF-8 (what [`Env::from_process`]
    /// records; for tests of that path).
    #[cfg(test)]
    pub(crate) fn set_not_utf8(&mut self, name: &str) {
        self.vars.remove(name);
        self.not_utf8.push(name.to_owned());
    }

    /// The `BB_REMOTE_*` variables whose value is not UTF-8.
    pub(crate) fn not_utf8(&self) -> &[String] {
        &self.not_utf8
    }

    /// Every set variable whose name starts with `prefix` (e.g. `AWS_`), for handing
    /// standard cloud credentials to object_store's builders.
    pub(crate) fn vars_with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.vars
            .iter()
            .filter(move |(k, v)| k.starts_with(prefix) && !v.is_empty())
            .map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Every set `BB_REMOTE_*` variable, for diagnostics.
    pub(crate) fn bb_remote_vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars_with_prefix(PREFIX)
    }
}

/// The prefix of every variable of ours.
pub(crate) const PREFIX: &str = "BB_REMOTE_";
