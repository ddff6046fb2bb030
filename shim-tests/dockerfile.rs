//! What can be checked of the Dockerfile without a Docker engine (none runs in CI).

use std::process::Command;

/// The path the stock Aztec image's `BB_BINARY_PATH` names (docs/bb-grammar.md §2).
const CLIENT_BB_PATH: &str = "/usr/src/barretenberg/cpp/build/bin/bb";

fn dockerfile() -> String {
    // Join continuation lines so each instruction is one line.
    include_str!("../Dockerfile").replace("\\\n", " ")
}

fn instructions(keyword: &str) -> Vec<String> {
    dockerfile()
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with(&format!("{keyword} ")))
        .map(str::to_owned)
        .collect()
}

/// The `&&`-joined step of the build stage's RUN that builds `bin`: `cargo ... --bin <bin>`,
/// or for the shim `scripts/build-shim` (which builds `--bin bb`, linked statically).
fn build_step<'a>(run: &'a str, bin: &str) -> Option<&'a str> {
    run.split("&&").find(|step| {
        let words: Vec<&str> = step
            .split_whitespace()
            .skip_while(|w| *w == "RUN")
            .collect();
        words.windows(2).any(|w| w == ["--bin", bin])
            || (bin == "bb" && words.first() == Some(&"scripts/build-shim"))
    })
}

#[test]
fn the_shim_build_script_links_bb_statically() {
    let script = include_str!("../scripts/build-shim");
    let link = script
        .lines()
        .skip_while(|l| !l.starts_with("cargo rustc"))
        .take(2)
        .collect::<String>();
    assert!(link.contains("--bin bb"), "{link}");
    assert!(
        link.contains("+crt-static") && link.contains("relocation-model=static"),
        "{link}"
    );
}

#[test]
fn every_binary_copied_from_the_build_stage_is_built_there() {
    let run = instructions("RUN")
        .into_iter()
        .find(|r| r.contains("scripts/build-shim"))
        .expect("the build step");
    let manifest = include_str!("../Cargo.toml");
    let copies: Vec<String> = instructions("COPY")
        .into_iter()
        .filter(|c| c.contains("--from=build"))
        .collect();
    assert!(
        copies.len() >= 3,
        "expected the shim and the tool in prover and worker: {copies:?}"
    );
    for copy in copies {
        let src = copy.split_whitespace().nth(2).unwrap();
        let bin = src
            .strip_prefix("/out/")
            .unwrap_or_else(|| panic!("copies from /out only: {copy}"));
        assert!(
            build_step(&run, bin).is_some(),
            "{bin} is copied but not built: {run}"
        );
        assert!(
            run.contains(&format!("target/release/{bin} /out/{bin}")),
            "{bin} not installed to /out"
        );
        assert!(
            manifest.contains(&format!("name = \"{bin}\"")),
            "{bin} is not a [[bin]] of Cargo.toml"
        );
    }
}

#[test]
fn the_shim_lands_where_the_client_calls_bb_and_the_native_moves_aside() {
    let text = dockerfile();
    assert!(text.contains(&format!("ARG BB_PATH={CLIENT_BB_PATH}")));
    assert!(text.contains(&format!("COPY --from=build /out/bb {CLIENT_BB_PATH}\n")));
    assert!(text.contains("RUN mv \"${BB_PATH}\" \"${BB_PATH}.native\""));
    assert!(text.contains(&format!("ENV BB_REMOTE_NATIVE_BIN={CLIENT_BB_PATH}.native")));
}

#[test]
fn the_worker_entrypoint_uses_flags_the_worker_accepts() {
    let entry = instructions("ENTRYPOINT").pop().expect("worker ENTRYPOINT");
    let help = Command::new(env!("CARGO_BIN_EXE_bb-remote"))
        .args(["worker", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    let flags: Vec<&str> = entry.split('"').filter(|t| t.starts_with("--")).collect();
    assert!(!flags.is_empty(), "{entry}");
    for flag in flags {
        assert!(help.contains(flag), "worker --help does not list {flag}");
    }
    assert!(
        entry.contains(CLIENT_BB_PATH),
        "the worker runs the image's own bb"
    );
}

#[test]
fn the_shim_is_built_without_the_worker() {
    let run = instructions("RUN")
        .into_iter()
        .find(|r| r.contains("scripts/build-shim"))
        .expect("the build step");
    let shim_build = build_step(&run, "bb").expect("a build of the shim");
    assert!(
        shim_build.contains("--no-default-features"),
        "the shim should not carry the worker: {shim_build}"
    );
    assert!(include_str!("../Cargo.toml").contains("default = [\"worker\"]"));
}
