//! One recorded session replayed elsewhere, then a miss, a tampered blob and an
//! unknown format version.
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{bb_lines, fixtures_cli, job_dir, recording, replaying, tree, Backend};
use crate::support::testbed::{run, testbed, Outcome, Scratch};

const FLAGS: &[&str] = &[
    "--scheme",
    "ultra_honk",
    "--oracle_hash",
    "poseidon2",
    "--disable_zk",
];

/// The session's calls for job directory `d` (as the Aztec client would make them).
fn calls(d: &Path) -> Vec<(&'static str, Vec<String>)> {
    let p = |name: &str| d.join(name).display().to_string();
    let crs = testbed().crs_dir.display().to_string();
    let with = |cmd: &str, rest: &[String]| {
        let mut argv = vec![cmd.to_owned()];
        argv.extend(FLAGS.iter().map(|s| s.to_string()));
        argv.extend_from_slice(rest);
        argv
    };
    vec![
        (
            "write_vk",
            with(
                "write_vk",
                &[
                    "-b".into(),
                    p("bytecode"),
                    "-o".into(),
                    p("vk-out"),
                    "-c".into(),
                    crs.clone(),
                ],
            ),
        ),
        (
            "prove",
            with(
                "prove",
                &[
                    "-o".into(),
                    p("proof-out"),
                    "-b".into(),
                    p("bytecode"),
                    "-k".into(),
                    p("vk-out/vk"),
                    "-w".into(),
                    p("witness.gz"),
                    "-v".into(),
                ],
            ),
        ),
        (
            "verify",
            with(
                "verify",
                &[
                    "-k".into(),
                    p("vk-out/vk"),
                    "-p".into(),
                    p("proof-out/proof"),
                    "-i".into(),
                    p("proof-out/public_inputs"),
                    "-c".into(),
                    crs.clone(),
                ],
            ),
        ),
        ("gates", vec!["gates".into(), "-b".into(), p("bytecode")]),
        (
            "failing verify",
            with(
                "verify",
                &[
                    "-k".into(),
                    p("bytecode"),
                    "-p".into(),
                    p("proof-out/proof"),
                    "-i".into(),
                    p("proof-out/public_inputs"),
                    "-c".into(),
                    crs,
                ],
            ),
        ),
    ]
}

fn session(mut shim: impl FnMut() -> Command, d: &Path) -> Vec<(&'static str, Outcome)> {
    calls(d)
        .into_iter()
        .map(|(what, argv)| (what, run(shim().args(&argv))))
        .collect()
}

fn outputs(d: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = tree(&d.join("vk-out"));
    files.extend(tree(&d.join("proof-out")));
    files
}

fn prove_argv(d: &Path) -> Vec<String> {
    calls(d).swap_remove(1).1
}

#[test]
fn a_recorded_session_replays_byte_for_byte_elsewhere() {
    let backend = Backend::start();
    let fixtures = tempfile::tempdir().unwrap();
    let (a, b) = (Scratch::new(), Scratch::new());
    let (da, db) = (job_dir(&a, "square"), job_dir(&b, "square"));
    assert_ne!(da, db);

    let recorded = session(|| recording(&a, fixtures.path(), Some(&backend)), &da);
    let codes: Vec<_> = recorded.iter().map(|(w, o)| (*w, o.code)).collect();
    assert_eq!(
        codes[..4],
        [
            ("write_vk", Some(0)),
            ("prove", Some(0)),
            ("verify", Some(0)),
            ("gates", Some(0))
        ],
        "{recorded:#?}"
    );
    assert_ne!(
        recorded[4].1.code,
        Some(0),
        "the failing call fails: {recorded:#?}"
    );
    assert!(
        recorded[1].1.stderr.contains(" COMPLETE after "),
        "prove was delegated: {}",
        recorded[1].1.stderr
    );
    assert!(
        !recorded[3].1.stdout.is_empty(),
        "gates prints its report on stdout"
    );

    let verify = fixtures_cli(fixtures.path(), &["verify"]);
    verify.assert_code(0, "fixtures verify after recording");
    let list = String::from_utf8(fixtures_cli(fixtures.path(), &["list"]).stdout).unwrap();
    assert_eq!(list.lines().count(), 5, "{list}");
    assert_eq!(list.matches("delegated").count(), 1, "{list}");

    let replayed = session(|| replaying(&b, fixtures.path()), &db);
    for ((what, rec), (_, rep)) in recorded.iter().zip(&replayed) {
        assert_eq!(
            rep.code, rec.code,
            "{what}: exit code; replay stderr: {}",
            rep.stderr
        );
        assert_eq!(rep.stdout, rec.stdout, "{what}: stdout");
        // Replay adds nothing of its own: its stderr is exactly what bb wrote when
        // recorded (the live run also carried the shim's progress lines).
        assert_eq!(rep.stderr, bb_lines(&rec.stderr), "{what}: bb's stderr");
    }
    assert_eq!(outputs(&db), outputs(&da), "replayed output files");
    assert!(!outputs(&db).is_empty());

    miss_names_the_nearest_recorded_invocation(&b, fixtures.path(), &db);
    tampered_blob_is_refused(&b, fixtures.path(), &db);
    unknown_format_version_is_refused(&b, fixtures.path(), &db);
}

fn prove_key(fixtures: &Path) -> String {
    let list = String::from_utf8(fixtures_cli(fixtures, &["list"]).stdout).unwrap();
    let line = list
        .lines()
        .find(|l| l.contains("delegated"))
        .expect("a delegated record");
    line.split_whitespace().next().unwrap().to_owned()
}

fn miss_names_the_nearest_recorded_invocation(s: &Scratch, fixtures: &Path, d: &Path) {
    let other = d.join("other-witness.gz");
    let mut bytes = std::fs::read(d.join("witness.gz")).unwrap();
    bytes.push(0);
    std::fs::write(&other, bytes).unwrap();
    let argv: Vec<String> = prove_argv(d)
        .into_iter()
        .map(|a| {
            if a.ends_with("witness.gz") {
                other.display().to_string()
            } else {
                a
            }
        })
        .collect();
    let out = run(replaying(s, fixtures).args(&argv));
    out.assert_code(66, "replay miss");
    let key = prove_key(fixtures);
    assert!(
        out.stderr.contains("no fixture for this prove invocation"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains(&format!(
            "nearest recorded prove: {key} (differs in: input witness)"
        )),
        "{}",
        out.stderr
    );

    // BB_REMOTE_REPLAY_MISS=native: a miss runs on the native bb instead.
    let bytecode = d.join("bytecode").display().to_string();
    let gates = ["gates", "-b", &bytecode, "--include_gates_per_opcode"];
    run(replaying(s, fixtures).args(gates)).assert_code(66, "gates miss");
    let native = run(replaying(s, fixtures)
        .env("BB_REMOTE_REPLAY_MISS", "native")
        .env("BB_REMOTE_NATIVE_BIN", &testbed().bb)
        .args(gates));
    native.assert_code(0, "gates miss run natively");
    assert!(String::from_utf8_lossy(&native.stdout).contains("gates_per_opcode"));
    assert!(
        native.stderr.contains("running bb natively"),
        "{}",
        native.stderr
    );
}

fn tampered_blob_is_refused(s: &Scratch, fixtures: &Path, d: &Path) {
    let key = prove_key(fixtures);
    let show = fixtures_cli(fixtures, &["show", &key[..12]]);
    show.assert_code(0, "fixtures show");
    let record: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    let proof = record["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "proof")
        .unwrap();
    let blob: PathBuf = fixtures
        .join("blobs/sha256")
        .join(proof["sha256"].as_str().unwrap());
    let original = std::fs::read(&blob).unwrap();
    let mut tampered = original.clone();
    tampered[0] ^= 1;
    std::fs::write(&blob, &tampered).unwrap();

    let verify = fixtures_cli(fixtures, &["verify"]);
    verify.assert_code(65, "fixtures verify of a tampered blob");
    assert!(verify.stderr.contains("corrupt"), "{}", verify.stderr);

    let out_dir = d.join("proof-out");
    std::fs::remove_dir_all(&out_dir).unwrap();
    let out = run(replaying(s, fixtures).args(prove_argv(d)));
    out.assert_code(65, "replay from a tampered blob");
    assert!(
        out.stderr.contains("fixture unusable") && out.stderr.contains("corrupt"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.is_empty());
    assert!(
        tree(&out_dir).is_empty(),
        "nothing written from a corrupt fixture"
    );
    std::fs::write(&blob, original).unwrap();
}

fn unknown_format_version_is_refused(s: &Scratch, fixtures: &Path, d: &Path) {
    let key = prove_key(fixtures);
    let path = fixtures.join("records").join(format!("{key}.json"));
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("\"format_version\": 1,", "\"format_version\": 2,"),
    )
    .unwrap();
    let out = run(replaying(s, fixtures).args(prove_argv(d)));
    out.assert_code(65, "replay of an unknown format version");
    assert!(
        out.stderr
            .contains("record format version 2 is not supported"),
        "{}",
        out.stderr
    );
    fixtures_cli(fixtures, &["verify"]).assert_code(65, "verify of an unknown version");
    std::fs::write(&path, text).unwrap();
    let again = run(replaying(s, fixtures).args(prove_argv(d)));
    again.assert_code(0, "replay once the record is restored");
}
