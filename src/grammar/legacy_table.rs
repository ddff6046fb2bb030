//! The legacy grammar (barretenberg 0.47.1 - 0.76.4) as data.
//!
//! Source: bb's `main.cpp` read at release commits (summary: docs/bb-grammar.md §1). Every option is
//! an exact token; commands read the options listed here plus [`GLOBAL`]. Version
//! ranges between the releases that were read (0.47.1, 0.48, 0.52, 0.55, 0.58, 0.63.1,
//! 0.66, 0.69, 0.72.1, 0.76.4) are inferred from the diffs and written as
//! `"first-last"`.

use super::table::{
    input, output_dir, output_file, setting, CommandSpec, Generation, ImplicitInput, OptionSpec,
    Reads, Use,
};

const fn opt(id: &'static str, names: &'static [&'static str], takes_value: bool) -> OptionSpec {
    OptionSpec {
        id,
        names,
        takes_value,
        env: None,
        choices: &[],
    }
}

pub(crate) const BYTECODE: OptionSpec = opt("bytecode", &["-b"], true);
pub(crate) const WITNESS: OptionSpec = opt("witness", &["-w"], true);
pub(crate) const PROOF: OptionSpec = opt("proof", &["-p"], true);
pub(crate) const VK: OptionSpec = opt("vk", &["-k"], true);
pub(crate) const OUTPUT: OptionSpec = opt("output", &["-o"], true);
pub(crate) const CRS: OptionSpec = opt("crs_path", &["-c"], true);
pub(crate) const VERBOSE: OptionSpec = opt("verbose", &["-v", "--verbose_logging"], false);
pub(crate) const DEBUG: OptionSpec = opt("debug", &["-d", "--debug_logging"], false);
/// `honk_recursion` for `gates`: a bare flag before 0.69.0, an integer value from then
/// on. Modelled as a flag: legacy lookups never consume tokens, so this only matters
/// for what `gates` computes, and `gates` always runs native.
pub(crate) const HONK_RECURSION: OptionSpec = opt("honk_recursion", &["-h"], false);
/// 0.63.1+: passed to the prove / write_vk / gates families.
pub(crate) const RECURSIVE: OptionSpec = opt("recursive", &["--recursive"], false);
/// 0.66.0+: `--scheme client_ivc` sends prove / verify / prove_and_verify to ClientIVC.
pub(crate) const SCHEME: OptionSpec = opt("scheme", &["--scheme"], true);
pub(crate) const INPUT_TYPE: OptionSpec = opt("input_type", &["--input_type"], true);
pub(crate) const OUTPUT_TYPE: OptionSpec = opt("output_type", &["--output_type"], true);
pub(crate) const AVM_BYTECODE: OptionSpec = opt("avm_bytecode", &["--avm-bytecode"], true);
pub(crate) const AVM_CALLDATA: OptionSpec = opt("avm_calldata", &["--avm-calldata"], true);
pub(crate) const AVM_PUBLIC_INPUTS: OptionSpec =
    opt("avm_public_inputs", &["--avm-public-inputs"], true);
pub(crate) const AVM_HINTS: OptionSpec = opt("avm_hints", &["--avm-hints"], true);
pub(crate) const AVM_DUMP_TRACE: OptionSpec = opt("avm_dump_trace", &["--avm-dump-trace"], true);
pub(crate) const AVM_INPUTS: OptionSpec = opt("avm_inputs", &["--avm-inputs"], true);

/// Read by every legacy command (`main()` sets logging and the CRS up front).
pub static GLOBAL: &[Reads] = &[
    setting(&VERBOSE).with_usage(Use::Logging),
    setting(&DEBUG).with_usage(Use::Logging),
    setting(&CRS)
        .with_usage(Use::Crs)
        .with_default("$HOME/.bb-crs"),
];

const B: Reads = input(&BYTECODE, "bytecode", "./target/program.json");
const W: Reads = input(&WITNESS, "witness", "./target/witness.gz");
const P: Reads = input(&PROOF, "proof", "./proofs/proof");
const K: Reads = input(&VK, "vk", "./target/vk");
const REC: Reads = setting(&RECURSIVE).only("0.63.1-0.76.4");
const SCH: Reads = setting(&SCHEME).only("0.66.0-0.76.4");
const IN_T: Reads = setting(&INPUT_TYPE).only("0.66.0-0.76.4");
const OUT_T: Reads = setting(&OUTPUT_TYPE).only("0.66.0-0.76.4");

const fn dir(default: &'static str) -> Reads {
    output_dir(&OUTPUT, default, false)
}

const fn file(default: &'static str) -> Reads {
    output_file(&OUTPUT, default)
}

/// `prove_tube`'s inputs: files inside `-o`, named differently per release
/// (docs/bb-grammar.md §1). A plan lists every candidate as optional.
pub(super) static TUBE_INPUTS: &[ImplicitInput] = &[
    ImplicitInput {
        role: "tube_client_ivc_proof",
        file: "client_ivc_proof",
        versions: None,
    },
    ImplicitInput {
        role: "tube_inst_vk",
        file: "inst_vk",
        versions: Some("0.47.1-0.54"),
    },
    ImplicitInput {
        role: "tube_final_decider_vk",
        file: "final_decider_vk",
        versions: Some("0.55.0-0.62"),
    },
    ImplicitInput {
        role: "tube_pg_acc",
        file: "pg_acc",
        versions: Some("0.47.1-0.62"),
    },
    ImplicitInput {
        role: "tube_mega_vk",
        file: "mega_vk",
        versions: Some("0.63.1-0.64"),
    },
    ImplicitInput {
        role: "tube_translator_vk",
        file: "translator_vk",
        versions: Some("0.47.1-0.64"),
    },
    ImplicitInput {
        role: "tube_ecc_vk",
        file: "ecc_vk",
        versions: Some("0.47.1-0.64"),
    },
    ImplicitInput {
        role: "tube_client_ivc_vk",
        file: "client_ivc_vk",
        versions: Some("0.65.0-0.76.4"),
    },
];

const fn cmd(name: &'static str, versions: &'static str, reads: &'static [Reads]) -> CommandSpec {
    CommandSpec {
        name,
        generation: Generation::Legacy,
        versions,
        reads,
        implicit_inputs: &[],
        opaque: false,
    }
}

const ALL: &str = "0.47.1-0.76.4";
const TO_65: &str = "0.47.1-0.65";

/// Every legacy command. Options not listed (and not in [`GLOBAL`]) are ignored by bb.
pub static COMMANDS: &[CommandSpec] = &[
    cmd("--version", ALL, &[]),
    cmd("prove_and_verify", ALL, &[B, W, SCH, IN_T, OUT_T]),
    cmd("prove_and_verify_ultra_honk", ALL, &[B, W]),
    cmd("prove_and_verify_mega_honk", ALL, &[B, W]),
    cmd("prove_and_verify_ultra_honk_program", ALL, &[B, W]),
    cmd("prove_and_verify_mega_honk_program", ALL, &[B, W]),
    cmd(
        "client_ivc_prove_output_all_msgpack",
        TO_65,
        &[
            input(&BYTECODE, "acir_stack", "./target/program.json"),
            input(&WITNESS, "witness_stack", "./target/witness.gz"),
            dir("./target"),
        ],
    ),
    cmd("verify_client_ivc", TO_65, &[dir("./target")]),
    cmd("fold_and_verify_program", ALL, &[B, W]),
    cmd(
        "prove",
        ALL,
        &[B, W, file("./proofs/proof"), SCH, IN_T, OUT_T],
    ),
    cmd("prove_output_all", ALL, &[B, W, dir("./proofs")]),
    cmd(
        "prove_ultra_honk_output_all",
        ALL,
        &[B, W, dir("./proofs"), REC],
    ),
    cmd(
        "prove_mega_honk_output_all",
        ALL,
        &[B, W, dir("./proofs"), REC],
    ),
    // 0.52 added it with a `-o` default of `./proofs/proof` (used as a directory);
    // the 0.55 rename is assumed to keep that default.
    cmd(
        "prove_keccak_ultra_honk_output_all",
        "0.52.0-0.54",
        &[B, W, dir("./proofs/proof")],
    ),
    cmd(
        "prove_ultra_keccak_honk_output_all",
        "0.55.0-0.76.4",
        &[B, W, dir("./proofs/proof"), REC],
    ),
    // Default assumed to match prove_ultra_honk_output_all (not read in source).
    cmd(
        "prove_ultra_rollup_honk_output_all",
        "0.66.0-0.76.4",
        &[B, W, dir("./proofs"), REC],
    ),
    cmd(
        "client_ivc_prove_output_all",
        TO_65,
        &[B, W, dir("./target")],
    ),
    CommandSpec {
        implicit_inputs: TUBE_INPUTS,
        ..cmd("prove_tube", ALL, &[dir("./target")])
    },
    cmd("verify_tube", ALL, &[dir("./target")]),
    cmd("gates", ALL, &[B, setting(&HONK_RECURSION), REC]),
    cmd("gates_mega_honk", "0.48.0-0.76.4", &[B, REC]),
    cmd("verify", ALL, &[P, K, SCH]),
    cmd("contract", ALL, &[K, file("./target/contract.sol")]),
    cmd(
        "contract_ultra_honk",
        "0.50.0-0.76.4",
        &[K, file("./target/contract.sol")],
    ),
    cmd("write_vk", ALL, &[B, file("./target/vk"), REC]),
    cmd("write_pk", ALL, &[B, file("./target/pk"), REC]),
    cmd("proof_as_fields", ALL, &[P, K, file("<-p>_fields.json")]),
    cmd("vk_as_fields", ALL, &[K, file("<-k>_fields.json")]),
    cmd(
        "avm_prove",
        ALL,
        &[
            input(&AVM_BYTECODE, "avm_bytecode", "./target/avm_bytecode.bin").only("0.47.1-0.61"),
            input(&AVM_CALLDATA, "avm_calldata", "./target/avm_calldata.bin").only("0.47.1-0.65"),
            input(
                &AVM_PUBLIC_INPUTS,
                "avm_public_inputs",
                "./target/avm_public_inputs.bin",
            ),
            input(&AVM_HINTS, "avm_hints", "./target/avm_hints.bin"),
            dir("./proofs"),
            setting(&AVM_DUMP_TRACE).with_usage(Use::ExtraOutput),
        ],
    ),
    cmd("avm_verify", ALL, &[P, K]),
    cmd(
        "prove_ultra_honk",
        ALL,
        &[B, W, file("./proofs/proof"), REC],
    ),
    cmd(
        "prove_keccak_ultra_honk",
        "0.47.1-0.57",
        &[B, W, file("./proofs/proof")],
    ),
    cmd(
        "prove_ultra_keccak_honk",
        "0.58.0-0.76.4",
        &[B, W, file("./proofs/proof"), REC],
    ),
    cmd(
        "prove_ultra_rollup_honk",
        "0.66.0-0.76.4",
        &[B, W, file("./proofs/proof"), REC],
    ),
    cmd("verify_ultra_honk", ALL, &[P, K]),
    cmd("verify_keccak_ultra_honk", "0.47.1-0.54", &[P, K]),
    cmd("verify_ultra_keccak_honk", "0.55.0-0.76.4", &[P, K]),
    cmd("verify_ultra_rollup_honk", "0.66.0-0.76.4", &[P, K]),
    cmd("write_vk_ultra_honk", ALL, &[B, file("./target/vk"), REC]),
    cmd(
        "write_vk_ultra_keccak_honk",
        "0.52.0-0.76.4",
        &[B, file("./target/vk"), REC],
    ),
    cmd(
        "write_vk_ultra_rollup_honk",
        "0.66.0-0.76.4",
        &[B, file("./target/vk"), REC],
    ),
    cmd(
        "write_vk_for_ivc",
        "0.66.0-0.76.4",
        &[B, file("./target/vk")],
    ),
    cmd("prove_mega_honk", ALL, &[B, W, file("./proofs/proof")]),
    cmd("verify_mega_honk", ALL, &[P, K]),
    cmd("write_vk_mega_honk", ALL, &[B, file("./target/vk")]),
    cmd("proof_as_fields_honk", ALL, &[P, file("<-p>_fields.json")]),
    cmd(
        "vk_as_fields_ultra_honk",
        ALL,
        &[K, file("<-k>_fields.json")],
    ),
    cmd(
        "vk_as_fields_mega_honk",
        ALL,
        &[K, file("<-k>_fields.json")],
    ),
    cmd(
        "vk_as_fields_ultra_keccak_honk",
        "0.55.0-0.76.4",
        &[K, file("<-k>_fields.json")],
    ),
    cmd(
        "vk_as_fields_ultra_rollup_honk",
        "0.66.0-0.76.4",
        &[K, file("<-k>_fields.json")],
    ),
    cmd("write_recursion_inputs_honk", "0.58.0-0.76.4", &[B, W, REC]),
    // The `--avm-inputs` default is assumed to be the modern one (not read in source).
    cmd(
        "avm2_prove",
        "0.76.4",
        &[
            input(&AVM_INPUTS, "avm_inputs", "./target/avm_inputs.bin"),
            dir("./proofs"),
        ],
    ),
    cmd(
        "avm2_check_circuit",
        "0.76.4",
        &[input(&AVM_INPUTS, "avm_inputs", "./target/avm_inputs.bin")],
    ),
    cmd(
        "avm2_verify",
        "0.76.4",
        &[
            P,
            input(
                &AVM_PUBLIC_INPUTS,
                "avm_public_inputs",
                "./target/avm_public_inputs.bin",
            ),
        ],
    ),
];

/// The command named `name`, if legacy bb knows it.
pub fn command(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|c| c.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn command_names_are_unique() {
        let mut seen = HashSet::new();
        for c in COMMANDS {
            assert!(seen.insert(c.name), "duplicate legacy command {}", c.name);
        }
    }

    #[test]
    fn every_command_reads_each_option_once_and_not_a_global_one() {
        for c in COMMANDS {
            let mut seen = HashSet::new();
            for r in c.reads {
                assert!(
                    seen.insert(r.option.id),
                    "{} reads {} twice",
                    c.name,
                    r.option.id
                );
                assert!(
                    !GLOBAL.iter().any(|g| g.option == r.option),
                    "{} repeats a global",
                    c.name
                );
            }
        }
    }

    #[test]
    fn output_all_commands_write_into_existing_directories() {
        for c in COMMANDS
            .iter()
            .filter(|c| c.name.ends_with("_output_all") || c.name == "prove_tube")
        {
            let (reads, kind) = c.output().expect("has -o");
            assert_eq!(reads.option.names, ["-o"]);
            assert_eq!(
                kind,
                crate::grammar::OutputKind::Dir {
                    created_by_bb: false
                },
                "{}",
                c.name
            );
        }
        assert_eq!(
            command("prove").unwrap().output().unwrap().1,
            crate::grammar::OutputKind::File
        );
    }

    #[test]
    fn tube_lists_every_release_naming() {
        let files: Vec<_> = command("prove_tube")
            .unwrap()
            .implicit_inputs
            .iter()
            .map(|i| i.file)
            .collect();
        for f in [
            "inst_vk",
            "final_decider_vk",
            "mega_vk",
            "client_ivc_vk",
            "pg_acc",
            "client_ivc_proof",
        ] {
            assert!(files.contains(&f), "{f}");
        }
    }
}
