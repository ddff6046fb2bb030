//! The HTTP surface: TES v1.1 under `/ga4gh/tes/v1`, plus `GET /metrics`.
//!
//! Errors are JSON `{"message": "...", "code": <http status>}`, with the message
//! naming what was wrong (field, limit or id). Request bodies are read whole and parsed
//! here, so a body over the limit or malformed JSON gets that message rather than a
//! framework default.
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State as AxumState};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};

use super::auth;
use super::db::ListFilter;
use super::service::{CreateError, Worker};
use super::waits::Waits;
use crate::tes::types::{
    CreateTaskResponse, ListTasksResponse, Organization, ServiceInfo, ServiceType, State, Task,
    View,
};
use crate::tes::{prefer, BASE_PATH};

/// TES v1.1 defaults for ListTasks.
const DEFAULT_PAGE_SIZE: usize = 256;
const MAX_PAGE_SIZE: usize = 2048;

type Shared = Arc<Worker>;

/// An error response: status plus a message for humans.
#[derive(Debug)]
pub(crate) struct ApiError(StatusCode, String);

/// Build an error response (also used by the auth middleware).
pub(crate) fn error_response(status: StatusCode, message: String) -> ApiError {
    ApiError(status, message)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "message": self.1, "code": self.0.as_u16() });
        (self.0, Json(body)).into_response()
    }
}

impl From<super::db::DbError> for ApiError {
    fn from(err: super::db::DbError) -> Self {
        tracing::error!("{err}");
        // An I/O failure (full disk) is the worker being unavailable, not a bug.
        let status = if err.is_io() {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        ApiError(status, err.to_string())
    }
}

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

/// All routes, with the token check and the body limit applied.
pub(crate) fn router(
    worker: Shared,
    waits: Arc<Waits>,
    token: Option<String>,
    max_body: usize,
) -> Router {
    let tes = Router::new()
        .route(
            "/service-info",
            get(service_info).fallback(|| not_allowed(GET)),
        )
        .route(
            "/tasks",
            get(list_tasks)
                .post(create_task)
                .fallback(|| not_allowed(GET_POST)),
        )
        .route(
            "/tasks/{id}",
            get(get_task)
                .post(task_action)
                .fallback(|| not_allowed(GET_POST)),
        );
    Router::new()
        .nest(BASE_PATH, tes)
        .route("/metrics", get(metrics).fallback(|| not_allowed(GET)))
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such route".into()) })
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(token),
            auth::require_token,
        ))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(Extension(waits))
        .with_state(worker)
}

/// `Allow` values: what each path does support (`get` also answers HEAD).
const GET: &str = "GET, HEAD";
const GET_POST: &str = "GET, HEAD, POST";

/// 405 with the JSON error body every other error has, and the methods that work.
async fn not_allowed(allow: &'static str) -> Response {
    let message = format!("method not allowed here; this path accepts {allow}");
    let mut response = ApiError(StatusCode::METHOD_NOT_ALLOWED, message).into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    response
}

async fn service_info(AxumState(worker): AxumState<Shared>) -> Result<Json<ServiceInfo>, ApiError> {
    if !worker.healthy() {
        return Err(ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "unhealthy: the task database cannot be written (I/O error, e.g. a full disk); \
             tasks are not accepted until it can"
                .into(),
        ));
    }
    Ok(Json(ServiceInfo {
        id: "dev.bb-remote.worker".into(),
        name: "bb-remote worker".into(),
        service_type: ServiceType {
            group: "org.ga4gh".into(),
            artifact: "tes".into(),
            version: "1.1.0".into(),
        },
        description: Some("Reference TES backend that runs barretenberg's bb".into()),
        organization: Organization {
            name: "bb-remote".into(),
            url: "https://github.com/AztecProtocol/aztec-packages".into(),
        },
        version: env!("CARGO_PKG_VERSION").into(),
        storage: vec![worker.config.store.base_url().to_string()],
        ..ServiceInfo::default()
    }))
}

async fn create_task(
    AxumState(worker): AxumState<Shared>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<CreateTaskResponse>, ApiError> {
    let body = body.map_err(|rejection| {
        let status = rejection.status();
        let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
            "request body is larger than this worker accepts (--max-body)".to_owned()
        } else {
            format!("could not read the request body: {}", rejection.body_text())
        };
        ApiError(status, message)
    })?;
    let task: Task = serde_json::from_slice(&body)
        .map_err(|e| bad_request(format!("request body is not a valid TES task: {e}")))?;
    match worker.create(task).await {
        Ok(id) => Ok(Json(CreateTaskResponse { id })),
        Err(CreateError::Invalid(message)) => Err(bad_request(message)),
        Err(CreateError::Db(err)) => Err(err.into()),
    }
}

/// `GET /tasks/{id}`; with `Prefer: wait=N` the answer is held until the task's state
/// changes, it ends, or the wait granted passes (see `waits`).
async fn get_task(
    AxumState(worker): AxumState<Shared>,
    Extension(waits): Extension<Arc<Waits>>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let mut view = View::default();
    for (name, value) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "view" => view = parse_view(&value)?,
            other => return Err(bad_request(format!("unknown query parameter {other:?}"))),
        }
    }
    let asked = prefer::wait_secs(
        headers
            .get_all(prefer::PREFER)
            .iter()
            .filter_map(|v| v.to_str().ok()),
    );
    // Before the first read, so a change right after it still ends the wait.
    let mut held = asked.and_then(|secs| waits.begin(&id, Duration::from_secs(secs)));
    let mut task = read_task(&worker, &id).await?;
    if let Some(held) = held.as_mut() {
        let first = task.state;
        while !first.is_some_and(State::is_terminal)
            && task.state == first
            && held.next_change().await
        {
            task = read_task(&worker, &id).await?;
        }
    }
    let mut response = Json(apply_view(task, view)).into_response();
    if let Some(held) = held {
        let applied = prefer::wait_value(held.granted.as_secs());
        response.headers_mut().insert(
            prefer::PREFERENCE_APPLIED,
            HeaderValue::try_from(applied).expect("digits are a valid header value"),
        );
    }
    Ok(response)
}

async fn read_task(worker: &Worker, id: &str) -> Result<Task, ApiError> {
    let lookup = id.to_owned();
    let task = worker.with_db(move |db| db.get(&lookup)).await?;
    task.ok_or_else(|| not_found(id))
}

/// `POST /tasks/{id}:cancel` (the `:cancel` is part of the last path segment).
async fn task_action(
    AxumState(worker): AxumState<Shared>,
    Path(segment): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Some(id) = segment.strip_suffix(":cancel") else {
        return Err(ApiError(
            StatusCode::NOT_FOUND,
            format!("no such action on a task: {segment:?} (expected <id>:cancel)"),
        ));
    };
    if worker.cancel(id).await? {
        Ok(Json(serde_json::json!({})))
    } else {
        Err(not_found(id))
    }
}

/// ListTasks parameters. Parsed by hand because `tag_key`/`tag_value` repeat, which
/// axum's `Query` cannot express.
#[derive(Debug, Default)]
struct ListQuery {
    filter: ListFilter,
    page_size: usize,
    page_token: Option<String>,
    view: View,
}

fn parse_list_query(raw: &str) -> Result<ListQuery, ApiError> {
    let mut query = ListQuery {
        page_size: DEFAULT_PAGE_SIZE,
        ..ListQuery::default()
    };
    let (mut keys, mut values) = (Vec::new(), Vec::new());
    for (name, value) in url::form_urlencoded::parse(raw.as_bytes()) {
        let value = value.into_owned();
        match name.as_ref() {
            "name_prefix" => query.filter.name_prefix = Some(value).filter(|v| !v.is_empty()),
            "state" => {
                let state = State::parse(&value)
                    .ok_or_else(|| bad_request(format!("unknown state {value:?}")))?;
                query.filter.state = Some(state);
            }
            "tag_key" => keys.push(value),
            "tag_value" => values.push(value),
            "page_size" => {
                query.page_size = value
                    .parse()
                    .ok()
                    .filter(|size| (1..=MAX_PAGE_SIZE).contains(size))
                    .ok_or_else(|| {
                        bad_request(format!(
                            "page_size {value:?} is not an integer from 1 to {MAX_PAGE_SIZE}"
                        ))
                    })?;
            }
            "page_token" => query.page_token = Some(value).filter(|v| !v.is_empty()),
            "view" => query.view = parse_view(&value)?,
            other => return Err(bad_request(format!("unknown query parameter {other:?}"))),
        }
    }
    if values.len() > keys.len() {
        return Err(bad_request("more tag_value than tag_key parameters"));
    }
    let mut values = values.into_iter();
    query.filter.tags = keys
        .into_iter()
        .map(|key| (key, values.next().filter(|v| !v.is_empty())))
        .collect();
    Ok(query)
}

fn parse_view(value: &str) -> Result<View, ApiError> {
    serde_json::from_value(serde_json::Value::String(value.to_owned()))
        .map_err(|_| bad_request(format!("unknown view {value:?} (MINIMAL, BASIC or FULL)")))
}

async fn list_tasks(
    AxumState(worker): AxumState<Shared>,
    RawQuery(raw): RawQuery,
) -> Result<Json<ListTasksResponse>, ApiError> {
    let q = parse_list_query(raw.as_deref().unwrap_or_default())?;
    let (filter, after, limit) = (q.filter, q.page_token, q.page_size);
    let (tasks, next_page_token) = worker
        .with_db(move |db| db.list(&filter, after.as_deref(), limit))
        .await?;
    let tasks = tasks.into_iter().map(|t| apply_view(t, q.view)).collect();
    Ok(Json(ListTasksResponse {
        tasks,
        next_page_token,
    }))
}

async fn metrics(
    AxumState(worker): AxumState<Shared>,
    Extension(waits): Extension<Arc<Waits>>,
) -> Response {
    let (queued, running) = worker.admission.counts();
    let mut text = worker.metrics.render(queued, running);
    text.push_str(&format!(
        "# HELP bb_remote_worker_healthy 1 while the task database can be written.\n\
         # TYPE bb_remote_worker_healthy gauge\nbb_remote_worker_healthy {}\n\
         # HELP bb_remote_worker_reads_held Task reads held for Prefer: wait (long polls).\n\
         # TYPE bb_remote_worker_reads_held gauge\nbb_remote_worker_reads_held {}\n",
        u8::from(worker.healthy()),
        waits.held()
    ));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

fn not_found(id: &str) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, format!("no task with id {id:?}"))
}

/// Trim a task to what a view shows (TES v1.1 "view" semantics).
fn apply_view(task: Task, view: View) -> Task {
    match view {
        View::Minimal => Task {
            id: task.id,
            state: task.state,
            ..Task::default()
        },
        View::Basic => {
            let mut task = task;
            for input in &mut task.inputs {
                input.content = None;
            }
            for log in &mut task.logs {
                log.system_logs.clear();
                for exec in &mut log.logs {
                    exec.stdout = None;
                    exec.stderr = None;
                }
            }
            task
        }
        View::Full => task,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_query_with_repeated_tags() {
        let q = parse_list_query(
            "name_prefix=job&state=QUEUED&tag_key=a&tag_value=1&tag_key=b&tag_value=\
             &page_size=2048&view=BASIC",
        )
        .unwrap();
        assert_eq!(q.filter.name_prefix.as_deref(), Some("job"));
        assert_eq!(q.filter.state, Some(State::Queued));
        assert_eq!(
            q.filter.tags,
            [
                ("a".to_string(), Some("1".to_string())),
                ("b".to_string(), None)
            ]
        );
        assert_eq!(q.page_size, MAX_PAGE_SIZE);
        assert_eq!(q.view, View::Basic);
        for bad in [
            "state=DONE",
            "view=ALL",
            "page_size=-1",
            "page_size=0",
            "page_size=2049",
            "colour=red",
            "tag_value=x",
        ] {
            assert!(parse_list_query(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn views_trim_the_task() {
        let task: Task = serde_json::from_value(serde_json::json!({
            "id": "t", "state": "COMPLETE", "name": "n",
            "inputs": [{"path": "/a", "content": "secret"}],
            "executors": [{"image": "bb", "command": ["bb"]}],
            "logs": [{"logs": [{"exit_code": 0, "stdout": "out"}], "system_logs": ["s"],
                      "outputs": []}]
        }))
        .unwrap();
        let minimal = serde_json::to_value(apply_view(task.clone(), View::Minimal)).unwrap();
        assert_eq!(minimal, serde_json::json!({"id": "t", "state": "COMPLETE"}));
        let basic = apply_view(task.clone(), View::Basic);
        assert_eq!(basic.name.as_deref(), Some("n"));
        assert_eq!(basic.inputs[0].content, None);
        assert_eq!(basic.logs[0].logs[0].stdout, None);
        assert!(basic.logs[0].system_logs.is_empty());
        assert_eq!(apply_view(task.clone(), View::Full), task);
    }
}
