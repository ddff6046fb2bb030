//! Why a delegated run did not produce bb's result, and which exit code that means.
use super::outputs::UnsafeName;
use super::signals::Interrupt;
use crate::exit;
use crate::logging::error_chain;
use crate::store::StoreError;
use crate::tes::client::TesError;

#[derive(Debug, thiserror::Error)]
pub enum DelegateError {
    /// Transport failure or 5xx that outlasted the retries: the only kind that may
    /// fall back to the native bb.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
    /// The backend refused us (4xx), or the store denied access: a configuration
    /// problem that retrying or falling back would only hide.
    #[error("backend rejected the request: {0}")]
    Rejected(String),
    /// The task ran but the backend failed it (SYSTEM_ERROR, PREEMPTED, cancelled
    /// by someone else) or the wait timed out.
    #[error("{0}")]
    TaskFailed(String),
    /// The backend's result cannot be trusted: wrong digest, unsafe name, bad shape.
    #[error("backend returned bad outputs: {0}")]
    BadOutputs(String),
    /// Writing the outputs (or reading an input) failed locally.
    #[error("{0}")]
    Io(String),
    /// The configuration cannot work (e.g. a store URL object_store cannot build).
    #[error("{0}")]
    Config(String),
    #[error("interrupted")]
    Interrupted(Interrupt),
}

impl DelegateError {
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Unavailable(_) | Self::TaskFailed(_) => exit::BACKEND_UNAVAILABLE,
            Self::Rejected(_) | Self::BadOutputs(_) => exit::BACKEND_REJECTED,
            Self::Io(_) => exit::IO,
            Self::Config(_) => exit::CONFIG,
            Self::Interrupted(signal) => signal.exit_code(),
        }
    }

    /// Only an unreachable backend may be replaced by the native bb.
    pub fn may_fall_back(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

impl From<TesError> for DelegateError {
    fn from(err: TesError) -> Self {
        if err.is_retryable() {
            Self::Unavailable(error_chain(&err))
        } else {
            Self::Rejected(error_chain(&err))
        }
    }
}

impl From<StoreError> for DelegateError {
    fn from(err: StoreError) -> Self {
        match &err {
            _ if err.is_transient() => Self::Unavailable(error_chain(&err)),
            StoreError::DigestMismatch { .. } | StoreError::InvalidName { .. } => {
                Self::BadOutputs(error_chain(&err))
            }
            StoreError::Io { .. } | StoreError::SourceChanged { .. } => Self::Io(error_chain(&err)),
            _ => Self::Rejected(error_chain(&err)),
        }
    }
}

impl From<UnsafeName> for DelegateError {
    fn from(err: UnsafeName) -> Self {
        Self::BadOutputs(err.to_string())
    }
}
