//! `backend` and `token`: is the TES backend there, what is it, and does it accept us.
//!
//! The backend may guard service-info itself (the reference worker guards every route
//! when it has a token), so a 401/403 there still means "reachable"; the `token` check
//! then says what is wrong with the token.

use std::time::{Duration, Instant};

use super::{error_chain, Check, Status, CHECK_TIMEOUT};
use crate::config::Env;
use crate::env_vars;
use crate::tes::client::{ClientOptions, ListQuery, RetryPolicy, TesClient, TesError};
use crate::tes::types::View;

/// `backend` then `token`; both skipped when no backend is configured.
pub(crate) async fn check_backend(env: &Env) -> Vec<Check> {
    // The URL by the shim's own rule, then the client built from it.
    let unusable = |err: &dyn std::fmt::Display| {
        vec![
            Check::new(
                "backend",
                Status::Fail,
                format!("{err} - set {} to the TES base URL", env_vars::BACKEND),
            ),
            Check::new("token", Status::Skip, "no usable backend URL"),
        ]
    };
    let backend = match crate::config::backend_url(env) {
        Ok(backend) => backend,
        Err(bad) => return unusable(&bad),
    };
    let Some(backend) = backend.as_ref().map(url::Url::as_str) else {
        let why = format!(
            "{} unset: passthrough-only mode, nothing is delegated",
            env_vars::BACKEND
        );
        return vec![
            Check::new("backend", Status::Skip, why.clone()),
            Check::new("token", Status::Skip, why),
        ];
    };
    let token = env.get(env_vars::TOKEN);
    let client = match TesClient::new(backend, client_options(token)) {
        Ok(client) => client,
        Err(err) => return unusable(&err),
    };
    let shown = crate::config::Redacted(backend).to_string();

    let started = Instant::now();
    let backend_check = match client.service_info().await {
        Ok(info) => Check::new(
            "backend",
            Status::Ok,
            format!(
                "{shown}: {} {} (TES {}, {} ms)",
                info.name,
                info.version,
                info.service_type.version,
                started.elapsed().as_millis()
            ),
        ),
        Err(TesError::Rejected { status, .. }) if is_auth_status(status) => Check::new(
            "backend",
            Status::Ok,
            format!("{shown}: reachable; service-info needs a valid token ({status})"),
        ),
        Err(err) => {
            return vec![
                Check::new("backend", Status::Fail, unreachable_message(&shown, &err)),
                Check::new("token", Status::Skip, "backend not usable"),
            ];
        }
    };

    let query = ListQuery {
        page_size: Some(1),
        view: View::Minimal,
        ..ListQuery::default()
    };
    let token_check = match client.list_tasks(&query).await {
        Ok(_) => Check::new(
            "token",
            Status::Ok,
            match token {
                Some(_) => format!("{} accepted (listed tasks)", env_vars::TOKEN),
                None => format!(
                    "{} unset and the backend needs none (listed tasks)",
                    env_vars::TOKEN
                ),
            },
        ),
        Err(TesError::Rejected {
            status, message, ..
        }) if is_auth_status(status) => {
            let what = match token {
                Some(_) => format!("rejected {}", env_vars::TOKEN),
                None => format!("requires a token and {} is unset", env_vars::TOKEN),
            };
            Check::new(
                "token",
                Status::Fail,
                format!(
                    "the backend {what} ({status}: {message}) - set {} to the backend's bearer token",
                    env_vars::TOKEN
                ),
            )
        }
        Err(err) => Check::new(
            "token",
            Status::Fail,
            format!("listing tasks failed: {}", error_chain(&err)),
        ),
    };
    vec![backend_check, token_check]
}

/// One bounded attempt per call: the doctor reports, it does not wait out an outage.
fn client_options(token: Option<&str>) -> ClientOptions {
    ClientOptions {
        token: token.map(str::to_owned),
        request_timeout: CHECK_TIMEOUT,
        connect_timeout: CHECK_TIMEOUT.min(Duration::from_secs(3)),
        retry: RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
    }
}

fn is_auth_status(status: u16) -> bool {
    status == 401 || status == 403
}

/// Why the backend is not usable, with what to check.
fn unreachable_message(shown: &str, err: &TesError) -> String {
    let chain = error_chain(err);
    let hint = match err {
        TesError::Transport { source, .. } if source.is_timeout() => format!(
            "no answer within {} s - is the backend up and reachable? check {}",
            CHECK_TIMEOUT.as_secs(),
            env_vars::BACKEND
        ),
        TesError::Transport { .. } => format!("is the worker running? check {}", env_vars::BACKEND),
        TesError::Rejected { status: 404, .. } | TesError::BadResponse { .. } => format!(
            "is this a TES v1.1 server? {} is its base URL (/ga4gh/tes/v1 is appended)",
            env_vars::BACKEND
        ),
        _ => format!("check {} and the backend's logs", env_vars::BACKEND),
    };
    let reason = if chain.to_lowercase().contains("connection refused") {
        "connection refused".to_owned()
    } else {
        chain
    };
    format!("{shown}: {reason} - {hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn nothing_configured_skips_both() {
        let checks = check_backend(&Env::default()).await;
        assert_eq!(checks.len(), 2);
        assert!(
            checks.iter().all(|c| c.status == Status::Skip),
            "{checks:?}"
        );
        assert!(checks[0].summary.contains("passthrough-only"));
    }

    #[tokio::test]
    async fn a_closed_port_is_connection_refused() {
        // Bind, note the port, close: nothing listens there now.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let env = Env::from_pairs([(env_vars::BACKEND, url.as_str())]);
        let checks = check_backend(&env).await;
        assert_eq!(checks[0].status, Status::Fail, "{checks:?}");
        assert!(
            checks[0].summary.contains("connection refused")
                && checks[0].summary.contains("is the worker running?")
                && checks[0].summary.contains(&url),
            "{checks:?}"
        );
        assert_eq!(checks[1].status, Status::Skip);
    }

    #[tokio::test]
    async fn a_bad_url_names_the_variable() {
        // The same rule as the shim's (`config::backend_url`): a query is refused
        // there too, so doctor does not pass what the shim would exit 78 on.
        for url in ["ftp://h", "http://h/?x=1"] {
            let env = Env::from_pairs([(env_vars::BACKEND, url)]);
            let checks = check_backend(&env).await;
            assert_eq!(checks[0].status, Status::Fail, "{url}");
            assert!(
                checks[0].summary.contains("BB_REMOTE_BACKEND")
                    && checks[0].summary.contains("expected"),
                "{checks:?}"
            );
        }
    }
}
