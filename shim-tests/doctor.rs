//! `bb-remote doctor` against real parts: a real worker over HTTP, a `file://` store,
//! and the test bed's real bb. A healthy setup passes every check; each broken piece
//! (stopped worker, wrong or missing token, unwritable store, missing native bb) makes
//! it exit 1 with a FAIL line naming the problem and what to set.

use serde_json::Value;

use crate::support::testbed::{run, testbed, Outcome, Scratch};
use crate::worker::harness::{Scratch as WorkerScratch, WorkerProc};

const TOKEN: &str = "doctor-test-token";

/// A running worker (with [`TOKEN`]) and a `file://` store, plus the variables that
/// point the shim at them and at the real bb.
struct Setup {
    worker: WorkerProc,
    worker_scratch: WorkerScratch,
    scratch: Scratch,
}

impl Setup {
    fn start() -> Self {
        let worker_scratch = WorkerScratch::new();
        let mut args = worker_scratch.fake_args();
        args.extend(["--token".into(), TOKEN.into()]);
        Self {
            worker: WorkerProc::start(&args),
            worker_scratch,
            scratch: Scratch::new(),
        }
    }

    /// The healthy configuration; tests replace one variable to break one piece.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("BB_REMOTE_BACKEND", self.worker.base.clone()),
            ("BB_REMOTE_STORE", self.worker_scratch.store_url()),
            ("BB_REMOTE_TOKEN", TOKEN.to_owned()),
            ("BB_REMOTE_NATIVE_BIN", testbed().bb.display().to_string()),
        ]
    }

    fn doctor(&self, env: &[(&'static str, String)], extra_args: &[&str]) -> Outcome {
        doctor(&self.scratch, env, extra_args)
    }
}

/// `bb-remote doctor` with exactly `env` (plus PATH and a scratch HOME).
fn doctor(scratch: &Scratch, env: &[(&'static str, String)], extra_args: &[&str]) -> Outcome {
    let mut command = scratch.command(env!("CARGO_BIN_EXE_bb-remote"));
    command.arg("doctor").args(extra_args);
    for (name, value) in env {
        command.env(name, value);
    }
    run(&mut command)
}

/// Replace (or with `None`, remove) one variable of `env`.
fn with(
    mut env: Vec<(&'static str, String)>,
    name: &'static str,
    value: Option<&str>,
) -> Vec<(&'static str, String)> {
    env.retain(|(n, _)| *n != name);
    if let Some(value) = value {
        env.push((name, value.to_owned()));
    }
    env
}

fn stdout(outcome: &Outcome) -> String {
    String::from_utf8_lossy(&outcome.stdout).into_owned()
}

/// The status word and the rest of the report line of check `name`.
fn line<'a>(report: &'a str, name: &str) -> (&'a str, &'a str) {
    report
        .lines()
        .filter(|l| !l.starts_with(' '))
        .find_map(|l| {
            let (status, rest) = l.split_once(' ')?;
            let summary = rest.trim_start().strip_prefix(name)?.strip_prefix(' ')?;
            Some((status, summary.trim_start()))
        })
        .unwrap_or_else(|| panic!("no `{name}` line in the report:\n{report}"))
}

/// What the real bb says to `--version`, to compare with the doctor's report.
fn real_bb_version() -> String {
    let out = std::process::Command::new(&testbed().bb)
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

const CHECKS: [&str; 7] = [
    "config", "store", "backend", "token", "native", "msgpack", "delegate",
];

#[test]
fn a_healthy_setup_passes_every_check() {
    let setup = Setup::start();
    let outcome = setup.doctor(&setup.env(), &[]);
    outcome.assert_code(0, "doctor on a healthy setup");
    let report = stdout(&outcome);
    for name in CHECKS {
        assert_eq!(line(&report, name).0, "ok", "{name}:\n{report}");
    }
    let (_, store) = line(&report, "store");
    assert!(
        store.contains("wrote, read and deleted a probe object"),
        "{report}"
    );
    let (_, native) = line(&report, "native");
    assert!(native.contains(&real_bb_version()), "{report}");
    assert!(native.contains("from BB_REMOTE_NATIVE_BIN"), "{report}");
    let (_, backend) = line(&report, "backend");
    assert!(backend.contains(&setup.worker.base), "{report}");
    // The token's value is never printed, only that it is set.
    assert!(!report.contains(TOKEN), "{report}");
    assert!(report.contains("BB_REMOTE_TOKEN: set"), "{report}");
    // The probe object is gone again.
    let probes = setup.worker_scratch.store_dir().join("doctor");
    let left = std::fs::read_dir(&probes).map_or(0, |d| d.count());
    assert_eq!(left, 0, "probe objects left in {}", probes.display());
    assert!(outcome.stderr.is_empty(), "stderr: {}", outcome.stderr);
}

#[test]
fn json_report_has_every_check() {
    let setup = Setup::start();
    let outcome = setup.doctor(&setup.env(), &["--json"]);
    outcome.assert_code(0, "doctor --json");
    let json: Value = serde_json::from_slice(&outcome.stdout).expect("doctor --json is JSON");
    assert_eq!(json["ok"], true, "{json:#}");
    let names: Vec<&str> = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert_eq!(c["status"], "ok", "{c}");
            c["name"].as_str().unwrap()
        })
        .collect();
    assert_eq!(names, CHECKS);
}

/// Exit 1 with check `name` failing and its line containing every one of `expected`.
#[track_caller]
fn assert_fails(outcome: &Outcome, name: &str, expected: &[&str]) -> String {
    outcome.assert_code(1, &format!("doctor with a broken {name}"));
    let report = stdout(outcome);
    let (status, summary) = line(&report, name);
    assert_eq!(status, "FAIL", "{name}:\n{report}");
    for want in expected {
        assert!(
            summary.contains(want),
            "{name} line lacks {want:?}:\n{report}"
        );
    }
    report
}

#[test]
fn a_stopped_worker_is_named() {
    let setup = Setup::start();
    let env = setup.env();
    let Setup {
        worker,
        worker_scratch: _store_lives_here,
        scratch,
    } = setup;
    let base = worker.base.clone();
    worker.kill();
    let outcome = doctor(&scratch, &env, &[]);
    let report = assert_fails(
        &outcome,
        "backend",
        &[&base, "connection refused", "BB_REMOTE_BACKEND"],
    );
    assert_eq!(line(&report, "token").0, "skip", "{report}");
    for name in ["config", "store", "native"] {
        assert_eq!(line(&report, name).0, "ok", "{name}:\n{report}");
    }
}

#[test]
fn a_wrong_or_missing_token_is_named() {
    let setup = Setup::start();
    let wrong = with(setup.env(), "BB_REMOTE_TOKEN", Some("not-the-token"));
    let outcome = setup.doctor(&wrong, &[]);
    let report = assert_fails(
        &outcome,
        "token",
        &["rejected BB_REMOTE_TOKEN", "401", "set BB_REMOTE_TOKEN"],
    );
    assert!(!report.contains("not-the-token"), "{report}");
    // The worker answered, so the backend itself is reachable.
    assert_eq!(line(&report, "backend").0, "ok", "{report}");

    let missing = with(setup.env(), "BB_REMOTE_TOKEN", None);
    let outcome = setup.doctor(&missing, &[]);
    assert_fails(
        &outcome,
        "token",
        &["requires a token", "BB_REMOTE_TOKEN is unset"],
    );
}

#[test]
fn an_unwritable_store_is_named() {
    let setup = Setup::start();
    // A directory below a regular file cannot be created, not even by root.
    let file = setup.scratch.path("plain-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let store = url::Url::from_directory_path(file.join("store")).unwrap();
    let env = with(setup.env(), "BB_REMOTE_STORE", Some(store.as_str()));
    let outcome = setup.doctor(&env, &[]);
    let report = assert_fails(
        &outcome,
        "store",
        &[
            store.as_str().trim_end_matches('/'),
            "write failed",
            "BB_REMOTE_STORE",
        ],
    );
    assert_eq!(line(&report, "backend").0, "ok", "{report}");
}

#[test]
fn a_missing_native_bb_is_named() {
    let setup = Setup::start();
    let absent = setup.scratch.path("no-such-bb");
    let env = with(
        setup.env(),
        "BB_REMOTE_NATIVE_BIN",
        Some(absent.to_str().unwrap()),
    );
    let outcome = setup.doctor(&env, &[]);
    assert_fails(
        &outcome,
        "native",
        &["BB_REMOTE_NATIVE_BIN", absent.to_str().unwrap()],
    );

    // Nothing configured and nothing beside the shim: both variables are named.
    let lone_shim = setup.scratch.path("bb");
    std::fs::write(&lone_shim, b"stand-in for the shim").unwrap();
    let env = with(setup.env(), "BB_REMOTE_NATIVE_BIN", None);
    let shim_arg = format!("--shim={}", lone_shim.display());
    let outcome = setup.doctor(&env, &[&shim_arg]);
    assert_fails(
        &outcome,
        "native",
        &[
            "BB_REMOTE_NATIVE_BIN",
            "BB_REMOTE_NATIVE_LIB",
            &setup.scratch.path("bb.native").display().to_string(),
        ],
    );
}

#[test]
fn a_native_bb_that_cannot_serve_msgpack_is_named() {
    let setup = Setup::start();
    // Answers `--version` like bb, but exits instead of serving a socket.
    let fake = setup.scratch.path("old-bb");
    std::fs::write(&fake, "#!/bin/sh\necho 0.82.0\n").unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let env = with(
        setup.env(),
        "BB_REMOTE_NATIVE_BIN",
        Some(fake.to_str().unwrap()),
    );
    let outcome = setup.doctor(&env, &[]);
    let report = assert_fails(&outcome, "msgpack", &["msgpack run", "exited"]);
    assert_eq!(line(&report, "native").0, "ok", "{report}");
}

#[test]
fn passthrough_only_skips_the_remote_checks() {
    let scratch = Scratch::new();
    let env = vec![("BB_REMOTE_NATIVE_BIN", testbed().bb.display().to_string())];
    let outcome = doctor(&scratch, &env, &[]);
    outcome.assert_code(0, "doctor in passthrough-only mode");
    let report = stdout(&outcome);
    for name in ["store", "backend", "token", "delegate"] {
        let (status, summary) = line(&report, name);
        assert_eq!(status, "skip", "{name}:\n{report}");
        assert!(summary.contains("BB_REMOTE_"), "{name}:\n{report}");
    }
    assert_eq!(line(&report, "native").0, "ok", "{report}");
    assert_eq!(line(&report, "msgpack").0, "ok", "{report}");
}
