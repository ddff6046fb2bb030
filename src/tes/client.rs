//! A GA4GH TES v1.1 HTTP client: the shim's side of the task RPC.
//!
//! Every request has its own deadline: a connect timeout and a whole-request timeout
//! (body included); the whole delegated call is bounded by its caller
//! (`delegate::drive`, `BB_REMOTE_TIMEOUT`). JSON replies are read up to [`MAX_JSON_BODY`] bytes,
//! never more, so a hostile or broken backend cannot fill memory; task lists stop
//! after [`MAX_LIST_PAGES`] pages or [`LIST_TIME_LIMIT`]. The idempotent calls (get,
//! list, cancel, service-info) retry by themselves on transport errors, 5xx, 408 and
//! 429; `create_task` never does, because a blind retry could start a proof twice.
//! The shim makes creation idempotent (a tag lookup first) and wraps it in [`retry`].
//!
//! Not here: polling policy, plan-to-task mapping (the delegate module).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use url::Url;

use super::error::{error_message, redacted, truncate};
use super::types::{CreateTaskResponse, ListTasksResponse, ServiceInfo, State, Task, View};
use super::BASE_PATH;

pub use super::error::TesError;
pub use super::retry::{retry, RetryPolicy};

/// The largest JSON reply read. A FULL task view with two 64 KiB log tails is far
/// smaller; anything bigger is refused, naming the URL.
pub const MAX_JSON_BODY: usize = 4 * 1024 * 1024;
/// How much of an error reply is read for its message; the rest is dropped unread.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// A task list longer than this many pages is refused (the shim's lists are filtered
/// by tag and have a handful of entries).
pub const MAX_LIST_PAGES: usize = 20;
/// A task list that takes longer than this in all is refused.
pub(crate) const LIST_TIME_LIMIT: Duration = Duration::from_secs(60);

/// Client settings.
#[derive(Clone)]
pub struct ClientOptions {
    /// Sent as `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Whole-request timeout, connection and body included.
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
    request_timeout: Duration,
}

impl std::fmt::Debug for TesClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token or a password in the URL.
        f.debug_struct("TesClient")
            .field("base", &redacted(&self.base))
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl TesClient {
    /// A client for the backend at `backend` (`http(s)://host[:port][/prefix]`; the TES
    /// base path `/ga4gh/tes/v1` is appended unless already there).
    pub fn new(backend: &str, options: ClientOptions) -> Result<Self, TesError> {
        let parsed = Url::parse(backend);
        let shown = parsed
            .as_ref()
            .map(redacted)
            .unwrap_or_else(|_| backend.to_owned());
        let bad = |reason: String| TesError::InvalidUrl {
            url: shown.clone(),
            reason,
        };
        let mut base = parsed.map_err(|e| bad(e.to_string()))?;
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
        let mut builder = reqwest::Client::builder()
            .timeout(options.request_timeout)
            .connect_timeout(options.connect_timeout)
            .user_agent(concat!("bb-remote/", env!("CARGO_PKG_VERSION")));
        if base.scheme() == "http" {
            // A plain-http backend needs no CA roots, and loading the system's (every
            // file of its certificate directory) costs each delegated call several ms.
            // With no roots, an https redirect fails verification: never unverified.
            builder = builder.tls_certs_only([]);
        }
        let http = builder
            .build()
            .map_err(|e| bad(format!("cannot build an HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            token: options.token,
            retry: options.retry,
            request_timeout: options.request_timeout,
        })
    }

    /// The retry policy applied to idempotent calls.
    pub(crate) fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// `POST /tasks`: submit a task, returning its id. Sent once, never retried here.
    pub async fn create_task(&self, task: &Task) -> Result<String, TesError> {
        let url = self.url(&["tasks"]);
        let body = serde_json::to_vec(task).map_err(|source| TesError::BadResponse {
            url: redacted(&url),
            source,
        })?;
        let reply: CreateTaskResponse =
            decode(&url, &self.send(Method::POST, &url, Some(body)).await?)?;
        Ok(reply.id)
    }

    /// `GET /tasks/{id}?view=...`.
    pub async fn get_task(&self, id: &str, view: View) -> Result<Task, TesError> {
        let mut url = self.url(&["tasks", id]);
        url.query_pairs_mut().append_pair("view", view_name(view));
        self.get_json(&url, "get task").await
    }

    /// `GET /tasks/{id}?view=...` with `Prefer: wait=<wait>` (RFC 7240, see
    /// [`super::prefer`]): a backend that honours it answers when the task's state
    /// changes, it ends, or `wait` passes. Returns the task and the wait the backend
    /// says it applied (`Preference-Applied`), `None` from one that ignores the header
    /// and answered at once. This request's deadline is `wait` plus the usual one.
    /// A `wait` under a second asks for none (the header counts whole seconds).
    pub async fn get_task_waiting(
        &self,
        id: &str,
        view: View,
        wait: Duration,
    ) -> Result<(Task, Option<Duration>), TesError> {
        let mut url = self.url(&["tasks", id]);
        url.query_pairs_mut().append_pair("view", view_name(view));
        let secs = wait.as_secs();
        let wait = (secs > 0).then(|| Wait {
            header: super::prefer::wait_value(secs),
            timeout: self.request_timeout + Duration::from_secs(secs),
        });
        retry(&self.retry, "get task", || async {
            let reply = self
                .exchange(Method::GET, &url, None, wait.as_ref())
                .await?;
            Ok((decode(&url, &reply.body)?, reply.wait_applied))
        })
        .await
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

    /// Every page of `query`, keeping the tasks `keep` accepts (so memory holds only
    /// those). Bounded: more than [`MAX_LIST_PAGES`] pages, a page token that comes
    /// back, or more than [`LIST_TIME_LIMIT`] in all is a [`TesError::Paging`].
    pub async fn list_all_tasks(
        &self,
        query: &ListQuery,
        mut keep: impl FnMut(&Task) -> bool,
    ) -> Result<Vec<Task>, TesError> {
        let started = Instant::now();
        let mut query = query.clone();
        let mut tokens = HashSet::new();
        let mut kept = Vec::new();
        let paging = |reason: String| TesError::Paging {
            url: redacted(&self.url(&["tasks"])),
            reason,
        };
        for _ in 0..MAX_LIST_PAGES {
            let page = self.list_tasks(&query).await?;
            kept.extend(page.tasks.into_iter().filter(|t| keep(t)));
            let Some(token) = page.next_page_token.filter(|t| !t.is_empty()) else {
                return Ok(kept);
            };
            if !tokens.insert(token.clone()) {
                return Err(paging(format!(
                    "the task list repeats page token {:?}",
                    truncate(token)
                )));
            }
            if started.elapsed() > LIST_TIME_LIMIT {
                return Err(paging(format!(
                    "listing tasks took more than {} s",
                    LIST_TIME_LIMIT.as_secs()
                )));
            }
            query.page_token = Some(token);
        }
        Err(paging(format!(
            "the task list did not end after {MAX_LIST_PAGES} pages"
        )))
    }

    /// `POST /tasks/{id}:cancel` (no request body: the schema declares none).
    /// Cancelling twice is harmless, so it is retried.
    pub async fn cancel_task(&self, id: &str) -> Result<(), TesError> {
        let url = self.url(&["tasks", &format!("{id}:cancel")]);
        retry(&self.retry, "cancel task", || async {
            // The reply is `{}`; nothing in it to check.
            self.send(Method::POST, &url, None).await.map(drop)
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
            let body = self.send(Method::GET, url, None).await?;
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

    /// Send one request; a 2xx gives its body (at most [`MAX_JSON_BODY`] bytes),
    /// anything else a classified error.
    async fn send(
        &self,
        method: Method,
        url: &Url,
        body: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, TesError> {
        Ok(self.exchange(method, url, body, None).await?.body)
    }

    /// [`TesClient::send`], optionally asking the backend to hold the answer (`wait`).
    async fn exchange(
        &self,
        method: Method,
        url: &Url,
        body: Option<Vec<u8>>,
        wait: Option<&Wait>,
    ) -> Result<Reply, TesError> {
        let mut req = self
            .http
            .request(method, url.clone())
            .timeout(wait.map_or(self.request_timeout, |w| w.timeout))
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(wait) = wait {
            req = req.header(super::prefer::PREFER, &wait.header);
        }
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body);
        }
        let transport = |source: reqwest::Error| TesError::Transport {
            url: redacted(url),
            source: source.without_url(),
        };
        let mut resp = req.send().await.map_err(transport)?;
        let status = resp.status();
        if status.is_success() {
            let too_large = || TesError::TooLarge {
                url: redacted(url),
                limit: MAX_JSON_BODY,
            };
            if resp
                .content_length()
                .is_some_and(|n| n > MAX_JSON_BODY as u64)
            {
                return Err(too_large());
            }
            let wait_applied = super::prefer::wait_secs(
                resp.headers()
                    .get_all(super::prefer::PREFERENCE_APPLIED)
                    .iter()
                    .filter_map(|v| v.to_str().ok()),
            )
            .map(Duration::from_secs);
            let (body, complete) = read_at_most(&mut resp, MAX_JSON_BODY)
                .await
                .map_err(transport)?;
            return match complete {
                true => Ok(Reply { body, wait_applied }),
                false => Err(too_large()),
            };
        }
        // The explanation only: a broken or endless error body is cut, not an error.
        let body = read_at_most(&mut resp, MAX_ERROR_BODY)
            .await
            .map(|(body, _)| body)
            .unwrap_or_default();
        let status_code = status.as_u16();
        if is_retryable_status(status) {
            Err(TesError::Unavailable {
                status: status_code,
                url: redacted(url),
                body: truncate(String::from_utf8_lossy(&body).into_owned()),
            })
        } else {
            Err(TesError::Rejected {
                status: status_code,
                url: redacted(url),
                message: error_message(&body),
            })
        }
    }
}

/// A long poll's `Prefer` value and the deadline of its request.
struct Wait {
    header: String,
    timeout: Duration,
}

/// A successful answer: its body and the `Preference-Applied` wait, if any.
struct Reply {
    body: Vec<u8>,
    wait_applied: Option<Duration>,
}

/// Up to `limit` bytes of the body, chunk by chunk; `false` when more was coming
/// (the rest is never read).
async fn read_at_most(
    resp: &mut reqwest::Response,
    limit: usize,
) -> Result<(Vec<u8>, bool), reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > limit {
            let room = limit - body.len();
            body.extend_from_slice(&chunk[..room]);
            return Ok((body, false));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, true))
}

fn is_retryable_status(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

fn decode<T: DeserializeOwned>(url: &Url, body: &[u8]) -> Result<T, TesError> {
    serde_json::from_slice(body).map_err(|source| TesError::BadResponse {
        url: redacted(url),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_path_is_appended_once() {
        let c = TesClient::new("http://h:8000", ClientOptions::default()).unwrap();
        assert_eq!(c.base.as_str(), "http://h:8000/ga4gh/tes/v1");
        let c = TesClient::new("https://h/api/ga4gh/tes/v1/", ClientOptions::default()).unwrap();
        assert_eq!(c.base.as_str(), "https://h/api/ga4gh/tes/v1");
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
        let err = TesClient::new("ftp://u:pw@h", ClientOptions::default()).unwrap_err();
        assert!(!err.to_string().contains("pw"), "{err}");
    }

    #[test]
    fn token_is_not_debug_printed() {
        let opts = ClientOptions {
            token: Some("s3cret".into()),
            ..ClientOptions::default()
        };
        assert!(!format!("{opts:?}").contains("s3cret"));
        let c = TesClient::new("http://u:pw@h", opts).unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("pw"),
            "{shown}"
        );
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
