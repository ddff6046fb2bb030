//! Running the native bb as a child while recording: the shim cannot exec-and-forget
//! when it must also keep bb's streams and outputs.
//!
//! The child is this shim again with recording (and the backend) switched off, so it
//! takes the ordinary passthrough path - exec of `BB_REMOTE_NATIVE_BIN` or dlopen of
//! `BB_REMOTE_NATIVE_LIB` - with the real process environment otherwise. Its stdout
//! and stderr are copied to ours as they arrive (byte for byte) and kept; SIGINT and
//! SIGTERM are forwarded to it, and its exit code (128+n for a signal) is ours.
use std::ffi::OsString;
use std::process::Stdio;

use std::io::Write;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::signal::unix::{signal, SignalKind};

use crate::env_vars;

/// What the child did.
#[derive(Debug, Default)]
pub(crate) struct Captured {
    pub(crate) exit_code: i32,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
}

/// Variables removed from the child's environment: it must neither record again nor
/// try the backend.
const CHILD_UNSET: &[&str] = &[env_vars::RECORD, env_vars::REPLAY, env_vars::BACKEND];

/// Run the shim itself as a passthrough child with `argv` (argv[0] included).
pub(crate) async fn run_native(argv: &[OsString]) -> std::io::Result<Captured> {
    let exe = std::env::current_exe()?;
    let mut command = tokio::process::Command::new(exe);
    if let Some((arg0, rest)) = argv.split_first() {
        command.arg0(arg0).args(rest);
    }
    for var in CHILD_UNSET {
        command.env_remove(var);
    }
    let mut child = command
        .stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let out = tee(child.stdout.take(), std::io::stdout());
    let err = tee(child.stderr.take(), std::io::stderr());
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let status = {
        let wait = child.wait();
        tokio::pin!(wait);
        loop {
            tokio::select! {
                status = &mut wait => break status?,
                _ = int.recv() => forward(pid, libc::SIGINT),
                _ = term.recv() => forward(pid, libc::SIGTERM),
            }
        }
    };
    let (stdout, stderr) = tokio::join!(out, err);
    Ok(Captured {
        exit_code: crate::exit::of_status(status),
        stdout: stdout?,
        stderr: stderr?,
    })
}

/// Send `sig` to our own child `pid` (no-op without a pid); also used by the msgpack
/// server to stop its native bb child.
pub(crate) fn forward(pid: Option<u32>, sig: libc::c_int) {
    let Some(pid) = pid.and_then(|p| libc::pid_t::try_from(p).ok()) else {
        return;
    };
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; the pid is
    // our own child, which we have not reaped yet (we are still waiting on it).
    unsafe {
        libc::kill(pid, sig);
    }
}

/// Copy `from` to `to` as it arrives, flushing each chunk, and keep a copy.
async fn tee(from: Option<impl AsyncRead + Unpin>, mut to: impl Write) -> std::io::Result<Vec<u8>> {
    let Some(mut from) = from else {
        return Ok(Vec::new());
    };
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return Ok(kept);
        }
        kept.extend_from_slice(&buf[..n]);
        // A caller that closed its end must not stop us from keeping bb's output.
        // (Blocking write: the caller reading slowly slows bb down, as it would.)
        if to.write_all(&buf[..n]).is_ok() {
            let _ = to.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tee_copies_and_keeps_every_byte() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut copy = Vec::new();
        let kept = tee(Some(&data[..]), &mut copy).await.unwrap();
        assert_eq!(kept, data);
        assert_eq!(copy, data);
    }
}
