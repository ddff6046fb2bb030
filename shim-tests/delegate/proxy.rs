//! TEST DOUBLE: a fault-injecting HTTP proxy in front of the real worker. It forwards
//! every request and, as told, answers 503 instead, loses the answer to a create that
//! the worker did perform, or rewrites the FULL view of a finished task.
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

type Rewrite = Box<dyn Fn(&mut Value) + Send>;

/// What to break. Counters count down as faults are injected.
#[derive(Default)]
pub struct Faults {
    /// Answer this many requests (of any kind) with 503 without forwarding them.
    pub unavailable: usize,
    /// Forward this many task creations, then answer 502 instead of the worker's reply.
    pub lose_create_response: usize,
    /// Applied to the JSON of every FULL view of a terminal task.
    pub rewrite_full: Option<Rewrite>,
    /// Requests received (all kinds), for assertions.
    pub seen: usize,
    /// Pass `Prefer` to the worker and `Preference-Applied` back (long polls). Off, the
    /// proxy is a backend that ignores `Prefer`, as most TES engines do.
    pub forward_prefer: bool,
    /// `GET /tasks/{id}` requests received (the shim's waiting), for assertions.
    pub task_reads: usize,
    /// Answer this many `GET /tasks/{id}` with 503 without forwarding them.
    pub unavailable_reads: usize,
}

pub struct FaultProxy {
    pub url: String,
    pub faults: Arc<Mutex<Faults>>,
    task: tokio::task::JoinHandle<()>,
}

struct Shared {
    upstream: String,
    faults: Arc<Mutex<Faults>>,
    http: reqwest::Client,
}

impl FaultProxy {
    pub async fn start(upstream: &str, faults: Faults) -> Self {
        bb_remote::store::ensure_tls_provider();
        let faults = Arc::new(Mutex::new(faults));
        let shared = Arc::new(Shared {
            upstream: upstream.to_owned(),
            faults: faults.clone(),
            http: reqwest::Client::new(),
        });
        let app = axum::Router::new().fallback(forward).with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url, faults, task }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn forward(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let is_create = method == Method::POST && uri.path().ends_with("/tasks");
    let is_task_read = method == Method::GET && uri.path().contains("/tasks/");
    let forward_prefer;
    {
        let mut faults = shared.faults.lock().unwrap();
        faults.seen += 1;
        faults.task_reads += usize::from(is_task_read);
        forward_prefer = faults.forward_prefer;
        if faults.unavailable > 0 {
            faults.unavailable -= 1;
            return (StatusCode::SERVICE_UNAVAILABLE, "injected 503").into_response();
        }
        if is_task_read && faults.unavailable_reads > 0 {
            faults.unavailable_reads -= 1;
            return (StatusCode::SERVICE_UNAVAILABLE, "injected 503").into_response();
        }
    }
    let url = format!("{}{}", shared.upstream, uri);
    let mut request = shared
        .http
        .request(
            reqwest::Method::from_bytes(method.as_str().as_bytes()).unwrap(),
            url,
        )
        .body(body);
    if let Some(auth) = headers.get("authorization") {
        request = request.header("authorization", auth.to_str().unwrap());
    }
    let prefer = headers.get("prefer").filter(|_| forward_prefer);
    if let Some(prefer) = prefer {
        request = request.header("prefer", prefer.to_str().unwrap());
    }
    let reply = request.send().await.unwrap();
    let status = StatusCode::from_u16(reply.status().as_u16()).unwrap();
    let applied = reply
        .headers()
        .get("preference-applied")
        .filter(|_| forward_prefer)
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = reply.bytes().await.unwrap();
    let mut faults = shared.faults.lock().unwrap();
    if is_create && faults.lose_create_response > 0 {
        faults.lose_create_response -= 1;
        return (StatusCode::BAD_GATEWAY, "injected: create response lost").into_response();
    }
    let full = uri.query().is_some_and(|q| q.contains("view=FULL"));
    if let (true, Some(rewrite)) = (full, &faults.rewrite_full) {
        if let Ok(mut json) = serde_json::from_slice::<Value>(&bytes) {
            let terminal = json["state"].as_str().is_some_and(|s| {
                matches!(
                    s,
                    "COMPLETE" | "EXECUTOR_ERROR" | "SYSTEM_ERROR" | "CANCELED"
                )
            });
            if terminal {
                rewrite(&mut json);
                return (status, json.to_string()).into_response();
            }
        }
    }
    let mut response = (status, bytes).into_response();
    if let Some(applied) = applied {
        let value = axum::http::HeaderValue::from_str(&applied).unwrap();
        response.headers_mut().insert("preference-applied", value);
    }
    response
}

/// TEST DOUBLE: a hostile TES backend (no real server misbehaves on demand). Every
/// request is counted; what it answers is chosen by [`Hostile`].
pub struct HostileTes {
    pub url: String,
    pub requests: Arc<Mutex<usize>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone, Copy)]
pub enum Hostile {
    /// Every list answers an empty page with a fresh `next_page_token`.
    EndlessPages,
    /// Every request answers 200 with a JSON body of this many bytes, streamed (the
    /// double never holds it in memory).
    HugeBody(u64),
}

impl HostileTes {
    pub async fn start(mode: Hostile) -> Self {
        let requests = Arc::new(Mutex::new(0usize));
        let counter = requests.clone();
        let app = axum::Router::new().fallback(move || {
            let counter = counter.clone();
            async move {
                let n = {
                    let mut seen = counter.lock().unwrap();
                    *seen += 1;
                    *seen
                };
                match mode {
                    Hostile::EndlessPages => {
                        format!(r#"{{"tasks":[],"next_page_token":"page-{n}"}}"#).into_response()
                    }
                    Hostile::HugeBody(len) => huge_json(len).into_response(),
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            url,
            requests,
            task,
        }
    }

    pub fn requests(&self) -> usize {
        *self.requests.lock().unwrap()
    }
}

impl Drop for HostileTes {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `{"tasks":[` + spaces + `]}`, `len` bytes in all, in 1 MiB chunks made on the fly.
fn huge_json(len: u64) -> axum::body::Body {
    const CHUNK: u64 = 1024 * 1024;
    let head = Bytes::from_static(br#"{"tasks":["#);
    let tail = Bytes::from_static(b"]}");
    let fill = len.saturating_sub((head.len() + tail.len()) as u64);
    let spaces = Bytes::from(vec![b' '; CHUNK as usize]);
    let middle = (0..fill.div_ceil(CHUNK)).map(move |i| {
        let n = CHUNK.min(fill - i * CHUNK) as usize;
        spaces.slice(..n)
    });
    let chunks = std::iter::once(head)
        .chain(middle)
        .chain(std::iter::once(tail))
        .map(Ok::<_, std::convert::Infallible>);
    axum::body::Body::from_stream(futures::stream::iter(chunks))
}
