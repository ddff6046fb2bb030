//! A GA4GH TES v1.1 HTTP client: the shim's side of the task RPC.
//!
//! Every call has a per-request timeout. The idempotent calls (get, list, cancel,
//! service-info) retry by themselves on transport errors, 5xx, 408 and 429;
//! `create_task` never does, because a blind retry could start a proof twice. The
//! shim makes creation idempotent (a tag lookup first) and wraps it in [`retry`].
//!
//! Not here: polling policy, plan-to-task mapping (the delegate module).

use std::future::Future;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;

use super::types::{CreateTaskResponse, ListTasksResponse, ServiceInfo, State, Task, View};
use super::BASE_PATH;

/// How much of an error body is kept for the message.
const MAX_ERROR_BODY: usize = 2000;

/// Why a TES call failed.
#[derive(Debug, thiserror::Error)]
pub enum TesError {
    #[error("invalid TES backend URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: String },

    /// Could not connect, or no complete answer within the timeout.
    #[error("cannot reach the TES backend at {url}")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },

    /// 5xx, 408 or 429: the backend is unwell or busy; worth retrying.
    #[error("TES backend answered {status} for {url}: {body}")]
    Unavailable {
        status: u16,
        url: String,
        body: String,
    },

    /// Any other 4xx: our request or configuration is wrong. Never retried.
    #[error("TES backend rejected the request ({status}) for {url}: {message}")]
    Rejected {
        status: u16,
        url: String,
        message: String,
    },

    /// A 2xx whose body is not the JSON the schema promises.
    #[error("TES backend sent an invalid response for {url}")]
    BadResponse {
        url: String,
        #[source]
        source: serde_json::Error,
    },
}

impl TesError {
    /// Transport failures and 5xx/408/429: the call may succeed later.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Transport { .. } | Self::Unavailable { .. })
    }
}

/// Bounded, jittered exponential backoff. Worst-case duration of a retried call is
/// `max_attempts` × the request timeout plus `max_total_delay`.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// Cap on the sum of the sleeps between attempts.
    pub max_total_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 6,
            min_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            max_total_delay: Duration::from_secs(30),
        }
    }
}

/// Run `op` until it succeeds, fails with a non-retryable error, or `policy` runs out.
/// Only wrap calls that are safe to repeat.
pub async fn retry<T, F, Fut>(policy: &RetryPolicy, what: &str, op: F) -> Result<T, TesError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, TesError>>,
{
    let backoff = ExponentialBuilder::default()
        .with_jitter()
        .with_min_delay(policy.min_delay)
        .with_max_delay(policy.max_delay)
        .with_max_times(policy.max_attempts.saturating_sub(1))
        .with_total_delay(Some(policy.max_total_delay));
    op.retry(backoff)
        .when(TesError::is_retryable)
        .notify(|err, delay| tracing::warn!(%what, error = %err, ?delay, "retrying TES call"))
        .await
}

/// Client settings.
#[derive(Clone)]
pub struct ClientOptions {
    /// Sent as `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Whole-request timeout, connection included.
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// Applied to the idempotent calls.
    pub retry: RetryPolicy,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            token: None,
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
        }
    }
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("retry", &self.retry)
            .finish()
    }
}

/// Filters and paging for [`TesClient::list_tasks`].
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub name_prefix: Option<String>,
    pub state: Option<State>,
    /// `tag_key`/`tag_value` pairs; a task must carry all of them.
    pub tags: Vec<(String, String)>,
    pub page_size: Option<u32>,
    pub page_token: Option<String>,
    pub view: View,
}

/// A TES v1.1 client for one backend.
#[derive(Clone)]
pub struct TesClient {
    http: reqwest::Client,
    /// Ends in `/ga4gh/tes/v1`.
    base: Url,
    token: Option<String>,
    retry: RetryPolicy,
}

impl std::fmt::Debug for TesClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        f.debug_struct("TesClient")
            .field("base", &self.base.as_str())
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl TesClient {
    /// A client for the backend at `backend` (`http(s)://host[:port][/prefix]`; the TES
    /// base path `/ga4gh/tes/v1` is appended unless already there).
    pub fn new(backend: &str, options: ClientOptions) -> Result<Self, TesError> {
        let bad = |reason: String| TesError::InvalidUrl {
            url: backend.to_owned(),
            reason,
        };
        let mut base = Url::parse(backend).map_err(|e| bad(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(bad("expected an http:// or https:// URL".into()));
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(bad("a backend URL takes no query or fragment".into()));
        }
        let path = base.path().trim_end_matches('/').to_owned();
        if path.ends_with(BASE_PATH) {
            base.set_path(&path);
        } else {
            base.set_path(&format!("{path}{BASE_PATH}"));
        }
        crate::store::ensure_tls_provider();
        let http = reqwest::Client::builder()
            .timeout(options.request_timeout)
            .connect_timeout(options.connect_timeout)
            .user_agent(concat!("bb-remote/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| bad(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            token: options.token,
            retry: options.retry,
        })
    }

    /// The TES base URL in use (ending in `/ga4gh/tes/v1`).
    pub fn base_url(&self) -> &Url {
        &self.base
    }

    /// The retry policy applied to idempotent calls.
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// `POST /tasks`: submit a task, returning its id. Sent once, never retried here.
    pub async fn create_task(&self, task: &Task) -> Result<String, TesError> {
        let url = self.url(&["tasks"]);
        let body = serde_json::to_vec(task).map_err(|source| TesError::BadResponse {
            url: url.to_string(),
            source,
        })?;
        let req = self.request(Method::POST, &url).body(body);
        let reply: CreateTaskResponse = decode(&url, &self.send(req, &url).await?)?;
        Ok(reply.id)
    }

    /// `GET /tasks/{id}?view=...`.
    pub async fn get_task(&self, id: &str, view: View) -> Result<Task, TesError> {
        let mut url = self.url(&["tasks", id]);
        url.query_pairs_mut().append_pair("view", view_name(view));
        self.get_json(&url, "get task").await
    }

    /// `GET /tasks` with filters; one page.
    pub async fn list_tasks(&self, query: &ListQuery) -> Result<ListTasksResponse, TesError> {
        let mut url = self.url(&["tasks"]);
        {
            let mut q = url.query_pairs_mut();
            if let Some(prefix) = &query.name_prefix {
                q.append_pair("name_prefix", prefix);
            }
            if let Some(state) = query.state {
                q.append_pair("state", state.as_str());
            }
            for (key, value) in &query.tags {
                q.append_pair("tag_key", key)
                    .append_pair("tag_value", value);
            }
            if let Some(size) = query.page_size {
                q.append_pair("page_size", &size.to_string());
            }
            if let Some(token) = &query.page_token {
                q.append_pair("page_token", token);
            }
            q.append_pair("view", view_name(query.view));
        }
        self.get_json(&url, "list tasks").await
    }

    /// `POST /tasks/{id}:cancel`. Cancelling twice is harmless, so it is retried.
    pub async fn cancel_task(&self, id: &str) -> Result<(), TesError> {
        let url = self.url(&["tasks", &format!("{id}:cancel")]);
        retry(&self.retry, "cancel task", || async {
            // The reply is `{}`; nothing in it to check.
            self.send(self.request(Method::POST, &url).body("{}"), &url)
                .await
                .map(drop)
        })
        .await
    }

    /// `GET /service-info`.
    pub async fn service_info(&self) -> Result<ServiceInfo, TesError> {
        let url = self.url(&["service-info"]);
        self.get_json(&url, "service info").await
    }

    async fn get_json<T: DeserializeOwned>(&self, url: &Url, what: &str) -> Result<T, TesError> {
        retry(&self.retry, what, || async {
            let body = self.send(self.request(Method::GET, url), url).await?;
            decode(url, &body)
        })
        .await
    }

    /// `base` plus path segments, each percent-encoded (task ids are opaque strings).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .expect("http(s) URLs have path segments")
            .extend(segments);
        url
    }

    fn request(&self, method: Method, url: &Url) -> reqwest::RequestBuilder {
        let req = self
            .http
            .request(method, url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        match &self.token {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }

    /// Send one request; a 2xx gives its body, anything else a classified error.
    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        url: &Url,
    ) -> Result<bytes::Bytes, TesError> {
        let transport = |source| TesError::Transport {
            url: url.to_string(),
            source,
        };
        let resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        let body = resp.bytes().await.map_err(transport)?;
        if status.is_success() {
            return Ok(body);
        }
        let url = url.to_string();
        let status_code = status.as_u16();
        if is_retryable_status(status) {
            let body = truncate(String::from_utf8_lossy(&body).into_owned());
            Err(TesError::Unavailable {
                status: status_code,
                url,
                body,
            })
        } else {
            Err(TesError::Rejected {
                status: status_code,
                url,
                message: error_message(&body),
            })
        }
    }
}

fn is_retryable_status(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

fn decode<T: DeserializeOwned>(url: &Url, body: &[u8]) -> Result<T, TesError> {
    serde_json::from_slice(body).map_err(|source| TesError::BadResponse {
        url: url.to_string(),
        source,
    })
}

fn view_name(view: View) -> &'static str {
    match view {
        View::Minimal => "MINIMAL",
        View::Basic => "BASIC",
        View::Full => "FULL",
    }
}

/// The server's explanation: a JSON `message`/`msg`/`detail`/`error` field if there is
/// one (TES servers differ), else the body as text.
fn error_message(body: &[u8]) -> String {
    let from_json = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            ["message", "msg", "detail", "error"]
                .iter()
                .find_map(|k| v.get(k).and_then(|m| m.as_str()).map(str::to_owned))
        });
    let text = from_json.unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
    if text.is_empty() {
        "(empty body)".to_owned()
    } else {
        truncate(text)
    }
}

fn truncate(mut text: String) -> String {
    if text.len() > MAX_ERROR_BODY {
        let mut cut = MAX_ERROR_BODY;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("...");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_path_is_appended_once() {
        let c = TesClient::new("http://h:8000", ClientOptions::default()).unwrap();
        assert_eq!(c.base_url().as_str(), "http://h:8000/ga4gh/tes/v1");
        let c = TesClient::new("https://h/api/ga4gh/tes/v1/", ClientOptions::default()).unwrap();
        assert_eq!(c.base_url().as_str(), "https://h/api/ga4gh/tes/v1");
        assert_eq!(
            c.url(&["tasks", "a/b:cancel"]).as_str(),
            "https://h/api/ga4gh/tes/v1/tasks/a%2Fb:cancel"
        );
    }

    #[test]
    fn bad_backend_urls_are_named() {
        for url in ["ftp://h", "h:8000", "http://h/?x=1"] {
            let err = TesClient::new(url, ClientOptions::default()).unwrap_err();
            assert!(err.to_string().contains(url), "{err}");
        }
    }

    #[test]
    fn server_message_is_extracted() {
        assert_eq!(error_message(br#"{"message":"bad token"}"#), "bad token");
        assert_eq!(error_message(b"  plain words \n"), "plain words");
        assert_eq!(error_message(b""), "(empty body)");
        assert!(error_message(&[b'x'; 5000]).ends_with("..."));
    }

    #[test]
    fn token_is_not_debug_printed() {
        let opts = ClientOptions {
            token: Some("s3cret".into()),
            ..ClientOptions::default()
        };
        assert!(!format!("{opts:?}").contains("s3cret"));
        let c = TesClient::new("http://h", opts).unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn retryable_statuses() {
        for code in [500, 502, 503, 408, 429] {
            assert!(
                is_retryable_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
        for code in [400, 401, 403, 404, 409] {
            assert!(
                !is_retryable_status(StatusCode::from_u16(code).unwrap()),
                "{code}"
            );
        }
    }
}
