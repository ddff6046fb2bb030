//! The exact argv each Aztec client version sends (docs/bb-grammar.md §2).

use super::*;

// ---- legacy clients (docs/bb-grammar.md §2) ----

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
    );
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
    let inv = parse(&argv(line), &Env::default(), GrammarHint::Auto);
    assert_eq!(inv.generation, Generation::Legacy);
    assert_eq!(native(line), NativeCode::NotDelegated);
}

// ---- modern clients (docs/bb-grammar.md §2) ----

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
