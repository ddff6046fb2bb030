//! The shim's one error type and its one exit-code mapping.
//!
//! Every failure of the `bb` shim's own (configuration, native bb, backend, store,
//! outputs, fixtures, signals) ends as an [`Error`]; [`Error::exit_code`] is the only
//! place that turns one into an exit code, and `shim::report` the only place that
//! prints one (`bb-remote: error: <outer>: <source>: ...`, through `diag`). bb's own
//! exit codes never pass through here: they are bb's answer, not a failure of ours.
use crate::config::BadValue;
use crate::exit::{self, Interrupt};
use crate::native::NativeError;
use crate::store::StoreError;
use crate::tes::client::TesError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// A `BB_REMOTE_*` value the shim cannot use.
    #[error(transparent)]
    Config(#[from] BadValue),
    /// The configuration is well-formed but cannot work (e.g. the store it names
    /// cannot be built).
    #[error("{0}")]
    ConfigMsg(String),
    /// The native bb could not be found, loaded or exec'd.
    #[error(transparent)]
    Native(#[from] NativeError),
    /// A TES call failed; retryable ones (transport, 5xx) mean "unavailable".
    #[error("{}", tes_headline(.0))]
    Tes(#[from] TesError),
    /// An object store call failed.
    #[error("{}", store_headline(.0))]
    Store(#[from] StoreError),
    /// The task ran but the backend failed it (SYSTEM_ERROR, PREEMPTED, cancelled
    /// by someone else) or the wait timed out.
    #[error("{0}")]
    TaskFailed(String),
    /// The whole delegated call took longer than `BB_REMOTE_TIMEOUT`.
    #[error("the delegated call did not finish within {secs}s (BB_REMOTE_TIMEOUT){cancelled}")]
    Timeout {
        secs: u64,
        /// What happened to a task this caller created.
        cancelled: &'static str,
    },
    /// The backend's result cannot be trusted: wrong digest, unsafe name, bad shape.
    #[error("backend returned bad outputs: {0}")]
    BadOutputs(String),
    /// Reading an input or writing the outputs failed locally.
    #[error("{0}")]
    Io(String),
    /// A local I/O failure with its cause.
    #[error("{what}")]
    LocalIo {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Replay: no fixture matches this invocation.
    #[error("{0}")]
    ReplayMiss(String),
    /// Replay: the fixture directory cannot be used.
    #[error("replay: fixture unusable")]
    FixtureInvalid(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// SIGINT / SIGTERM: what this caller created was cancelled and temporaries removed.
    #[error("interrupted; anything this call created on the backend was cancelled")]
    Interrupted(Interrupt),
}

/// The first words of a TES failure's line; the TES error follows as its source.
fn tes_headline(err: &TesError) -> &'static str {
    if err.is_retryable() {
        "backend unavailable"
    } else {
        "backend rejected the request"
    }
}

/// The first words of a store failure's line; the store error follows as its source.
fn store_headline(err: &StoreError) -> &'static str {
    match err {
        _ if err.is_transient() => "object store unavailable",
        StoreError::DigestMismatch { .. } | StoreError::InvalidName { .. } => {
            "backend returned bad outputs"
        }
        StoreError::Io { .. } | StoreError::SourceChanged { .. } => "local I/O error",
        StoreError::InvalidConfig { .. } => "invalid object store configuration",
        _ => "object store refused the request",
    }
}

impl Error {
    /// The one mapping from a failure to the shim's exit code.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) | Self::ConfigMsg(_) => exit::CONFIG,
            Self::Native(NativeError::Conflict) => exit::CONFIG,
            Self::Native(_) => exit::NATIVE_MISSING,
            Self::Tes(err) if err.is_retryable() => exit::BACKEND_UNAVAILABLE,
            Self::Tes(_) => exit::BACKEND_REJECTED,
            Self::Store(err) => match err {
                _ if err.is_transient() => exit::BACKEND_UNAVAILABLE,
                StoreError::DigestMismatch { .. } | StoreError::InvalidName { .. } => {
                    exit::BACKEND_REJECTED
                }
                StoreError::Io { .. } | StoreError::SourceChanged { .. } => exit::IO,
                StoreError::InvalidConfig { .. } => exit::CONFIG,
                _ => exit::BACKEND_REJECTED,
            },
            Self::TaskFailed(_) | Self::Timeout { .. } => exit::BACKEND_UNAVAILABLE,
            Self::BadOutputs(_) => exit::BACKEND_REJECTED,
            Self::Io(_) | Self::LocalIo { .. } => exit::IO,
            Self::ReplayMiss(_) => exit::REPLAY_MISS,
            Self::FixtureInvalid(_) => exit::FIXTURE_INVALID,
            Self::Interrupted(signal) => signal.exit_code(),
        }
    }

    /// Only an unreachable backend may be replaced by the native bb.
    pub(crate) fn may_fall_back(&self) -> bool {
        self.exit_code() == exit::BACKEND_UNAVAILABLE
            && !matches!(self, Self::TaskFailed(_) | Self::Timeout { .. })
    }

    /// A local I/O failure: `what` says what was being done, to which path.
    pub(crate) fn local_io(what: impl Into<String>, source: std::io::Error) -> Self {
        Self::LocalIo {
            what: what.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_mapping_for_every_kind() {
        let io = || std::io::Error::other("x");
        for (err, code) in [
            (Error::ConfigMsg("x".into()), exit::CONFIG),
            (Error::Native(NativeError::Conflict), exit::CONFIG),
            (
                Error::Timeout {
                    secs: 2,
                    cancelled: "",
                },
                exit::BACKEND_UNAVAILABLE,
            ),
            (Error::local_io("writing", io()), exit::IO),
            (Error::ReplayMiss("x".into()), exit::REPLAY_MISS),
            (Error::Interrupted(Interrupt::Term), exit::SIGTERM),
        ] {
            assert_eq!(err.exit_code(), code, "{err:?}");
        }
        assert!(!Error::TaskFailed("x".into()).may_fall_back());
    }
}
