//! The shim's one error type and its one exit-code mapping.
//!
//! Every failure of the `bb` shim's own (configuration, native bb, backend, store,
//! outputs, fixtures, signals) ends as an [`Error`]; [`Error::exit_code`] is the only
//! place that turns one into an exit code, and `shim::report` the only place that
//! prints one (`bb-remote: error: <outer>: <source>: ...`, through `diag`). bb's own
//! exit codes never pass through here: they are bb's answer, not a failure of ours.
//!
//! Every variant carries data, not a finished sentence: callers match on the kind
//! ([`TaskFailure`], [`BadAnswer`]), and the wording lives in the `#[error]` lines.
use crate::config::BadValue;
use crate::env_vars;
use crate::exit::{self, Interrupt};
use crate::native::NativeError;
use crate::route::RenderError;
use crate::store::{Digest, StoreError};
use crate::tes::client::TesError;
use crate::tes::types::State;

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// A `BB_REMOTE_*` value the shim cannot use.
    #[error(transparent)]
    Config(#[from] BadValue),
    /// `BB_REMOTE_REPLAY_MISS=remote` met a miss, but no backend is configured.
    #[error(
        "{miss}; {}=remote needs {} to be set",
        env_vars::REPLAY_MISS,
        env_vars::BACKEND
    )]
    MissWithoutBackend { miss: String },
    /// The native bb could not be found, loaded or exec'd.
    #[error(transparent)]
    Native(#[from] NativeError),
    /// A TES call failed; retryable ones (transport, 5xx) mean "unavailable".
    #[error("{}", tes_headline(.0))]
    Tes(#[from] TesError),
    /// An object store call failed.
    #[error("{}", store_headline(.0))]
    Store(#[from] StoreError),
    /// The plan cannot be written as a task (a path it cannot express).
    #[error("building the task")]
    BuildTask(#[source] RenderError),
    /// The task ended without a usable run of bb.
    #[error("task {id} {failure}")]
    TaskFailed { id: String, failure: TaskFailure },
    /// The remote bb (msgpack) exited without writing an answer frame.
    #[error("the remote bb exited with {exit_code} without an answer: {stderr_tail}")]
    NoAnswer { exit_code: i32, stderr_tail: String },
    /// The whole delegated call took longer than `BB_REMOTE_TIMEOUT`.
    #[error("the delegated call did not finish within {secs}s (BB_REMOTE_TIMEOUT){cancelled}")]
    Timeout {
        secs: u64,
        /// What happened to a task this caller created.
        cancelled: &'static str,
    },
    /// The backend's (or a fixture's) answer cannot be trusted.
    #[error("backend returned bad outputs: {0}")]
    BadOutputs(#[from] BadAnswer),
    /// A local I/O failure: `what` says what was being done, to which path.
    #[error("{what}")]
    LocalIo {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Replay: no fixture matches this invocation (`description` says which is nearest).
    #[error(
        "{description}\nhelp: record it with {}=<dir>, or set {}=native|remote",
        env_vars::RECORD,
        env_vars::REPLAY_MISS
    )]
    ReplayMiss { description: String },
    /// Replay: the fixture directory cannot be used.
    #[error("replay: fixture unusable")]
    FixtureInvalid(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// SIGINT / SIGTERM: what this caller created was cancelled and temporaries removed.
    #[error("interrupted; anything this call created on the backend was cancelled")]
    Interrupted(Interrupt),
}

/// How a task ended without a usable run of bb (follows "task <id> ").
#[derive(Debug, thiserror::Error)]
pub(crate) enum TaskFailure {
    /// Generic engines: the wrapper shell failed before recording bb's exit code.
    #[error(
        "lost bb's exit code: the executor's shell failed before recording it \
         (does the image have /bin/sh, find and sha256sum?): {stderr_tail}"
    )]
    ShellFailed { stderr_tail: String },
    #[error("failed on the backend (SYSTEM_ERROR): {system_logs}")]
    SystemError { system_logs: String },
    /// Cancelled by someone else, preempted, or another terminal state without bb's end.
    #[error("ended {0} without running bb to completion")]
    Ended(State),
    /// The wait outlasted `BB_REMOTE_TIMEOUT`.
    #[error("did not finish within {secs}s (BB_REMOTE_TIMEOUT); it was cancelled")]
    TimedOut { secs: u64 },
}

/// What is wrong with an answer (follows "backend returned bad outputs: ").
#[derive(Debug, thiserror::Error)]
pub(crate) enum BadAnswer {
    /// A fetched output is not what the backend said it wrote.
    #[error(
        "output {name:?}: expected sha256:{expected} ({expected_size} bytes), \
         got sha256:{got} ({got_size} bytes)"
    )]
    Mismatch {
        name: String,
        expected: Digest,
        expected_size: u64,
        got: Digest,
        got_size: u64,
    },
    /// An output name that would leave the output directory.
    #[error("unsafe output name {name:?}: {why}")]
    UnsafeName { name: String, why: &'static str },
    /// A file of the answer (bb's stdout/stderr, the manifest) is larger than accepted.
    #[error("{file}: {size} bytes, more than the {limit} accepted")]
    TooLarge { file: String, size: u64, limit: u64 },
    /// The task's record (logs, metadata, manifest) is missing or malformed.
    #[error("task {task}: {problem}")]
    Task { task: String, problem: String },
    /// One file of the answer does not match the task's record of it.
    #[error("{file}: {problem}")]
    File { file: String, problem: String },
}

/// The first words of a TES failure's line; the TES error follows as its source.
fn tes_headline(err: &TesError) -> &'static str {
    match err {
        _ if err.is_retryable() => "backend unavailable",
        TesError::TooLarge { .. } => "backend returned a bad answer",
        _ => "backend rejected the request",
    }
}

/// The first words of a store failure's line; the store error follows as its source.
fn store_headline(err: &StoreError) -> &'static str {
    match err {
        _ if err.is_transient() => "object store unavailable",
        StoreError::DigestMismatch { .. }
        | StoreError::InvalidName { .. }
        | StoreError::TooLarge { .. } => "backend returned bad outputs",
        StoreError::Io { .. } | StoreError::SourceChanged { .. } => "local I/O error",
        StoreError::InvalidConfig { .. } => "invalid object store configuration",
        _ => "object store refused the request",
    }
}

impl Error {
    /// The one mapping from a failure to the shim's exit code.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) | Self::MissWithoutBackend { .. } => exit::CONFIG,
            Self::Native(NativeError::Conflict) => exit::CONFIG,
            Self::Native(_) => exit::NATIVE_MISSING,
            Self::Tes(err) if err.is_retryable() => exit::BACKEND_UNAVAILABLE,
            Self::Tes(_) => exit::BACKEND_REJECTED,
            Self::Store(err) => match err {
                _ if err.is_transient() => exit::BACKEND_UNAVAILABLE,
                // A bad answer, like `BadOutputs`: EX_PROTOCOL, never a fallback.
                StoreError::DigestMismatch { .. }
                | StoreError::InvalidName { .. }
                | StoreError::TooLarge { .. } => exit::BACKEND_REJECTED,
                StoreError::Io { .. } | StoreError::SourceChanged { .. } => exit::IO,
                StoreError::InvalidConfig { .. } => exit::CONFIG,
                _ => exit::BACKEND_REJECTED,
            },
            Self::TaskFailed { .. } | Self::NoAnswer { .. } | Self::Timeout { .. } => {
                exit::BACKEND_UNAVAILABLE
            }
            Self::BadOutputs(_) => exit::BACKEND_REJECTED,
            Self::BuildTask(_) | Self::LocalIo { .. } => exit::IO,
            Self::ReplayMiss { .. } => exit::REPLAY_MISS,
            Self::FixtureInvalid(_) => exit::FIXTURE_INVALID,
            Self::Interrupted(signal) => signal.exit_code(),
        }
    }

    /// Only an unreachable backend may be replaced by the native bb.
    pub(crate) fn may_fall_back(&self) -> bool {
        self.exit_code() == exit::BACKEND_UNAVAILABLE
            && !matches!(
                self,
                Self::TaskFailed { .. } | Self::NoAnswer { .. } | Self::Timeout { .. }
            )
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
        let task = |failure| Error::TaskFailed {
            id: "t".into(),
            failure,
        };
        for (err, code) in [
            (Error::MissWithoutBackend { miss: "m".into() }, exit::CONFIG),
            (Error::Native(NativeError::Conflict), exit::CONFIG),
            (
                Error::Timeout {
                    secs: 2,
                    cancelled: "",
                },
                exit::BACKEND_UNAVAILABLE,
            ),
            (
                task(TaskFailure::Ended(State::Canceled)),
                exit::BACKEND_UNAVAILABLE,
            ),
            (
                Error::BadOutputs(BadAnswer::UnsafeName {
                    name: "../x".into(),
                    why: "leaves",
                }),
                exit::BACKEND_REJECTED,
            ),
            (Error::local_io("writing", io()), exit::IO),
            (
                Error::ReplayMiss {
                    description: "x".into(),
                },
                exit::REPLAY_MISS,
            ),
            (Error::Interrupted(Interrupt::Term), exit::SIGTERM),
        ] {
            assert_eq!(err.exit_code(), code, "{err:?}");
            assert!(!err.may_fall_back(), "{err:?}");
        }
        let unreachable = Error::Tes(TesError::Unavailable {
            url: "http://h".into(),
            status: 503,
            body: String::new(),
        });
        assert!(unreachable.may_fall_back());
    }

    /// An oversized answer from the store is a bad answer, reported and mapped like a
    /// digest mismatch (EX_PROTOCOL, no fallback), not as a refusal.
    #[test]
    fn an_oversized_store_answer_is_a_bad_answer() {
        let too_large = Error::Store(StoreError::TooLarge {
            object: "cas/ab".into(),
            limit: 10,
            bound: "the size the task log gives",
        });
        let mismatch = Error::Store(StoreError::DigestMismatch {
            object: "cas/ab".into(),
            expected: Digest::of_bytes(b"a"),
            actual: Digest::of_bytes(b"b"),
        });
        assert_eq!(too_large.exit_code(), mismatch.exit_code());
        assert_eq!(too_large.exit_code(), exit::BACKEND_REJECTED);
        assert!(!too_large.may_fall_back());
        assert_eq!(too_large.to_string(), mismatch.to_string());
        assert_eq!(too_large.to_string(), "backend returned bad outputs");
    }

    /// A file too large for a store without multipart (`http(s)://`) is a refusal: the
    /// native bb would not help the configured store take it.
    #[test]
    fn a_file_too_large_for_the_store_is_a_refusal_without_fallback() {
        let err = Error::Store(StoreError::NoMultipart {
            path: "/w/witness.gz".into(),
            size: 6 << 20,
            limit: 5 << 20,
            store: "http://dav.example/bb".into(),
        });
        assert_eq!(err.exit_code(), exit::BACKEND_REJECTED);
        assert!(!err.may_fall_back());
        assert_eq!(err.to_string(), "object store refused the request");
    }
}
