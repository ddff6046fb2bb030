//! The shim stops when asked, in every phase: `BB_REMOTE_TIMEOUT` bounds the whole
//! delegated call and SIGINT/SIGTERM work even while a backend hangs without answering;
//! and anything bb would refuse before proving gets bb's own answer, not the shim's.
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::testbed::{run, testbed, Scratch};

const SHIM: &str = env!("CARGO_BIN_EXE_bb");

/// A TEST DOUBLE of the worst backend: it accepts TCP connections and never answers.
/// Holds at most 64 connections, for at most 60 s, then lets go.
struct SilentBackend {
    url: String,
    stop: Arc<AtomicBool>,
}

impl SilentBackend {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let mut held = Vec::new();
            while !flag.load(Ordering::Relaxed) && started.elapsed() < Duration::from_secs(60) {
                match listener.accept() {
                    Ok((conn, _)) if held.len() < 64 => held.push(conn),
                    _ => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Self { url, stop }
    }
}

impl Drop for SilentBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

const PROVE: &[&str] = &[
    "prove",
    "--scheme",
    "ultra_honk",
    "--disable_zk",
    "-b",
    "A-bytecode",
    "-w",
    "w.gz",
    "-k",
    "A-vk",
];

/// `program` in a fresh scratch holding placeholder inputs (nothing reads their
/// contents before the backend would) and a file `out-file`.
fn in_scratch(program: &str) -> (Scratch, Command) {
    let scratch = Scratch::new();
    for name in ["A-bytecode", "w.gz", "A-vk"] {
        std::fs::write(scratch.path(name), b"placeholder").unwrap();
    }
    std::fs::write(scratch.path("out-file"), b"keep me").unwrap();
    let cmd = scratch.command(program);
    (scratch, cmd)
}

/// The shim delegating a modern `prove` to `backend` (extra argv after PROVE).
fn shim_prove(backend: &str, extra: &[&str]) -> (Scratch, Command) {
    let (scratch, mut cmd) = in_scratch(SHIM);
    cmd.env("BB_REMOTE_NATIVE_BIN", &testbed().bb)
        .env("BB_REMOTE_BACKEND", backend)
        .env(
            "BB_REMOTE_STORE",
            format!("file://{}", scratch.path("store").display()),
        )
        .args(PROVE)
        .args(extra);
    (scratch, cmd)
}

#[test]
fn the_timeout_bounds_the_whole_call_against_a_silent_backend() {
    let backend = SilentBackend::start();
    let (scratch, mut shim) = shim_prove(&backend.url, &["-o", "out"]);
    let started = Instant::now();
    let outcome = run(shim.env("BB_REMOTE_TIMEOUT", "2"));
    let took = started.elapsed();
    outcome.assert_code(
        i32::from(bb_remote::exit::BACKEND_UNAVAILABLE),
        "silent backend",
    );
    assert!(
        outcome.stderr.contains("BB_REMOTE_TIMEOUT"),
        "{}",
        outcome.stderr
    );
    // Generous for a loaded 2-core machine; before the fix this took over 150 s.
    assert!(took < Duration::from_secs(20), "took {took:?}");
    assert!(!scratch.path("out").exists());
}

#[test]
fn sigint_and_sigterm_stop_a_call_stuck_before_any_task_exists() {
    let backend = SilentBackend::start();
    for (signal, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let (scratch, mut shim) = shim_prove(&backend.url, &["-o", "out"]);
        let mut child = shim
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Let it upload and get stuck listing tasks on the silent backend.
        std::thread::sleep(Duration::from_millis(1500));
        let sent = Instant::now();
        // SAFETY: kill(2) on our own child, not yet reaped.
        unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("signal {signal} ignored for 20 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert_eq!(status.code(), Some(code), "signal {signal}");
        assert!(sent.elapsed() < Duration::from_secs(10));
        assert!(!scratch.path("out").exists());
    }
}

/// The shim and the real bb, run on the same argv from the same state, give the same
/// exit code and stderr: a call bb refuses before proving is never delegated (the
/// backend here never answers, so a delegated call would fail with the shim's code).
#[test]
fn calls_bb_refuses_get_bbs_own_answer() {
    let backend = SilentBackend::start();
    let cases: [(&str, &[&str]); 2] = [
        ("-o names an existing file", &["-o", "out-file"]),
        (
            "-c names a missing directory",
            &["-c", "no-such-crs", "-o", "out"],
        ),
    ];
    for (what, extra) in cases {
        let (shim_scratch, mut shim) = shim_prove(&backend.url, extra);
        let shim_outcome = run(shim.env("BB_REMOTE_TIMEOUT", "5"));
        let (bb_scratch, mut bb) = in_scratch(testbed().bb.to_str().unwrap());
        let bb_outcome = run(bb.args(PROVE).args(extra));
        assert_ne!(bb_outcome.code, Some(0), "{what}: {bb_outcome:?}");
        assert_eq!(
            shim_outcome.code, bb_outcome.code,
            "{what}\nshim: {shim_outcome:?}\nbb: {bb_outcome:?}"
        );
        assert_eq!(shim_outcome.stderr, bb_outcome.stderr, "{what}");
        for scratch in [shim_scratch, bb_scratch] {
            assert_eq!(std::fs::read(scratch.path("out-file")).unwrap(), b"keep me");
        }
    }
}

/// An output directory on a read-only file system: bb fails (exit 1) and the shim must
/// let it, rather than prove remotely and fail to write (exit 74). Needs a private
/// mount namespace (`unshare -m`, as root); where that is not permitted there is no
/// read-only mount to test with, and the test has nothing to check.
#[test]
fn a_read_only_output_directory_gets_bbs_own_answer() {
    let can_mount = Command::new("unshare")
        .args(["-m", "sh", "-c", "mount -t tmpfs -o ro tmpfs /mnt"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !can_mount {
        return;
    }
    let backend = SilentBackend::start();
    let in_read_only_mount = |cmd: Command| {
        let mut wrapped = Command::new("unshare");
        wrapped
            .args([
                "-m",
                "sh",
                "-c",
                r#"mount -t tmpfs -o ro tmpfs ro && exec "$0" "$@""#,
            ])
            .arg(cmd.get_program())
            .args(cmd.get_args())
            .current_dir(cmd.get_current_dir().unwrap())
            .env_clear()
            .envs(cmd.get_envs().filter_map(|(k, v)| Some((k, v?))));
        run(&mut wrapped)
    };
    let (shim_scratch, mut shim) = shim_prove(&backend.url, &["-o", "ro"]);
    shim.env("BB_REMOTE_TIMEOUT", "5");
    std::fs::create_dir(shim_scratch.path("ro")).unwrap();
    let shim_outcome = in_read_only_mount(shim);
    let (bb_scratch, mut bb) = in_scratch(testbed().bb.to_str().unwrap());
    bb.args(PROVE).args(["-o", "ro"]);
    std::fs::create_dir(bb_scratch.path("ro")).unwrap();
    let bb_outcome = in_read_only_mount(bb);
    assert_ne!(bb_outcome.code, Some(0), "{bb_outcome:?}");
    assert_eq!(
        shim_outcome.code, bb_outcome.code,
        "shim: {shim_outcome:?}\nbb: {bb_outcome:?}"
    );
    assert_eq!(shim_outcome.stderr, bb_outcome.stderr);
}
