//! Record and replay with real parts: a session of real bb 5.0.0 calls (a delegated
//! `prove` through a real `bb-remote worker`, native `write_vk`, `verify`, `gates` and
//! a failing `verify`) is recorded from one set of temporary directories and replayed
//! from another with no backend and no native bb; then a miss, a tampered blob, an
//! unknown format version, and two recorders sharing one directory.
mod session;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::testbed::{circuit, run, testbed, Outcome, Scratch};
use crate::worker::harness::{Scratch as WorkerScratch, WorkerProc};

/// A real worker running the test bed's bb with the test CRS, on a file:// store.
pub struct Backend {
    pub worker: WorkerProc,
    pub scratch: WorkerScratch,
}

impl Backend {
    pub fn start() -> Self {
        let scratch = WorkerScratch::new();
        let args = [
            "--store".to_owned(),
            scratch.store_url(),
            "--data-dir".into(),
            scratch.data_dir().display().to_string(),
            "--bb".into(),
            testbed().bb.display().to_string(),
            "--crs-dir".into(),
            testbed().crs_dir.display().to_string(),
        ];
        Self {
            worker: WorkerProc::start(&args),
            scratch,
        }
    }
}

/// The circuit's files as the Aztec client writes them, in a fresh `tmp-XXXXXX`-like
/// directory of `scratch`: `bytecode` (base64-decoded) and `witness.gz`.
pub fn job_dir(scratch: &Scratch, name: &str) -> PathBuf {
    let c = circuit(name);
    let dir = tempfile::Builder::new()
        .prefix("tmp-")
        .tempdir_in(&scratch.work)
        .unwrap()
        .keep();
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&c.program).unwrap()).unwrap();
    let mut decode = Command::new("base64");
    decode
        .arg("-d")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = decode.spawn().unwrap();
    use std::io::Write;
    let b64 = json["bytecode"].as_str().unwrap().to_owned();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b64.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    std::fs::write(dir.join("bytecode"), out.stdout).unwrap();
    std::fs::copy(&c.witness, dir.join("witness.gz")).unwrap();
    dir
}

/// The shim recording into `fixtures`, with the real native bb (patched for the test
/// CRS, so `verify` accepts its proofs) and optionally a backend.
pub fn recording(scratch: &Scratch, fixtures: &Path, backend: Option<&Backend>) -> Command {
    let mut cmd = scratch.command(env!("CARGO_BIN_EXE_bb"));
    cmd.env("BB_REMOTE_RECORD", fixtures)
        .env("BB_REMOTE_NATIVE_BIN", &testbed().bb_testcrs);
    if let Some(b) = backend {
        cmd.env("BB_REMOTE_BACKEND", &b.worker.base)
            .env("BB_REMOTE_STORE", b.scratch.store_url());
    }
    cmd
}

/// The shim replaying from `fixtures`: no backend, no native bb.
pub fn replaying(scratch: &Scratch, fixtures: &Path) -> Command {
    let mut cmd = scratch.command(env!("CARGO_BIN_EXE_bb"));
    cmd.env("BB_REMOTE_REPLAY", fixtures);
    cmd
}

/// `bb-remote fixtures --dir <fixtures> <args>`.
pub fn fixtures_cli(fixtures: &Path, args: &[&str]) -> Outcome {
    run(Command::new(env!("CARGO_BIN_EXE_bb-remote"))
        .arg("fixtures")
        .arg("--dir")
        .arg(fixtures)
        .args(args))
}

/// stderr without the shim's own lines (`bb-remote: ...`), i.e. what bb wrote.
pub fn bb_lines(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| !l.starts_with("bb-remote: "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Files under `dir` (recursively), sorted, with their bytes.
pub fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let name = path.strip_prefix(root).unwrap().display().to_string();
                out.push((name, std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn two_recorders_writing_one_directory_leave_it_valid() {
    let fixtures = tempfile::tempdir().unwrap();
    let scratches: Vec<Scratch> = (0..4).map(|_| Scratch::new()).collect();
    let children: Vec<_> = scratches
        .iter()
        .map(|s| {
            let dir = job_dir(s, "square");
            recording(s, fixtures.path(), None)
                .args(["write_vk", "--scheme", "ultra_honk", "-b"])
                .arg(dir.join("bytecode"))
                .arg("-o")
                .arg(dir.join("out"))
                .arg("-c")
                .arg(&testbed().crs_dir)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let verify = fixtures_cli(fixtures.path(), &["verify"]);
    verify.assert_code(0, "fixtures verify");
    let list = fixtures_cli(fixtures.path(), &["list"]);
    list.assert_code(0, "fixtures list");
    let text = String::from_utf8_lossy(&list.stdout);
    // Same circuit, same flags, different temporary directories: one key.
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(
        text.contains("native") && text.contains("write_vk"),
        "{text}"
    );
    let leftovers = std::fs::read_dir(fixtures.path().join("tmp"))
        .unwrap()
        .count();
    assert_eq!(leftovers, 0);
}

/// `bb-remote fixtures` reads its directory through the shim's configuration loader: a
/// BB_REMOTE_REPLAY that is not UTF-8, or names no directory, is a configuration error
/// naming the variable (78), never silently skipped.
#[test]
fn fixtures_with_a_bad_directory_variable_exit_78() {
    use std::os::unix::ffi::OsStrExt;
    let scratch = Scratch::new();
    let not_utf8 = std::ffi::OsStr::from_bytes(b"/tmp/fixtures-\xff");
    let not_a_dir = scratch.path("file");
    std::fs::write(&not_a_dir, b"x").unwrap();
    for value in [not_utf8, not_a_dir.as_os_str()] {
        let out = run(Command::new(env!("CARGO_BIN_EXE_bb-remote"))
            .args(["fixtures", "list"])
            .env_remove("BB_REMOTE_RECORD")
            .env("BB_REMOTE_REPLAY", value));
        out.assert_code(78, "bad BB_REMOTE_REPLAY");
        assert!(out.stderr.contains("BB_REMOTE_REPLAY"), "{}", out.stderr);
        assert!(out.stdout.is_empty(), "{:?}", out.stdout);
    }
}
