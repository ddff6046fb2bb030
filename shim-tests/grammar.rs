//! Table-driven tests of bb's grammars and the routing verdict: every command of
//! both grammars, and the exact argv each Aztec client version sends (bb-cli.md §2.4,
//! §3.5). Pure function calls except the last test, which runs `bb-remote route`.

use bb_remote::config::Env;
use bb_remote::grammar::{parse, tables, Generation, GrammarHint};
use bb_remote::route::{
    route, ArgTemplate, InputSource, NativeCode, Plan, Route, LEGACY_DEFAULT, MODERN_DEFAULT,
};
use std::ffi::OsString;
use std::path::Path;

const CWD: &str = "/srv/prover";

/// Split a shell-like line on spaces; `''` is an empty-string argument.
fn argv(line: &str) -> Vec<OsString> {
    line.split_whitespace()
        .map(|s| OsString::from(if s == "''" { "" } else { s }))
        .collect()
}

fn verdict_env(line: &str, env: &[(&str, &str)]) -> Route {
    let env = Env::from_pairs(env.iter().copied());
    let inv = parse(&argv(line), &env, GrammarHint::Auto).expect("grammar config");
    route(&inv, &env, Path::new(CWD)).expect("delegate config")
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

// ---- legacy clients (bb-cli.md §2.4) ----

#[test]
fn client_0_47_1_server_proof() {
    let plan = remote("prove_ultra_honk_output_all -o /wd/tmp-1 -b /wd/tmp-1/BaseRollupArtifact-bytecode -w /wd/tmp-1/partial-witness.gz -v");
    assert_eq!(plan.generation, Generation::Legacy);
    assert_eq!(plan.command, "prove_ultra_honk_output_all");
    assert_eq!(
        inputs(&plan),
        [
            (
                "bytecode",
                "/wd/tmp-1/BaseRollupArtifact-bytecode",
                Flag,
                true
            ),
            ("witness", "/wd/tmp-1/partial-witness.gz", Flag, true),
        ]
    );
    assert_eq!(plan.output_dir.path, "/wd/tmp-1");
    assert!(!plan.output_dir.created_by_bb);
    assert_eq!(
        plan.argv,
        [
            ArgTemplate::Literal("prove_ultra_honk_output_all".into()),
            ArgTemplate::Literal("-o".into()),
            ArgTemplate::OutputDir,
            ArgTemplate::Literal("-b".into()),
            ArgTemplate::Input(0),
            ArgTemplate::Literal("-w".into()),
            ArgTemplate::Input(1),
            ArgTemplate::Literal("-v".into()),
        ]
    );
    assert!(plan.dropped.is_empty());
}

#[test]
fn client_0_47_1_tube_lists_every_release_naming_as_implicit_inputs() {
    let plan = remote("prove_tube -o /wd/tmp-2 -v");
    assert_eq!(plan.output_dir.path, "/wd/tmp-2");
    let found = inputs(&plan);
    assert!(found.contains(&(
        "tube_client_ivc_proof",
        "/wd/tmp-2/client_ivc_proof",
        Implicit,
        true
    )));
    for (role, file) in [
        ("tube_inst_vk", "inst_vk"),
        ("tube_final_decider_vk", "final_decider_vk"),
        ("tube_pg_acc", "pg_acc"),
        ("tube_mega_vk", "mega_vk"),
        ("tube_translator_vk", "translator_vk"),
        ("tube_ecc_vk", "ecc_vk"),
        ("tube_client_ivc_vk", "client_ivc_vk"),
    ] {
        let path = format!("/wd/tmp-2/{file}");
        assert!(
            found.contains(&(role, path.as_str(), Implicit, false)),
            "{role}"
        );
    }
    assert!(plan
        .inputs
        .iter()
        .all(|i| i.source != Implicit || i.versions.is_some() || i.required));
    assert_eq!(plan.inputs_on_argv().count(), 0);
    assert_eq!(local_argv(&plan), "prove_tube -o /wd/tmp-2 -v");
}

#[test]
fn client_0_47_1_avm() {
    let line = "avm_prove --avm-bytecode /t/avm_bytecode.bin --avm-calldata /t/avm_calldata.bin \
                --avm-public-inputs /t/avm_public_inputs.bin --avm-hints /t/avm_hints.bin -o /t -d";
    let plan = remote(line);
    assert_eq!(
        inputs(&plan),
        [
            ("avm_bytecode", "/t/avm_bytecode.bin", Flag, false),
            ("avm_calldata", "/t/avm_calldata.bin", Flag, false),
            ("avm_public_inputs", "/t/avm_public_inputs.bin", Flag, true),
            ("avm_hints", "/t/avm_hints.bin", Flag, true),
        ]
    );
    assert_eq!(
        local_argv(&plan),
        line.split_whitespace().collect::<Vec<_>>().join(" ")
    );
}

#[test]
fn client_0_47_1_light_commands_stay_native() {
    for line in [
        "write_vk_ultra_honk -o /wd/vk/A/vk -b /wd/vk/A/bytecode",
        "vk_as_fields_ultra_honk -k /wd/vk/A/vk -o /wd/vk/A/vk_fields.json -v",
        "verify_ultra_honk -p /t/proof -k /t/vk",
        "avm_verify -p /t/proof -k /t/vk",
        "verify_client_ivc -o /d",
        "proof_as_fields_honk -p /t/proof -k /t/vk -v",
        "client_ivc_prove_output_all_msgpack -o /d -b /d/acir.msgpack -w /d/witnesses.msgpack -v",
        "contract -k /vk -o /c.sol -v",
    ] {
        assert_eq!(native(line), NativeCode::NotDelegated, "{line}");
    }
}

#[test]
fn client_0_55_keccak() {
    let plan = remote("prove_ultra_keccak_honk_output_all -o /t -b /t/BlockRootRollupArtifact-bytecode -w /t/partial-witness.gz -v");
    assert_eq!(plan.command, "prove_ultra_keccak_honk_output_all");
    assert_eq!(plan.inputs.len(), 2);
    assert_eq!(plan.generation, Generation::Legacy);
}

#[test]
fn client_0_63_1_with_recursive_and_literal_empty_arguments() {
    let plan = remote("prove_ultra_honk_output_all -o /t -b /t/A-bytecode -w /t/partial-witness.gz -v --recursive");
    assert_eq!(local_argv(&plan), "prove_ultra_honk_output_all -o /t -b /t/A-bytecode -w /t/partial-witness.gz -v --recursive");

    // write_vk gets `''` when not recursive: legacy (CLI11 would reject it), not delegated.
    let inv = parse(
        &argv("write_vk_ultra_honk -o /wd/vk/A/vk -b /wd/vk/A/bytecode ''"),
        &Env::default(),
        GrammarHint::Auto,
    )
    .unwrap();
    assert_eq!(inv.generation, Generation::Legacy);
    assert_eq!(
        native("write_vk_ultra_honk -o /wd/vk/A/vk -b /wd/vk/A/bytecode ''"),
        NativeCode::NotDelegated
    );

    // avm_prove without --avm-bytecode, last argument `''` at info level.
    let plan = remote("avm_prove --avm-calldata /t/c.bin --avm-public-inputs /t/p.bin --avm-hints /t/h.bin -o /t ''");
    assert_eq!(plan.generation, Generation::Legacy);
    assert_eq!(
        inputs(&plan),
        [
            (
                "avm_bytecode",
                "/srv/prover/target/avm_bytecode.bin",
                Dflt,
                false
            ),
            ("avm_calldata", "/t/c.bin", Flag, false),
            ("avm_public_inputs", "/t/p.bin", Flag, true),
            ("avm_hints", "/t/h.bin", Flag, true),
        ]
    );
    let rendered = plan.render_argv(&plan.local_mapping()).unwrap();
    assert_eq!(
        rendered[rendered.len() - 3..],
        ["", "--avm-bytecode", "/srv/prover/target/avm_bytecode.bin"]
    );
}

#[test]
fn client_0_65_tube_and_0_66_avm() {
    let plan = remote("prove_tube -o /t -v");
    assert!(inputs(&plan).contains(&("tube_client_ivc_vk", "/t/client_ivc_vk", Implicit, false)));
    let plan = remote("avm_prove --avm-public-inputs /t/p.bin --avm-hints /t/h.bin -o /t -v");
    let defaulted: Vec<_> = plan
        .inputs
        .iter()
        .filter(|i| i.source == Dflt)
        .map(|i| i.role.as_str())
        .collect();
    assert_eq!(defaulted, ["avm_bytecode", "avm_calldata"]);
}

#[test]
fn client_0_66_pxe_client_ivc_prove_is_legacy_and_native() {
    let line = "prove -o /d -b /d/acir.msgpack -w /d/witnesses.msgpack -v --scheme client_ivc --input_type runtime_stack";
    let inv = parse(&argv(line), &Env::default(), GrammarHint::Auto).unwrap();
    assert_eq!(inv.generation, Generation::Legacy);
    assert_eq!(native(line), NativeCode::NotDelegated);
}

// ---- modern clients (bb-cli.md §3.5) ----

#[test]
fn client_4_x_server_proof() {
    let line = "prove --scheme ultra_honk --oracle_hash poseidon2 --ipa_accumulation --disable_zk -o /t \
                -b /t/PrivateBaseRollupArtifact-bytecode -k /t/PrivateBaseRollupArtifact-vk -w /t/partial-witness.gz -v -v";
    let plan = remote(line);
    assert_eq!(plan.generation, Generation::Modern);
    assert_eq!(
        inputs(&plan),
        [
            (
                "bytecode",
                "/t/PrivateBaseRollupArtifact-bytecode",
                Flag,
                true
            ),
            ("witness", "/t/partial-witness.gz", Flag, true),
            ("vk", "/t/PrivateBaseRollupArtifact-vk", Flag, true),
        ]
    );
    assert_eq!(plan.output_dir.path, "/t");
    assert!(plan.output_dir.created_by_bb);
    assert_eq!(
        local_argv(&plan),
        line.split_whitespace().collect::<Vec<_>>().join(" ")
    );
}

#[test]
fn client_4_x_keccak_and_avm() {
    let plan = remote("prove --scheme ultra_honk --oracle_hash keccak --disable_zk -o /t -b /t/R-bytecode -k /t/R-vk -w /t/w.gz -v");
    assert_eq!(plan.inputs.len(), 3);
    let plan = remote("avm_prove --avm-inputs /t/avm_inputs.bin -o /t -v");
    assert_eq!(
        inputs(&plan),
        [("avm_inputs", "/t/avm_inputs.bin", Flag, true)]
    );
    assert_eq!(plan.command, "avm_prove");
    assert_eq!(plan.generation, Generation::Modern);
    assert_eq!(
        native("avm_check_circuit --avm-inputs /t/avm_inputs.bin -v"),
        NativeCode::NotDelegated
    );
    assert_eq!(
        native(
            "verify -p /t/proof -k /t/vk -i /t/public_inputs --disable_zk --scheme ultra_honk -v"
        ),
        NativeCode::NotDelegated
    );
    assert_eq!(
        native("verify --scheme chonk -p /t/proof -k /t/vk -v -d"),
        NativeCode::NotDelegated
    );
}

#[test]
fn client_0_84_intermediate_prove_and_tube() {
    let plan = remote(
        "prove --scheme ultra_honk --oracle_hash poseidon2 --output_format bytes_and_fields --write_vk \
         --init_kzg_accumulator -o /t -b /t/A-bytecode -w /t/partial-witness.gz -v",
    );
    // --write_vk: bb does not read -k, and nobody named one.
    assert!(plan.inputs.iter().all(|i| i.role != "vk"));

    let plan = remote("prove_tube -o /t -k /pkg/PUBLIC_TAIL_CIVC_VK -v");
    assert_eq!(plan.generation, Generation::Modern);
    assert_eq!(
        inputs(&plan),
        [
            ("tube_vk", "/pkg/PUBLIC_TAIL_CIVC_VK", Flag, true),
            ("tube_client_ivc_proof", "/t/proof", Implicit, true)
        ]
    );
    let plan = remote("avm2_prove --avm-inputs /t/avm_inputs.bin -o /t");
    assert_eq!(plan.command, "avm2_prove");
}

#[test]
fn other_schemes_go_native() {
    assert_eq!(
        native("prove --scheme chonk --ivc_inputs_path /i -o /t"),
        NativeCode::SchemeNotDelegated
    );
    assert_eq!(
        native("prove -o /d --ivc_inputs_path /f -v --scheme chonk --write_vk"),
        NativeCode::SchemeNotDelegated
    );
    assert_eq!(
        native_env("prove -o /t", &[("BB_SCHEME", "chonk")]),
        NativeCode::SchemeNotDelegated
    );
}

#[test]
fn bb_scheme_env_is_written_out_for_the_remote_side() {
    let plan = remote_env(
        "prove -o /t -b /b -w /w -k /k",
        &[("BB_SCHEME", "ultra_honk")],
    );
    assert!(plan
        .argv
        .contains(&ArgTemplate::Literal("--scheme=ultra_honk".into())));
    let plan = remote_env(
        "prove -o /t -b /b -w /w -k /k",
        &[("BB_VERIFIER_TARGET", "noir-rollup")],
    );
    assert!(plan.argv.contains(&ArgTemplate::Literal(
        "--verifier_target=noir-rollup".into()
    )));
    assert_eq!(
        native_env("prove -o /t", &[("BB_VERIFIER_TARGET", "bogus")]),
        NativeCode::BbParseError
    );
}

// ---- parsing rules ----

#[test]
fn repeated_options() {
    let plan = remote("prove_ultra_honk_output_all -b /a -b /b -w /w -o /t");
    assert_eq!(plan.inputs[0].path, "/a");
    assert_eq!(native("prove -b /a -b /b -o /t"), NativeCode::BbParseError);
    // Repeated flags are fine in both.
    remote("prove -v -v -o /t -d -d");
}

#[test]
fn options_in_any_order_give_the_same_plan() {
    let a = remote("prove_ultra_honk_output_all -o /t -b /b -w /w -v");
    let b = remote("prove_ultra_honk_output_all -v -w /w -o /t -b /b");
    assert_eq!((inputs(&a), &a.output_dir), (inputs(&b), &b.output_dir));
    let c = remote("prove -w /w -v -b /b -o /t");
    let d = remote("-v prove -o /t -b /b -w /w");
    assert_eq!((inputs(&c), &c.output_dir), (inputs(&d), &d.output_dir));
}

#[test]
fn missing_values() {
    // Legacy: a value option as last token takes the default (resolved against cwd).
    let plan = remote("prove_ultra_honk_output_all -o /t -w /w -b");
    assert_eq!(
        inputs(&plan)[0],
        ("bytecode", "/srv/prover/target/program.json", Dflt, true)
    );
    assert_eq!(plan.dropped, ["-b"]);
    assert_eq!(
        local_argv(&plan),
        "prove_ultra_honk_output_all -o /t -w /w -b /srv/prover/target/program.json"
    );
    // Modern: CLI11 error 114.
    assert_eq!(native("prove -o /t -b"), NativeCode::BbParseError);
}

#[test]
fn default_paths_are_resolved_against_cwd_and_written_out() {
    let plan = remote("prove");
    assert_eq!(
        inputs(&plan),
        [
            ("bytecode", "/srv/prover/target/program.json", Dflt, true),
            ("witness", "/srv/prover/target/witness.gz", Dflt, true),
            ("vk", "/srv/prover/target/vk", Dflt, true),
        ]
    );
    assert_eq!(
        (plan.output_dir.path.as_str(), plan.output_dir.source),
        ("/srv/prover/out", Dflt)
    );
    assert_eq!(
        local_argv(&plan),
        "prove --bytecode_path /srv/prover/target/program.json --witness_path /srv/prover/target/witness.gz \
         --vk_path /srv/prover/target/vk --output_path /srv/prover/out"
    );
    let plan = remote("prove_ultra_honk_output_all -b rel/b -w ./w.gz");
    assert_eq!(plan.inputs[0].path, "/srv/prover/rel/b");
    assert_eq!(plan.inputs[1].path, "/srv/prover/w.gz");
    assert_eq!(plan.inputs[1].given, "./w.gz");
    assert_eq!(plan.output_dir.path, "/srv/prover/proofs");
}

#[test]
fn equals_and_joined_forms() {
    let plan = remote("prove --bytecode_path=/b -w/w --output_path=/t -vd --oracle_hash=keccak");
    assert_eq!(
        inputs(&plan)[..2],
        [
            ("bytecode", "/b", Flag, true),
            ("witness", "/w", Flag, true)
        ]
    );
    assert_eq!(plan.output_dir.path, "/t");
    let rendered = local_argv(&plan);
    assert!(
        rendered.starts_with(
            "prove --bytecode_path /b -w /w --output_path /t -v -d --oracle_hash=keccak"
        ),
        "{rendered}"
    );
}

#[test]
fn legacy_flag_before_the_command_is_an_unknown_command() {
    assert_eq!(
        native("-v prove_ultra_honk_output_all -o /t"),
        NativeCode::UnknownCommand
    );
    assert_eq!(native("-v --version"), NativeCode::Informational); // modern reads it as help-like version
    assert_eq!(
        native_env("-v --version", &[("BB_REMOTE_GRAMMAR", "legacy")]),
        NativeCode::UnknownCommand
    );
}

#[test]
fn crs_directory_is_dropped() {
    let plan = remote("prove_ultra_honk_output_all -c /home/u/.bb-crs -o /t -b /b -w /w");
    assert_eq!(plan.dropped, ["-c", "/home/u/.bb-crs"]);
    assert_eq!(
        local_argv(&plan),
        "prove_ultra_honk_output_all -o /t -b /b -w /w"
    );
    let plan = remote("-c /crs prove -o /t --crs_path=/crs2 -v");
    assert_eq!(plan.dropped, ["-c", "/crs", "--crs_path=/crs2"]);
    assert!(!local_argv(&plan).contains("crs"));
    assert!(plan.argv.contains(&ArgTemplate::Literal("-v".into())));
}

#[test]
fn what_is_not_understood_goes_native() {
    for (line, code) in [
        ("prove -o - -b /b", NativeCode::StdoutOutput),
        (
            "prove_ultra_honk_output_all -o - -b /b",
            NativeCode::StdoutOutput,
        ),
        (
            "prove_ultra_honk_output_all -o /t --frobnicate",
            NativeCode::UnknownArgument,
        ),
        (
            "prove_ultra_honk_output_all -o -b /b",
            NativeCode::AmbiguousArgv,
        ),
        (
            "avm_prove --avm-hints /h -o /t --avm-dump-trace /t/trace.csv",
            NativeCode::ExtraOutput,
        ),
        (
            "prove -o /t --bench_out /t/bench.json",
            NativeCode::ExtraOutput,
        ),
        // An empty argument marks `prove` as legacy (UltraPlonk, not delegated) unless
        // the argv is modern for another reason; then CLI11 rejects it (109).
        ("prove -o /t ''", NativeCode::NotDelegated),
        ("-v prove -o /t ''", NativeCode::BbParseError),
        ("prove -o /t --nope", NativeCode::BbParseError),
        ("prove -o /t --write_vk=true", NativeCode::UnsupportedSyntax),
        ("prove -b '' -o /t", NativeCode::EmptyPath),
        ("prove --help", NativeCode::Informational),
        ("--version", NativeCode::Informational),
        ("", NativeCode::NoCommand),
        ("frobnicate", NativeCode::UnknownCommand),
        (
            "contract --scheme ultra_honk -k /vk -o /c.sol -v",
            NativeCode::NotDelegated,
        ),
        ("msgpack run -i /tmp/bb.sock", NativeCode::NotDelegated),
    ] {
        assert_eq!(native(line), code, "{line}");
    }
}

#[test]
fn non_utf8_argv_goes_native() {
    use std::os::unix::ffi::OsStringExt;
    let args = vec![
        OsString::from("prove"),
        OsString::from("-b"),
        OsString::from_vec(vec![b'/', 0xff]),
    ];
    let inv = parse(&args, &Env::default(), GrammarHint::Auto).unwrap();
    let Route::Native(reason) = route(&inv, &Env::default(), Path::new(CWD)).unwrap() else {
        panic!()
    };
    assert_eq!(reason.code, NativeCode::NotUtf8);
}

#[test]
fn relative_working_directory_goes_native() {
    let inv = parse(&argv("prove -o /t"), &Env::default(), GrammarHint::Auto).unwrap();
    let Route::Native(reason) = route(&inv, &Env::default(), Path::new("rel")).unwrap() else {
        panic!()
    };
    assert_eq!(reason.code, NativeCode::BadWorkingDirectory);
}

// ---- configuration ----

#[test]
fn bb_remote_delegate_overrides_the_set() {
    let env = [("BB_REMOTE_DELEGATE", "prove,write_vk")];
    let plan = remote_env("write_vk -b /b -o /t", &env);
    assert_eq!(inputs(&plan), [("bytecode", "/b", Flag, true)]);
    assert_eq!(
        native_env("avm_prove --avm-inputs /i -o /t", &env),
        NativeCode::NotDelegated
    );
    assert_eq!(
        native_env("prove -o /t", &[("BB_REMOTE_DELEGATE", "none")]),
        NativeCode::NotDelegated
    );
    // Single-artefact commands have no plan even when asked for.
    assert_eq!(
        native_env(
            "write_vk_ultra_honk -b /b -o /vk",
            &[("BB_REMOTE_DELEGATE", "write_vk_ultra_honk")]
        ),
        NativeCode::NoPlan
    );

    let bad = Env::from_pairs([("BB_REMOTE_DELEGATE", "prove,bogus")]);
    let inv = parse(&argv("prove"), &bad, GrammarHint::Auto).unwrap();
    let err = route(&inv, &bad, Path::new(CWD)).unwrap_err();
    assert!(
        err.to_string().contains("BB_REMOTE_DELEGATE") && err.to_string().contains("bogus"),
        "{err}"
    );
}

#[test]
fn bb_remote_grammar_forces_the_grammar() {
    assert_eq!(
        native_env("prove -b /b", &[("BB_REMOTE_GRAMMAR", "legacy")]),
        NativeCode::NotDelegated
    );
    let plan = remote_env("avm_prove -o /t", &[("BB_REMOTE_GRAMMAR", "legacy")]);
    assert_eq!(plan.generation, Generation::Legacy);
    let err = parse(
        &argv("prove"),
        &Env::from_pairs([("BB_REMOTE_GRAMMAR", "v3")]),
        GrammarHint::Auto,
    )
    .unwrap_err();
    assert!(err.to_string().contains("BB_REMOTE_GRAMMAR"));
}

// ---- every command of both grammars ----

#[test]
fn every_command_bare_with_the_default_set_and_when_named_in_bb_remote_delegate() {
    for (grammar, commands, default_set) in [
        ("legacy", tables::LEGACY, LEGACY_DEFAULT),
        ("modern", tables::MODERN, MODERN_DEFAULT),
    ] {
        for spec in commands {
            let name = spec.name;
            let forced = [("BB_REMOTE_GRAMMAR", grammar)];
            let named = [("BB_REMOTE_GRAMMAR", grammar), ("BB_REMOTE_DELEGATE", name)];
            if name == "--version" {
                assert_eq!(native_env(name, &forced), NativeCode::Informational);
                continue;
            }
            let default_verdict = verdict_env(name, &forced);
            assert_eq!(
                matches!(default_verdict, Route::Remote(_)),
                default_set.contains(&name),
                "{grammar} {name}"
            );
            if let Route::Native(r) = &default_verdict {
                assert_eq!(r.code, NativeCode::NotDelegated, "{grammar} {name}");
            }
            let plannable = !spec.opaque
                && matches!(
                    spec.output(),
                    Some((_, bb_remote::grammar::OutputKind::Dir { .. }))
                );
            match verdict_env(name, &named) {
                Route::Remote(plan) => {
                    assert!(plannable, "{grammar} {name}");
                    let (reads, _) = spec.output().unwrap();
                    let default = reads.default.unwrap().trim_start_matches("./");
                    assert_eq!(
                        plan.output_dir.path,
                        format!("{CWD}/{default}"),
                        "{grammar} {name}"
                    );
                    assert_eq!(plan.command, name);
                    assert!(plan.render_argv(&plan.local_mapping()).unwrap()[0] == name);
                    for input in plan.inputs.iter().filter(|i| i.source == Dflt) {
                        assert!(
                            input.path.starts_with(CWD),
                            "{grammar} {name} {}",
                            input.role
                        );
                    }
                }
                Route::Native(r) => {
                    assert!(!plannable, "{grammar} {name}: {r:?}");
                    assert_eq!(r.code, NativeCode::NoPlan, "{grammar} {name}");
                }
            }
        }
    }
}

#[test]
fn env_sourced_values_are_recorded_as_such() {
    // No input option has an env fallback today; the scheme's does, and it is not a file.
    let plan = remote_env("prove -o /t", &[("BB_SCHEME", "ultra_honk")]);
    assert!(plan.inputs.iter().all(|i| i.source != FromEnv));
}

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
