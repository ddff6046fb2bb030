//! Bearer-token authentication.
//!
//! The rule: a worker that listens on any non-loopback address must have a token
//! (`--token` or `BB_REMOTE_WORKER_TOKEN`), or it refuses to start; a worker on
//! loopback only may run open, for local development and tests. When a token is set,
//! every route needs `Authorization: Bearer <token>`.
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::api::error_response;

/// Why the worker will not start with this listen/token combination.
pub(crate) fn check_listen(
    addr: &SocketAddr,
    token: Option<&str>,
) -> Result<(), crate::config::BadValue> {
    if token.is_none() && !addr.ip().is_loopback() {
        return Err(crate::config::BadValue {
            name: "--listen".into(),
            value: addr.to_string(),
            expected: "a loopback address: refusing to listen beyond loopback without a \
                       bearer token\n\
                       help: set BB_REMOTE_WORKER_TOKEN (or --token), or listen on 127.0.0.1 / [::1]"
                .into(),
        });
    }
    Ok(())
}

/// Axum middleware: reject requests without the right bearer token.
pub(crate) async fn require_token(
    State(token): State<Arc<Option<String>>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(expected) = token.as_deref() else {
        return next.run(request).await;
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_credentials);
    match presented {
        Some(given) if constant_time_eq(given.as_bytes(), expected.as_bytes()) => {
            next.run(request).await
        }
        Some(_) => unauthorized("the bearer token is wrong"),
        None => unauthorized("missing `Authorization: Bearer <token>` header"),
    }
}

fn unauthorized(message: &str) -> Response {
    let mut response = error_response(StatusCode::UNAUTHORIZED, message.to_owned()).into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// The credentials of an `Authorization: Bearer <token>` value. The scheme name is
/// case-insensitive (RFC 7235 §2.1), so `bearer` and `BEARER` are accepted too.
fn bearer_credentials(value: &str) -> Option<&str> {
    let (scheme, rest) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim_start_matches(' '))
}

/// Compare without an early exit, so timing does not reveal a matching prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_worker_only_on_loopback() {
        let loopback: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let v6: SocketAddr = "[::1]:8080".parse().unwrap();
        let public: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert!(check_listen(&loopback, None).is_ok());
        assert!(check_listen(&v6, None).is_ok());
        let err = check_listen(&public, None).unwrap_err().to_string();
        assert!(err.contains("0.0.0.0:8080") && err.contains("BB_REMOTE_WORKER_TOKEN"));
        assert!(check_listen(&public, Some("t")).is_ok());
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for value in ["Bearer t0k", "bearer t0k", "BEARER  t0k", "bEaReR t0k"] {
            assert_eq!(bearer_credentials(value), Some("t0k"), "{value}");
        }
        for value in ["Basic t0k", "Bearert0k", "t0k", "Bearer"] {
            assert_eq!(bearer_credentials(value), None, "{value}");
        }
    }

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }
}
