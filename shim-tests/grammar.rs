//! Table-driven tests of bb's grammars and the routing verdict: every command of
//! both grammars, and the exact argv each Aztec client version sends
//! (docs/bb-grammar.md §2). Pure function calls except the last test, which runs
//! `bb-remote route`.

use bb_remote::config::{Env, Settings};
use bb_remote::grammar::{parse, tables, Generation, GrammarHint};
use bb_remote::route::{
    route, ArgTemplate, DelegateSet, InputSource, NativeCode, Plan, Route, LEGACY_DEFAULT,
    MODERN_DEFAULT,
};
use std::ffi::OsString;
use std::path::Path;

mod clients;
mod real_bb;
mod rules;

const CWD: &str = "/srv/prover";

/// Split a shell-like line on spaces; `''` is an empty-string argument.
fn argv(line: &str) -> Vec<OsString> {
    line.split_whitespace()
        .map(|s| OsString::from(if s == "''" { "" } else { s }))
        .collect()
}

fn verdict_env(line: &str, env: &[(&str, &str)]) -> Route {
    let env = Env::from_pairs(env.iter().copied());
    let settings = Settings::load(&env).expect("configuration");
    let inv = parse(&argv(line), &env, settings.grammar_hint());
    route(&inv, &settings.delegate, Path::new(CWD))
}

fn remote_env(line: &str, env: &[(&str, &str)]) -> Plan {
    match verdict_env(line, env) {
        Route::Remote(plan) => plan,
        Route::Native(reason) => panic!("{line}: expected remote, got native: {reason:?}"),
    }
}

fn remote(line: &str) -> Plan {
    remote_env(line, &[])
}

fn native_env(line: &str, env: &[(&str, &str)]) -> NativeCode {
    match verdict_env(line, env) {
        Route::Native(reason) => {
            assert!(!reason.message.is_empty());
            reason.code
        }
        Route::Remote(plan) => panic!("{line}: expected native, got remote: {plan:?}"),
    }
}

fn native(line: &str) -> NativeCode {
    native_env(line, &[])
}

/// (role, resolved path, source, required) of every input.
fn inputs(plan: &Plan) -> Vec<(&str, &str, InputSource, bool)> {
    plan.inputs
        .iter()
        .map(|i| (i.role.as_str(), i.path.as_str(), i.source, i.required))
        .collect()
}

/// Rendering with the local paths must give an argv bb reads like the original.
fn local_argv(plan: &Plan) -> String {
    plan.render_argv(&plan.local_mapping()).unwrap().join(" ")
}

use InputSource::{Default as Dflt, Env as FromEnv, Flag, Implicit};

// ---- the operator tool ----

#[test]
fn bb_remote_route_prints_the_verdict_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let cwd = std::fs::canonicalize(dir.path()).unwrap();
    let run = |env: &[(&str, &str)], args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_bb-remote"))
            .arg("route")
            .arg("--")
            .args(args)
            .current_dir(&cwd)
            .env_clear()
            .envs(env.iter().copied())
            .output()
            .unwrap()
    };
    let out = run(
        &[],
        &[
            "prove_ultra_honk_output_all",
            "-o",
            "out",
            "-b",
            "bytecode",
            "-w",
            "/abs/w.gz",
            "-c",
            "/crs",
            "-v",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["verdict"], "remote");
    let plan = &json["plan"];
    assert_eq!(plan["plan_version"], 1);
    assert_eq!(plan["generation"], "legacy");
    assert_eq!(plan["inputs"][0]["role"], "bytecode");
    assert_eq!(
        plan["inputs"][0]["path"],
        cwd.join("bytecode").to_str().unwrap()
    );
    assert_eq!(plan["inputs"][0]["source"], "flag");
    assert_eq!(plan["inputs"][1]["path"], "/abs/w.gz");
    assert_eq!(
        plan["output_dir"]["path"],
        cwd.join("out").to_str().unwrap()
    );
    assert_eq!(plan["dropped"], serde_json::json!(["-c", "/crs"]));
    assert_eq!(plan["argv"][2], "output_dir");
    assert_eq!(plan["argv"][4], serde_json::json!({"input": 0}));
    let parsed: Plan = serde_json::from_value(plan.clone()).unwrap();
    assert_eq!(parsed.inputs.len(), 2);

    let out = run(&[], &["verify", "-p", "p", "-k", "k"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["verdict"], "native");
    assert_eq!(json["reason"]["code"], "not_delegated");

    let out = run(&[("BB_REMOTE_DELEGATE", "prove,nonsense")], &["prove"]);
    assert_eq!(out.status.code(), Some(i32::from(bb_remote::exit::CONFIG)));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("BB_REMOTE_DELEGATE") && stderr.contains("nonsense"),
        "{stderr}"
    );
}
