//! The TES client against a fault-injecting test double: an HTTP server on loopback
//! that answers from a queue of canned responses and records every request. It only
//! exists to make the client meet 503s, 401s and broken JSON on demand; the real
//! worker's TES server is tested elsewhere.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use bb_remote::tes::client::{
    retry, ClientOptions, ListQuery, RetryPolicy, TesClient, TesError, MAX_JSON_BODY,
    MAX_LIST_PAGES,
};
use bb_remote::tes::types::{Executor, State, Task, View};

/// One request as the double saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path_and_query: String,
    authorization: Option<String>,
    content_type: Option<String>,
    body: String,
}

#[derive(Default)]
struct Script {
    replies: VecDeque<(u16, String)>,
    seen: Vec<Seen>,
}

/// Fault-injecting TES test double: replies are served in order; when the queue is
/// empty it answers 500 so a test that asks for more than it queued fails loudly.
struct FaultyTesDouble {
    script: Arc<Mutex<Script>>,
    base: String,
    server: tokio::task::JoinHandle<()>,
}

impl FaultyTesDouble {
    async fn start(replies: &[(u16, &str)]) -> Self {
        let script = Arc::new(Mutex::new(Script {
            replies: replies.iter().map(|(s, b)| (*s, b.to_string())).collect(),
            seen: Vec::new(),
        }));
        let state = script.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move {
                    let (status, body) = answer(&state, method, uri, headers, body);
                    if status == 0 {
                        // A stalled backend: accept, never answer (the server task is
                        // aborted when the double is dropped).
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                    (StatusCode::from_u16(status.max(200)).unwrap(), body)
                }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            script,
            base,
            server,
        }
    }

    fn seen(&self) -> Vec<Seen> {
        self.script.lock().unwrap().seen.clone()
    }
}

impl Drop for FaultyTesDouble {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Record the request and take the next queued reply (status 0: stall).
fn answer(
    script: &Mutex<Script>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (u16, String) {
    let mut script = script.lock().unwrap();
    script.seen.push(Seen {
        method,
        path_and_query: uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        authorization: headers
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned()),
        content_type: headers
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned()),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    script
        .replies
        .pop_front()
        .unwrap_or((500, "test double: no reply queued".into()))
}

/// Short sleeps so retries do not slow the suite; the bounds are what is tested.
fn fast_retry(max_attempts: usize) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        min_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        max_total_delay: Duration::from_secs(5),
    }
}

fn client(double: &FaultyTesDouble, token: Option<&str>) -> TesClient {
    let options = ClientOptions {
        token: token.map(str::to_owned),
        request_timeout: Duration::from_secs(10),
        connect_timeout: Duration::from_secs(5),
        retry: fast_retry(4),
    };
    TesClient::new(&double.base, options).unwrap()
}

const RUNNING: &str = r#"{"id":"task-1","state":"RUNNING"}"#;

#[tokio::test]
async fn get_task_retries_through_503s() {
    let double = FaultyTesDouble::start(&[(503, "busy"), (503, "busy"), (200, RUNNING)]).await;
    let task = client(&double, Some("tok"))
        .get_task("task-1", View::Minimal)
        .await
        .unwrap();
    assert_eq!(task.state, Some(State::Running));
    let seen = double.seen();
    assert_eq!(seen.len(), 3, "{seen:?}");
    for s in &seen {
        assert_eq!(s.method, Method::GET);
        assert_eq!(s.path_and_query, "/ga4gh/tes/v1/tasks/task-1?view=MINIMAL");
        assert_eq!(s.authorization.as_deref(), Some("Bearer tok"));
    }
}

#[tokio::test]
async fn retries_stop_at_the_attempt_bound() {
    let double = FaultyTesDouble::start(&[
        (502, "a"),
        (503, "b"),
        (429, "c"),
        (503, "d"),
        (200, RUNNING),
    ])
    .await;
    let err = client(&double, None)
        .get_task("task-1", View::Full)
        .await
        .unwrap_err();
    assert!(
        matches!(err, TesError::Unavailable { status: 503, .. }),
        "{err:?}"
    );
    assert!(err.is_retryable());
    assert_eq!(double.seen().len(), 4, "max_attempts is 4");
    assert!(double.seen()[0].authorization.is_none());
}

#[tokio::test]
async fn unauthorized_is_not_retried_and_carries_the_message() {
    let double =
        FaultyTesDouble::start(&[(401, r#"{"message":"token expired"}"#), (200, RUNNING)]).await;
    let err = client(&double, Some("old"))
        .get_task("task-1", View::Basic)
        .await
        .unwrap_err();
    match &err {
        TesError::Rejected {
            status, message, ..
        } => {
            assert_eq!((*status, message.as_str()), (401, "token expired"));
        }
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("token expired"), "{err}");
    assert_eq!(double.seen().len(), 1);
}

#[tokio::test]
async fn malformed_json_is_a_bad_response_not_retried() {
    let double =
        FaultyTesDouble::start(&[(200, r#"{"id": "task-1", "state": "#), (200, RUNNING)]).await;
    let err = client(&double, None)
        .get_task("task-1", View::Minimal)
        .await
        .unwrap_err();
    assert!(matches!(err, TesError::BadResponse { .. }), "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(double.seen().len(), 1);
    // A state outside the schema is bad JSON too, and the error says which value.
    let double = FaultyTesDouble::start(&[(200, r#"{"id":"t","state":"DONE"}"#)]).await;
    let err = client(&double, None)
        .get_task("t", View::Minimal)
        .await
        .unwrap_err();
    let chain = format!("{:?}", anyhow::Error::from(err));
    assert!(chain.contains("DONE"), "{chain}");
}

#[tokio::test]
async fn create_is_sent_once_and_can_be_retried_explicitly() {
    let task = Task {
        name: Some("prove".into()),
        executors: vec![Executor {
            image: "bb".into(),
            command: vec!["bb".into(), "prove".into()],
            ..Executor::default()
        }],
        ..Task::default()
    };
    let double = FaultyTesDouble::start(&[(503, "busy"), (200, r#"{"id":"new-1"}"#)]).await;
    let tes = client(&double, None);
    let err = tes.create_task(&task).await.unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert_eq!(double.seen().len(), 1, "create must not retry by itself");

    let id = retry(&fast_retry(3), "create task", || tes.create_task(&task))
        .await
        .unwrap();
    assert_eq!(id, "new-1");
    let seen = double.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        (seen[1].method.as_str(), seen[1].path_and_query.as_str()),
        ("POST", "/ga4gh/tes/v1/tasks")
    );
    let sent: Task = serde_json::from_str(&seen[1].body).unwrap();
    assert_eq!(sent, task);
}

#[tokio::test]
async fn list_cancel_and_service_info_use_the_schema_routes() {
    let info = r#"{"id":"org.example.bb","name":"bb","type":{"group":"org.ga4gh","artifact":"tes","version":"1.1.0"},
        "organization":{"name":"x","url":"https://example.org"},"version":"1","storage":["s3://b/"]}"#;
    let list = r#"{"tasks":[{"id":"a","state":"QUEUED"}],"next_page_token":"p2"}"#;
    let double = FaultyTesDouble::start(&[(200, list), (503, ""), (200, "{}"), (200, info)]).await;
    let tes = client(&double, None);
    let query = ListQuery {
        name_prefix: Some("bb-".into()),
        state: Some(State::Running),
        tags: vec![("bb-remote.key".into(), "k 1".into())],
        page_size: Some(10),
        page_token: Some("p1".into()),
        view: View::Basic,
    };
    let page = tes.list_tasks(&query).await.unwrap();
    assert_eq!(
        (page.tasks.len(), page.next_page_token.as_deref()),
        (1, Some("p2"))
    );
    tes.cancel_task("a").await.unwrap();
    let info = tes.service_info().await.unwrap();
    assert_eq!(info.storage, ["s3://b/"]);

    let seen: Vec<(String, String)> = double
        .seen()
        .into_iter()
        .map(|s| (s.method.to_string(), s.path_and_query))
        .collect();
    let expect = |m: &str, p: &str| (m.to_owned(), p.to_owned());
    assert_eq!(
        seen,
        [
            expect(
                "GET",
                "/ga4gh/tes/v1/tasks?name_prefix=bb-&state=RUNNING&tag_key=bb-remote.key&tag_value=k+1&page_size=10&page_token=p1&view=BASIC"
            ),
            expect("POST", "/ga4gh/tes/v1/tasks/a:cancel"),
            expect("POST", "/ga4gh/tes/v1/tasks/a:cancel"),
            expect("GET", "/ga4gh/tes/v1/service-info"),
        ]
    );
    // The schema declares no body for cancel: none is sent, and no content type.
    for cancel in &double.seen()[1..3] {
        assert_eq!(
            (cancel.body.as_str(), cancel.content_type.as_deref()),
            ("", None),
            "{cancel:?}"
        );
    }
}

#[tokio::test]
async fn json_replies_are_capped_whatever_the_length_header_says() {
    let big = format!(
        r#"{{"id":"t","state":"RUNNING","name":"{}"}}"#,
        "x".repeat(5 << 20)
    );
    let double = FaultyTesDouble::start(&[(200, big.as_str())]).await;
    let err = client(&double, None)
        .get_task("t", View::Full)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            TesError::TooLarge {
                limit: MAX_JSON_BODY,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains(&double.base), "{err}");
    assert!(!err.is_retryable());
    assert_eq!(double.seen().len(), 1);
    // Just under the cap is fine.
    let fits = format!(
        r#"{{"id":"t","state":"RUNNING","name":"{}"}}"#,
        "x".repeat(MAX_JSON_BODY - 100)
    );
    let double = FaultyTesDouble::start(&[(200, fits.as_str())]).await;
    let task = client(&double, None)
        .get_task("t", View::Full)
        .await
        .unwrap();
    assert_eq!(task.state, Some(State::Running));
}

#[tokio::test]
async fn task_lists_end_after_a_bounded_number_of_pages() {
    let pages: Vec<String> = (0..MAX_LIST_PAGES + 5)
        .map(|i| {
            format!(r#"{{"tasks":[{{"id":"t{i}","state":"QUEUED"}}],"next_page_token":"p{i}"}}"#)
        })
        .collect();
    let replies: Vec<(u16, &str)> = pages.iter().map(|p| (200, p.as_str())).collect();
    let double = FaultyTesDouble::start(&replies).await;
    let err = client(&double, None)
        .list_all_tasks(&ListQuery::default(), |_| true)
        .await
        .unwrap_err();
    assert!(matches!(err, TesError::Paging { .. }), "{err:?}");
    assert!(err.to_string().contains(&double.base), "{err}");
    assert_eq!(double.seen().len(), MAX_LIST_PAGES);

    // A token that comes back is a loop: stop at once.
    let page = r#"{"tasks":[],"next_page_token":"same"}"#;
    let double = FaultyTesDouble::start(&[(200, page), (200, page), (200, page)]).await;
    let err = client(&double, None)
        .list_all_tasks(&ListQuery::default(), |_| true)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("repeats page token"), "{err}");
    assert_eq!(double.seen().len(), 2);

    // An honest list: every page followed, only the kept tasks returned.
    let double = FaultyTesDouble::start(&[
        (
            200,
            r#"{"tasks":[{"id":"a","state":"QUEUED"}],"next_page_token":"n"}"#,
        ),
        (
            200,
            r#"{"tasks":[{"id":"b","state":"RUNNING"}],"next_page_token":""}"#,
        ),
    ])
    .await;
    let kept = client(&double, None)
        .list_all_tasks(&ListQuery::default(), |t| t.state == Some(State::Running))
        .await
        .unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].id.as_deref(), Some("b"));
    assert!(double.seen()[1].path_and_query.contains("page_token=n"));
}

#[tokio::test]
async fn unreachable_backend_is_a_retryable_transport_error() {
    // Bind then drop a listener: nothing listens on that port any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let options = ClientOptions {
        retry: fast_retry(2),
        ..ClientOptions::default()
    };
    let tes = TesClient::new(&format!("http://127.0.0.1:{port}"), options).unwrap();
    let err = tes.get_task("x", View::Minimal).await.unwrap_err();
    assert!(matches!(err, TesError::Transport { .. }), "{err:?}");
    assert!(err.is_retryable());
}
