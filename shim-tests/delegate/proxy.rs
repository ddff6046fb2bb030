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
    {
        let mut faults = shared.faults.lock().unwrap();
        faults.seen += 1;
        if faults.unavailable > 0 {
            faults.unavailable -= 1;
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
    let reply = request.send().await.unwrap();
    let status = StatusCode::from_u16(reply.status().as_u16()).unwrap();
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
    (status, bytes).into_response()
}
