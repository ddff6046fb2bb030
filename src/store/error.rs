//! The store's error type: each variant says what the caller can do about it.
//!
//! object_store already retries 5xx and connection errors internally, so a
//! [`StoreError::Transient`] here means "the store stayed unreachable": the shim may
//! fall back to native, the worker reports a system error.

use std::fmt;
use std::path::PathBuf;

use super::Digest;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store URL or its settings cannot be used; `what` names the URL or variable.
    #[error("invalid store configuration ({what}): {reason}")]
    InvalidConfig { what: String, reason: String },

    /// A URL that does not point into this store. The worker must never fetch it.
    #[error("refusing {url}: it is not inside the store {store} ({reason})")]
    OutsideStore {
        url: String,
        store: String,
        reason: &'static str,
    },

    #[error("object {object} not found")]
    NotFound {
        object: String,
        #[source]
        source: object_store::Error,
    },

    #[error("access to {object} was denied\nhelp: check the AWS_*/GOOGLE_*/AZURE_* credentials")]
    PermissionDenied {
        object: String,
        #[source]
        source: object_store::Error,
    },

    /// Network failure or 5xx/429 that outlasted object_store's own retries.
    #[error("store unavailable while accessing {object}")]
    Transient {
        object: String,
        #[source]
        source: object_store::Error,
    },

    /// Any other failure reported by the store (bad request, unsupported operation...).
    #[error("store error on {object}")]
    Backend {
        object: String,
        #[source]
        source: object_store::Error,
    },

    #[error("digest mismatch for {object}: expected sha256:{expected}, got sha256:{actual}")]
    DigestMismatch {
        object: String,
        expected: Digest,
        actual: Digest,
    },

    /// An object larger than allowed (its announced size, or a cap such as the
    /// worker's cache budget): refused before it fills the disk.
    #[error("object {object} is larger than {limit} bytes, {bound}; download stopped")]
    TooLarge {
        object: String,
        limit: u64,
        bound: &'static str,
    },

    /// A file larger than a store without multipart uploads can take in one request.
    #[error(
        "{path} is {size} bytes, more than the {limit} bytes per object the store {store} \
         takes (its HTTP/WebDAV client has no multipart upload, so an object goes up in one \
         request)\nhelp: use an s3://, gs://, az:// or file:// store for files this large"
    )]
    NoMultipart {
        path: PathBuf,
        size: u64,
        limit: u64,
        store: String,
    },

    /// The local file's content changed between hashing and uploading.
    #[error("{path} changed while it was being uploaded")]
    SourceChanged { path: PathBuf },

    /// A destination file name that is not a single plain path component.
    #[error("invalid destination file name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },

    #[error("local I/O error on {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl StoreError {
    /// Worth retrying later, or falling back: the store, not the request, is at fault.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient { .. })
    }

    /// Map an object_store error on `object` to the variant the caller acts on.
    pub(crate) fn from_store(object: impl fmt::Display, source: object_store::Error) -> Self {
        use object_store::Error as E;
        let object = object.to_string();
        match source {
            E::NotFound { .. } => Self::NotFound { object, source },
            E::PermissionDenied { .. } | E::Unauthenticated { .. } => {
                Self::PermissionDenied { object, source }
            }
            E::Generic { .. } if is_transient(&source) => Self::Transient { object, source },
            _ => Self::Backend { object, source },
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

/// Whether a `Generic` object_store error came from the network or an overloaded server.
///
/// object_store keeps its `RetryError` type private, so the status is recognised from
/// its message ("Server returned non-2xx status code: 503 ..."); connection errors
/// surface as the public `HttpError`.
fn is_transient(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if e.downcast_ref::<object_store::client::HttpError>()
            .is_some()
        {
            return true;
        }
        let msg = e.to_string();
        if let Some((_, rest)) = msg.split_once("status code: ") {
            if rest.starts_with('5') || rest.starts_with("429") || rest.starts_with("408") {
                return true;
            }
        }
        if msg.contains("SlowDown") {
            return true;
        }
        cur = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generic(msg: &str) -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: msg.to_owned().into(),
        }
    }

    #[test]
    fn server_errors_are_transient_and_client_errors_are_not() {
        let e = StoreError::from_store(
            "k",
            generic("Server returned non-2xx status code: 503 Service Unavailable"),
        );
        assert!(e.is_transient(), "{e:?}");
        let e = StoreError::from_store(
            "k",
            generic("Server returned non-2xx status code: 400 Bad Request"),
        );
        assert!(matches!(e, StoreError::Backend { .. }), "{e:?}");
    }

    #[test]
    fn not_found_and_denied_keep_their_meaning() {
        let nf = object_store::Error::NotFound {
            path: "a".into(),
            source: "gone".into(),
        };
        assert!(matches!(
            StoreError::from_store("a", nf),
            StoreError::NotFound { .. }
        ));
        let denied = object_store::Error::Unauthenticated {
            path: "a".into(),
            source: "no".into(),
        };
        let e = StoreError::from_store("s3://b/a", denied);
        assert!(matches!(e, StoreError::PermissionDenied { .. }));
        assert!(e.to_string().contains("s3://b/a"), "{e}");
    }
}
