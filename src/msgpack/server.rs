//! The socket server: bb 5.x's `msgpack run --input <P>.sock`, served by the shim.
//!
//! Each client connection gets a reader (frames in, one at a time) and a writer
//! (answers out, in request order). A request is either delegated (an answer the
//! shim computes, see `delegate.rs`) or relayed byte for byte to the native child over
//! this connection's own child connection. The writer takes answers strictly in
//! request order, so pipelined requests keep bb's FIFO order even when a delegated
//! proof sits between relayed hashes. Connections run concurrently: a stalled or huge
//! frame on one does not hold up another (bb itself serves one frame at a time).
//!
//! Stopping: `Shutdown` is answered after everything before it on its connection,
//! then every connection is closed, the child stopped, the socket unlinked, exit 0.
//! SIGTERM/SIGINT: no new connection or request is read, requests already read
//! (delegated ones included) are answered, then the same teardown and exit 0, as bb
//! does; a second signal exits at once.
//!
//! Everything runs on one thread (a `LocalSet` on the current-thread runtime): the
//! work is I/O, the native child must be forked from a thread that lives as long as
//! the server (its `PR_SET_PDEATHSIG` is tied to that thread), and the delegation
//! driver's futures are not `Send`.
use std::path::Path;
use std::sync::Arc;

use tokio::io::BufReader;
use tokio::net::{UnixListener, UnixStream};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{mpsc, oneshot, watch, Mutex};
use tokio::task::JoinSet;

use super::delegate::{Answer, Delegator};
use super::frame::{self, Envelope};
use super::native_child::{NativeChild, PrivateDir};
use super::socket::{self, WriteHalf};
use crate::config::{Env, Settings};

/// Socket reads go through a buffer this big: a small frame (prefix and body) is one
/// `read`, and a short read tells tokio the socket is drained, so no `EAGAIN` read
/// follows. Larger bodies bypass the buffer and are read straight into the frame.
const READ_BUFFER: usize = 64 * 1024;

/// Where the server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Serving,
    /// A signal: answer what was read, read nothing more.
    Draining,
    /// `Shutdown` was answered, or a second signal: close everything now.
    Stopping,
}

/// State shared by every connection.
struct Server {
    env: Env,
    dir: PrivateDir,
    child: Mutex<Option<Result<Arc<NativeChild>, String>>>,
    delegator: Option<Arc<Delegator>>,
    phase: watch::Sender<Phase>,
}

/// One answer owed to a client, in request order.
enum Owed {
    /// The next frame the child sends on this connection's child connection.
    Relayed,
    /// An answer computed by the shim (delegated, or an error it synthesized).
    Local(oneshot::Receiver<Vec<u8>>),
    /// `ShutdownResponse`, then stop the server.
    Shutdown,
}

/// Bind `socket`, serve until `Shutdown` or a signal, clean up. Returns the exit code.
pub(crate) async fn serve(socket: &Path, settings: &Settings, env: Env) -> u8 {
    let listener = match bind(socket) {
        Ok(l) => l,
        Err(err) => {
            crate::diag::error(&format_args!("could not serve {}: {err}", socket.display()));
            return 1;
        }
    };
    let dir = match PrivateDir::create(&env) {
        Ok(d) => d,
        Err(err) => {
            let _ = std::fs::remove_file(socket);
            crate::diag::error(&format_args!(
                "creating a directory for the native bb's socket: {err}"
            ));
            return 1;
        }
    };
    let (phase, mut phase_rx) = watch::channel(Phase::Serving);
    let delegator = Delegator::new(settings, &env, dir.path()).map(Arc::new);
    let server = Arc::new(Server {
        env,
        dir,
        child: Mutex::new(None),
        delegator,
        phase,
    });
    let (mut int, mut term) = match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(i), Ok(t)) => (i, t),
        _ => {
            crate::diag::error(&"cannot install signal handlers");
            return 1;
        }
    };
    tracing::info!(socket = %socket.display(), "serving bb msgpack");
    let mut connections = JoinSet::new();
    let mut code = 0;
    loop {
        tokio::select! {
            accepted = listener.accept(), if *phase_rx.borrow() == Phase::Serving => {
                if let Ok((stream, _)) = accepted {
                    connections.spawn_local(connection(server.clone(), stream));
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = int.recv() => code = on_signal(&server, libc::SIGINT),
            _ = term.recv() => code = on_signal(&server, libc::SIGTERM),
            _ = phase_rx.changed() => {}
        }
        let phase = *phase_rx.borrow();
        if phase == Phase::Stopping || phase == Phase::Draining && connections.is_empty() {
            break;
        }
    }
    drop(listener);
    let _ = std::fs::remove_file(socket);
    // Closing the client sockets first: nothing more is written to anyone.
    connections.shutdown().await;
    if let Some(Ok(child)) = server.child.lock().await.take() {
        if let Ok(child) = Arc::try_unwrap(child) {
            child.stop().await;
        }
    }
    code
}

/// First signal: drain (exit 0 once drained, as bb). Second: stop now, 128+n.
fn on_signal(server: &Server, signo: i32) -> u8 {
    let first = *server.phase.borrow() == Phase::Serving;
    if first {
        tracing::info!("signal {signo}: answering requests already read, then exiting");
        server.phase.send_replace(Phase::Draining);
        0
    } else {
        crate::diag::note(&"second signal, exiting without waiting for answers");
        server.phase.send_replace(Phase::Stopping);
        128 + signo as u8
    }
}

/// Unlink whatever is at `socket` (bb does the same), bind, listen, chmod 0600.
fn bind(socket: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::remove_file(socket) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(socket)?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

impl Server {
    /// The native child, started on first need; the start error is kept and repeated.
    async fn child(&self) -> Result<Arc<NativeChild>, String> {
        let mut slot = self.child.lock().await;
        if slot.is_none() {
            let started = NativeChild::start(&self.env, self.dir.path()).await;
            *slot = Some(started.map(Arc::new));
        }
        slot.clone().unwrap_or_else(|| Err("unreachable".into()))
    }

    /// One delegable request the native child answers (fallback, bb's own answer, or
    /// no backend), recorded with `BB_REMOTE_RECORD`; an `ErrorResponse` if the child
    /// cannot answer (never recorded).
    async fn ask_native(&self, delegator: &Delegator, body: &[u8]) -> Vec<u8> {
        let started = std::time::Instant::now();
        match self.try_ask_native(body).await {
            Ok(answer) => {
                delegator.record_native(body, &answer, started).await;
                answer
            }
            Err(e) => frame::error_response(&format!("bb-remote: native bb: {e}")),
        }
    }

    /// One request answered by the native child on a connection of its own (so the
    /// answer cannot be mistaken for one owed on a client's relay connection).
    async fn try_ask_native(&self, body: &[u8]) -> Result<Vec<u8>, String> {
        let child = self.child().await?;
        let mut stream = child.connect().await.map_err(|e| e.to_string())?;
        frame::write_frame(&mut stream, body)
            .await
            .map_err(|e| e.to_string())?;
        match frame::read_frame(&mut stream).await {
            Ok(Some(answer)) => Ok(answer),
            Ok(None) => Err("the native bb closed the connection".to_owned()),
            Err(e) => Err(e.to_string()),
        }
    }

    fn phase(&self) -> Phase {
        *self.phase.borrow()
    }
}

/// This connection's connection to the native child: the write half (kept open until
/// every answer owed has been read back: closing it early kills bb with SIGPIPE) and
/// the answers as they arrive.
struct Upstream {
    write: WriteHalf,
}

async fn connection(server: Arc<Server>, stream: UnixStream) {
    let Ok((read, write)) = socket::split(stream) else {
        return;
    };
    let mut read = BufReader::with_capacity(READ_BUFFER, read);
    let (owed_tx, owed_rx) = mpsc::unbounded_channel();
    let (relayed_tx, relayed_rx) = mpsc::unbounded_channel();
    // Tells delegated work on this connection that its client has gone.
    let (gone_tx, gone_rx) = watch::channel(false);
    let writer =
        tokio::task::spawn_local(write_answers(server.clone(), write, owed_rx, relayed_rx));
    let mut upstream: Option<Upstream> = None;
    let mut phase = server.phase.subscribe();
    loop {
        let body = tokio::select! {
            read = frame::read_frame(&mut read) => match read {
                Ok(Some(body)) => body,
                Ok(None) | Err(_) => {
                    gone_tx.send_replace(true);
                    break;
                }
            },
            _ = phase.wait_for(|p| *p != Phase::Serving) => break,
        };
        let envelope = frame::inspect(&body);
        let owed = match &envelope {
            Envelope::Command(name) if name == "Shutdown" => {
                let _ = owed_tx.send(Owed::Shutdown);
                break;
            }
            Envelope::Command(name)
                if server.delegator.as_ref().is_some_and(|d| d.handles(name)) =>
            {
                let delegator = server.delegator.clone().expect("checked above");
                let (tx, rx) = oneshot::channel();
                let gone = gone_rx.clone();
                let server = server.clone();
                tokio::task::spawn_local(async move {
                    let answer = match delegator.answer(body, gone).await {
                        Answer::Frame(answer) => answer,
                        Answer::Native(body) => server.ask_native(&delegator, &body).await,
                    };
                    let _ = tx.send(answer);
                });
                Owed::Local(rx)
            }
            _ => match relay(&server, &mut upstream, &relayed_tx, &body).await {
                Ok(()) if envelope.answered() => Owed::Relayed,
                Ok(()) => continue,
                Err(message) => Owed::Local(ready(frame::error_response(&message))),
            },
        };
        let _ = owed_tx.send(owed);
    }
    drop(owed_tx);
    let _ = writer.await;
    // Only now may the child connection close: every answer it owed has been read.
    drop(upstream);
}

/// Forward one request frame to the child, connecting on first use.
async fn relay(
    server: &Server,
    upstream: &mut Option<Upstream>,
    relayed: &mpsc::UnboundedSender<Vec<u8>>,
    body: &[u8],
) -> Result<(), String> {
    if upstream.is_none() {
        let child = server
            .child()
            .await
            .map_err(|e| format!("bb-remote: {e}"))?;
        let stream = child
            .connect()
            .await
            .map_err(|e| format!("bb-remote: connecting to the native bb: {e}"))?;
        let (read, write) = socket::split(stream)
            .map_err(|e| format!("bb-remote: connecting to the native bb: {e}"))?;
        let mut read = BufReader::with_capacity(READ_BUFFER, read);
        let relayed = relayed.clone();
        tokio::task::spawn_local(async move {
            while let Ok(Some(answer)) = frame::read_frame(&mut read).await {
                if relayed.send(answer).is_err() {
                    break;
                }
            }
        });
        *upstream = Some(Upstream { write });
    }
    let up = upstream.as_mut().expect("connected above");
    frame::write_frame(&mut up.write, body)
        .await
        .map_err(|e| format!("bb-remote: sending to the native bb: {e}"))
}

fn ready(answer: Vec<u8>) -> oneshot::Receiver<Vec<u8>> {
    let (tx, rx) = oneshot::channel();
    let _ = tx.send(answer);
    rx
}

/// Write each owed answer in request order. After the client has gone, keep reading
/// (and dropping) the child's answers, so the child never writes to a closed socket.
async fn write_answers(
    server: Arc<Server>,
    mut client: WriteHalf,
    mut owed: mpsc::UnboundedReceiver<Owed>,
    mut relayed: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    let mut client_open = true;
    while let Some(next) = owed.recv().await {
        let answer = match next {
            Owed::Relayed => match relayed.recv().await {
                Some(answer) => answer,
                None => frame::error_response("bb-remote: the native bb closed the connection"),
            },
            Owed::Local(rx) => match rx.await {
                Ok(answer) => answer,
                Err(_) => frame::error_response("bb-remote: the request was abandoned"),
            },
            Owed::Shutdown => {
                let _ = frame::write_frame(&mut client, &frame::shutdown_response()).await;
                server.phase.send_replace(Phase::Stopping);
                return;
            }
        };
        if client_open && frame::write_frame(&mut client, &answer).await.is_err() {
            client_open = false;
        }
        if server.phase() == Phase::Stopping {
            return;
        }
    }
}
