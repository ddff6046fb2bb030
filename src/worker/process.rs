//! Running one executor's command as a child process that can be stopped as a whole.
//!
//! The child gets its own process group, so a cancel stops bb and anything it started
//! (SIGTERM to the group, then SIGKILL after a grace period). On Linux it also gets
//! a parent-death signal, so if the worker itself is SIGKILLed no bb keeps running
//! unobserved (after a restart such a task is reported SYSTEM_ERROR anyway).
//!
//! The two `unsafe` blocks are system calls (`prctl` and Landlock before exec, `kill`);
//! each says why it is sound.
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::watch;

use super::service::Stop;

/// What to run, fully resolved to host paths.
#[derive(Debug)]
pub(crate) struct Spawn<'a> {
    pub(crate) argv: &'a [String],
    pub(crate) workdir: PathBuf,
    pub(crate) env: &'a std::collections::BTreeMap<String, String>,
    pub(crate) home: &'a Path,
    pub(crate) stdin: Option<PathBuf>,
    pub(crate) stdout: PathBuf,
    pub(crate) stderr: PathBuf,
}

/// How the child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Exit code; a death by signal n is reported as 128+n, as shells do.
    Exited(i32),
    /// Stopped on request before it ended by itself.
    Stopped(Stop),
}

/// Start the child, confined by `confinement` if given (see [`super::confine`]).
pub(crate) fn spawn(
    spec: &Spawn<'_>,
    confinement: Option<landlock::RulesetCreated>,
) -> std::io::Result<Child> {
    let stdin = match &spec.stdin {
        Some(path) => Stdio::from(std::fs::File::open(path)?),
        None => Stdio::null(),
    };
    let mut command = Command::new(&spec.argv[0]);
    command
        .args(&spec.argv[1..])
        .current_dir(&spec.workdir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(spec.env)
        .env("HOME", spec.home)
        .stdin(stdin)
        .stdout(std::fs::File::create(&spec.stdout)?)
        .stderr(std::fs::File::create(&spec.stderr)?)
        .process_group(0);
    let mut confinement = confinement;
    // SAFETY: the closure runs in the forked child before exec. It calls prctl and
    // the Landlock system calls (through `confine::enforce`, which does not allocate
    // on success); all are async-signal-safe and touch no memory shared with the
    // parent's other threads.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if let Some(ruleset) = confinement.take() {
                super::confine::enforce(ruleset)?;
            }
            Ok(())
        });
    }
    command.spawn()
}

/// Wait for the child, stopping its process group if `stop` says so.
pub(crate) async fn wait(
    mut child: Child,
    stop: &mut watch::Receiver<Stop>,
    grace: Duration,
) -> std::io::Result<Ended> {
    let stopped = tokio::select! {
        status = child.wait() => return Ok(Ended::Exited(exit_code(status?))),
        reason = stop.wait_for(|s| *s != Stop::Keep) => {
            reason.map(|r| *r).unwrap_or(Stop::Shutdown)
        }
    };
    let group = child.id().map(|pid| pid as libc::pid_t);
    if let Some(group) = group {
        signal_group(group, libc::SIGTERM);
        if tokio::time::timeout(grace, child.wait()).await.is_err() {
            signal_group(group, libc::SIGKILL);
        }
    }
    child.wait().await?;
    // Stragglers that ignored SIGTERM while the leader exited.
    if let Some(group) = group {
        signal_group(group, libc::SIGKILL);
    }
    Ok(Ended::Stopped(stopped))
}

/// Kill the child's whole process group at once and reap the child.
pub(crate) async fn kill(mut child: Child) {
    if let Some(pid) = child.id() {
        signal_group(pid as libc::pid_t, libc::SIGKILL);
    }
    let _ = child.wait().await;
}

fn signal_group(group: libc::pid_t, signal: libc::c_int) {
    // SAFETY: kill(2) with a negative pid signals that process group; it has no memory
    // effects. The group id is our own child's pid, made a group leader at spawn;
    // ESRCH (already gone) is fine to ignore.
    unsafe {
        libc::kill(-group, signal);
    }
}

/// The one mapping (`crate::exit`): bb's code, or 128+n for a death by signal n.
fn exit_code(status: ExitStatus) -> i32 {
    crate::exit::of_status(status)
}

/// The last `limit` bytes of a captured stream, as text (invalid UTF-8 replaced).
pub(crate) fn tail(path: &Path, limit: u64) -> String {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = std::fs::File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map_or(0, |m| m.len());
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(limit)));
    let mut bytes = Vec::new();
    let _ = file.take(limit).read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(argv: &[&str], dir: &Path) -> Spawn<'static> {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        Spawn {
            argv: Box::leak(argv.into_boxed_slice()),
            workdir: dir.to_path_buf(),
            env: Box::leak(Box::default()),
            home: Box::leak(dir.to_path_buf().into_boxed_path()),
            stdin: None,
            stdout: dir.join("out"),
            stderr: dir.join("err"),
        }
    }

    #[tokio::test]
    async fn exit_codes_and_output_are_captured() {
        let dir = tempfile::tempdir().unwrap();
        let spec = run(
            &["/bin/sh", "-c", "echo hi; echo oops >&2; exit 3"],
            dir.path(),
        );
        let (_tx, mut rx) = watch::channel(Stop::Keep);
        let ended = wait(spawn(&spec, None).unwrap(), &mut rx, Duration::from_secs(1)).await;
        assert_eq!(ended.unwrap(), Ended::Exited(3));
        assert_eq!(tail(&spec.stdout, 100), "hi\n");
        assert_eq!(tail(&spec.stderr, 3), "ps\n");
    }

    #[tokio::test]
    async fn stop_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        // A child that ignores SIGTERM and has a grandchild: both must go.
        let script = "trap '' TERM; sleep 30 & echo $! > pid; wait";
        let spec = run(&["/bin/sh", "-c", script], dir.path());
        let (tx, mut rx) = watch::channel(Stop::Keep);
        let child = spawn(&spec, None).unwrap();
        let pid_file = dir.path().join("pid");
        for _ in 0..500 {
            if std::fs::read_to_string(&pid_file).is_ok_and(|s| s.ends_with('\n')) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tx.send_replace(Stop::Cancel);
        let ended = wait(child, &mut rx, Duration::from_millis(200))
            .await
            .unwrap();
        assert_eq!(ended, Ended::Stopped(Stop::Cancel));
        let grandchild = std::fs::read_to_string(&pid_file).unwrap();
        let proc_dir = PathBuf::from(format!("/proc/{}", grandchild.trim()));
        // The grandchild may linger as a zombie for an instant until init reaps it.
        for _ in 0..200 {
            let state = std::fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
            if state.is_empty() || state.contains(") Z ") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("grandchild {} survived", grandchild.trim());
    }
}
