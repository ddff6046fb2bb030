//! The native `bb msgpack run` child that answers every request the shim does not
//! delegate, over its own socket in a private directory.
//!
//! One child per shim, started on first need: bb keeps process-global state (Chonk
//! sessions, SRS, MSM mode, the batch verifier), so all of it must reach the same bb,
//! in order. It is spawned from the runtime's only thread (the main thread), because
//! the child's `PR_SET_PDEATHSIG` fires when the *thread* that forked it exits.
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::net::UnixStream;
use tokio::process::{Child, Command};

use crate::config::Env;
use crate::env_vars;
use crate::native::{locate, NativeTarget};

/// How long the child may take to listen (bb itself needs ~10 ms; a cold page cache
/// on a loaded machine much more).
const START_BUDGET: Duration = Duration::from_secs(20);
/// How long a stopped child may take to finish its in-flight request before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// A private directory (mode 0700) for the child's socket, removed on drop.
#[derive(Debug)]
pub(crate) struct PrivateDir(PathBuf);

impl PrivateDir {
    /// `<TMPDIR or /tmp>/bb-remote-<pid>-<nanos>`.
    pub(crate) fn create(env: &Env) -> std::io::Result<Self> {
        let base = env.get("TMPDIR").unwrap_or("/tmp");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let dir = Path::new(base).join(format!("bb-remote-{}-{nanos:x}", std::process::id()));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        Ok(Self(dir))
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running native `bb msgpack run --input <dir>/native.sock`.
#[derive(Debug)]
pub(crate) struct NativeChild {
    child: Child,
    socket: PathBuf,
}

impl NativeChild {
    /// Spawn the native bb and wait until its socket accepts a connection.
    pub(crate) async fn start(env: &Env, dir: &Path) -> Result<Self, String> {
        Self::start_with(native_command(env)?, dir, START_BUDGET).await
    }

    /// [`Self::start`] with the bb to run (`command` without arguments) and a bound on
    /// the wait.
    pub(crate) async fn start_with(
        mut command: Command,
        dir: &Path,
        budget: Duration,
    ) -> Result<Self, String> {
        let socket = dir.join("native.sock");
        command
            .args(crate::grammar::msgpack_run::SERVE)
            .arg(&socket)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let child = command
            .spawn()
            .map_err(|e| format!("starting the native bb: {e}"))?;
        let mut me = Self { child, socket };
        let deadline = Instant::now() + budget;
        let mut pause = Duration::from_millis(1);
        loop {
            if let Ok(stream) = UnixStream::connect(&me.socket).await {
                drop(stream);
                return Ok(me);
            }
            if let Ok(Some(status)) = me.child.try_wait() {
                return Err(format!("the native bb exited ({status}) before listening"));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the native bb did not listen within {}s",
                    budget.as_secs()
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(20));
        }
    }

    /// A new connection to the child (one per client connection: bb keeps each
    /// connection's answers in order).
    pub(crate) async fn connect(&self) -> std::io::Result<UnixStream> {
        UnixStream::connect(&self.socket).await
    }

    /// SIGTERM (bb finishes what it is doing, then exits 0), SIGKILL after a grace.
    pub(crate) async fn stop(mut self) {
        crate::record::child::forward(self.child.id(), libc::SIGTERM);
        if tokio::time::timeout(STOP_GRACE, self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// How to run the native bb as a separate process: an executable directly; a libbb
/// through this shim in passthrough mode (nothing delegated), which dlopens it.
fn native_command(env: &Env) -> Result<Command, String> {
    let shim = std::env::current_exe().ok();
    let target = locate(env, shim.as_deref()).map_err(|e| e.to_string())?;
    let mut command = match &target {
        NativeTarget::Bin { path, .. } => {
            let mut c = Command::new(path);
            c.env(env_vars::RECURSION_GUARD, "1");
            c
        }
        NativeTarget::Lib { .. } => {
            let shim = shim.ok_or("cannot find this shim's own executable to load libbb")?;
            Command::new(shim)
        }
    };
    for var in [env_vars::BACKEND, env_vars::RECORD, env_vars::REPLAY] {
        command.env_remove(var);
    }
    Ok(command)
}
