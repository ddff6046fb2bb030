//! Serving the router over HTTP/1.1 with bounds a client cannot stretch, all of them
//! before authentication (so they hold against clients without the token too):
//! - at most `max_connections` open connections; past that the worker stops
//!   accepting until one closes (the kernel's backlog holds the rest);
//! - a connection must send a complete request head within `header_timeout`, also
//!   between requests on a kept-alive connection, so half-open and idle
//!   connections are closed instead of held for ever;
//! - a whole request (body read, handling, answer) must finish within
//!   `request_timeout`, else 408.
//!
//! `axum::serve` has none of these (no timer is given to hyper), hence this loop.
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use super::api::error_response;

/// The HTTP bounds (flags of `bb-remote worker`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_connections: usize,
    pub(crate) header_timeout: Duration,
    pub(crate) request_timeout: Duration,
}

/// How long open connections get to finish their current request at shutdown.
const DRAIN: Duration = Duration::from_secs(5);

/// Add the request timeout to `app` (outermost, so it also bounds reading the body).
pub(crate) fn with_request_timeout(app: Router, limits: Limits) -> Router {
    let timeout = limits.request_timeout;
    app.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| async move {
            match tokio::time::timeout(timeout, next.run(request)).await {
                Ok(response) => response,
                Err(_) => timed_out(timeout),
            }
        },
    ))
}

fn timed_out(timeout: Duration) -> Response {
    let message = format!(
        "the request did not complete within {} s (--request-timeout)",
        timeout.as_secs_f64()
    );
    error_response(StatusCode::REQUEST_TIMEOUT, message).into_response()
}

/// Serve `app` on `listener` until `shutdown` resolves, then let open requests finish
/// (up to [`DRAIN`]).
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop, stopped) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!("accepting a connection: {err}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Reap finished connection tasks so the set does not grow.
        while connections.try_join_next().is_some() {}
        let service = TowerToHyperService::new(app.clone());
        let mut stopped = stopped.clone();
        connections.spawn(async move {
            let _slot = permit;
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout);
            let mut connection = pin!(builder.serve_connection(TokioIo::new(stream), service));
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = stopped.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    let _ = stop.send(true);
    let drained = tokio::time::timeout(DRAIN, async {
        while connections.join_next().await.is_some() {}
    });
    if drained.await.is_err() {
        tracing::warn!("closing connections that did not finish within {DRAIN:?}");
    }
}
