//! The shim's configuration as an operator meets it: every bad `BB_REMOTE_*` value is
//! exit 78 in every mode, before anything is uploaded or run, and no secret (URL
//! password, token) ever reaches stderr.
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::Command;

use crate::support::testbed::{run, testbed, Outcome, Scratch};

const SHIM: &str = env!("CARGO_BIN_EXE_bb");

/// A modern `prove` the router delegates, over placeholder input files (routing and
/// configuration never read their contents).
fn delegable(scratch: &Scratch) -> (Vec<String>, PathBuf) {
    for name in ["A-bytecode", "w.gz", "A-vk"] {
        std::fs::write(scratch.path(name), b"placeholder").unwrap();
    }
    let out = scratch.path("out");
    let argv = "prove --scheme ultra_honk --disable_zk -b A-bytecode -w w.gz -k A-vk -o out";
    (argv.split(' ').map(str::to_owned).collect(), out)
}

fn shim(scratch: &Scratch) -> Command {
    let mut cmd = scratch.command(SHIM);
    cmd.env("BB_REMOTE_NATIVE_BIN", &testbed().bb);
    cmd
}

#[track_caller]
fn assert_config_error(outcome: &Outcome, needle: &str) {
    outcome.assert_code(i32::from(bb_remote::exit::CONFIG), needle);
    assert!(outcome.stdout.is_empty(), "{outcome:?}");
    assert!(
        outcome.stderr.contains("bb-remote: error:") && outcome.stderr.contains(needle),
        "{}",
        outcome.stderr
    );
}

#[test]
fn bad_values_are_78_in_passthrough_too() {
    let scratch = Scratch::new();
    for (var, value) in [
        ("BB_REMOTE_LOG", "bb_remote=loud["),
        ("BB_REMOTE_DELEGATE", "prove,bogus"),
        ("BB_REMOTE_GRAMMAR", "v3"),
        ("BB_REMOTE_CPU_CORES", "many"),
        ("BB_REMOTE_RAM_GB", "-1"),
        ("BB_REMOTE_STORE", "nope://bucket"),
        ("BB_REMOTE_REPLAY_MISS", "sometimes"),
    ] {
        let outcome = run(shim(&scratch).env(var, value).arg("--version"));
        assert_config_error(&outcome, var);
    }
    let outcome = run(shim(&scratch)
        .env(
            "BB_REMOTE_BACKEND",
            std::ffi::OsStr::from_bytes(b"http://h\xff/"),
        )
        .arg("--version"));
    assert_config_error(&outcome, "BB_REMOTE_BACKEND");
}

#[test]
fn bad_resources_or_store_are_78_before_anything_is_sent() {
    let scratch = Scratch::new();
    let (argv, out) = delegable(&scratch);
    let store = format!("file://{}", scratch.path("store").display());
    for (var, value) in [
        ("BB_REMOTE_CPU_CORES", "0"),
        ("BB_REMOTE_RAM_GB", "lots"),
        ("BB_REMOTE_STORE", "s3://bucket/p?versionId=1"),
    ] {
        let outcome = run(shim(&scratch)
            .env("BB_REMOTE_BACKEND", "http://127.0.0.1:9")
            .env("BB_REMOTE_STORE", &store)
            .env(var, value)
            .args(&argv));
        assert_config_error(&outcome, var);
        assert!(!out.exists() && !scratch.path("store").exists());
    }
}

#[test]
fn url_passwords_and_tokens_never_reach_stderr() {
    let scratch = Scratch::new();
    let (argv, _) = delegable(&scratch);
    let store = format!("file://{}", scratch.path("store").display());
    // Nothing listens on port 9 of loopback: every TES call fails and is retried
    // with a warning quoting the request URL.
    let outcome = run(shim(&scratch)
        .env("BB_REMOTE_BACKEND", "http://alice:pw-Secret-1@127.0.0.1:9/")
        .env("BB_REMOTE_STORE", &store)
        .env("BB_REMOTE_TOKEN", "tok-Secret-2")
        .env("BB_REMOTE_LOG", "debug")
        .args(&argv));
    outcome.assert_code(
        i32::from(bb_remote::exit::BACKEND_UNAVAILABLE),
        "backend down",
    );
    assert!(outcome.stderr.contains("127.0.0.1:9"), "{}", outcome.stderr);
    for secret in ["pw-Secret-1", "tok-Secret-2"] {
        assert!(!outcome.stderr.contains(secret), "{}", outcome.stderr);
    }
}
