//! The modern grammar (CLI11, barretenberg 0.77 - 5.x) as data.
//!
//! Source: docs/bb-grammar.md §1-2 (v5 `--help-extended`, observed behaviour, and `cli.cpp` at
//! the Dec-2025 mirror HEAD) plus the 0.84-2.x client argv (docs/bb-grammar.md §2). The table is the
//! *union* over those versions, so an option one version rejects is accepted here;
//! a remote bb of the client's own version then answers exactly as the native would.
//! Options of 0.77-0.8x that were never read are not listed and count as unknown
//! (CLI11 exit 109), which only sends such argv to the native bb.

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

pub(crate) const HELP: OptionSpec = opt("help", &["-h", "--help"], false);
pub(crate) const HELP_EXTENDED: OptionSpec = opt("help_extended", &["--help-extended"], false);
pub(crate) const VERSION: OptionSpec = opt("version", &["--version"], false);
pub(crate) const VERBOSE: OptionSpec =
    opt("verbose", &["-v", "--verbose", "--verbose_logging"], false);
pub(crate) const DEBUG: OptionSpec = opt("debug", &["-d", "--debug_logging"], false);
/// CLI11 checks `ExistingDirectory` (exit 105); that needs I/O, so the parse does not.
/// `CRS_PATH` is read by bb's CRS code, not by CLI11, when `-c` is absent.
pub(crate) const CRS: OptionSpec = OptionSpec {
    env: Some("CRS_PATH"),
    ..opt("crs_path", &["-c", "--crs_path"], true)
};

pub(crate) const BYTECODE: OptionSpec = opt("bytecode", &["-b", "--bytecode_path"], true);
pub(crate) const WITNESS: OptionSpec = opt("witness", &["-w", "--witness_path"], true);
pub(crate) const OUTPUT: OptionSpec = opt("output", &["-o", "--output_path"], true);
pub(crate) const VK: OptionSpec = opt("vk", &["-k", "--vk_path"], true);
pub(crate) const PROOF: OptionSpec = opt("proof", &["-p", "--proof_path"], true);
pub(crate) const PUBLIC_INPUTS: OptionSpec =
    opt("public_inputs", &["-i", "--public_inputs_path"], true);
pub(crate) const SCHEME: OptionSpec = OptionSpec {
    env: Some("BB_SCHEME"),
    // client_ivc: 0.77-2.x; chonk and avm: later.
    choices: &["chonk", "avm", "ultra_honk", "client_ivc"],
    ..opt("scheme", &["-s", "--scheme"], true)
};
pub(crate) const VERIFIER_TARGET: OptionSpec = OptionSpec {
    env: Some("BB_VERIFIER_TARGET"),
    choices: &[
        "evm",
        "evm-no-zk",
        "noir-recursive",
        "noir-recursive-no-zk",
        "noir-rollup",
        "noir-rollup-no-zk",
        "starknet",
        "starknet-no-zk",
    ],
    ..opt("verifier_target", &["-t", "--verifier_target"], true)
};
/// v5: binary, json. 0.84-1.2 clients pass bytes_and_fields; bytes and fields are its parts.
pub(crate) const OUTPUT_FORMAT: OptionSpec = OptionSpec {
    choices: &["binary", "json", "bytes", "fields", "bytes_and_fields"],
    ..opt("output_format", &["--output_format"], true)
};
pub(crate) const ORACLE_HASH: OptionSpec = OptionSpec {
    choices: &["poseidon2", "keccak", "starknet"],
    ..opt("oracle_hash", &["--oracle_hash"], true)
};
pub(crate) const VK_POLICY: OptionSpec = OptionSpec {
    choices: &["default", "check", "recompute", "rewrite"],
    ..opt("vk_policy", &["--vk_policy"], true)
};
pub(crate) const WRITE_VK: OptionSpec = opt("write_vk", &["--write_vk"], false);
pub(crate) const VERIFY: OptionSpec = opt("verify", &["--verify"], false);
pub(crate) const IVC_INPUTS: OptionSpec = opt("ivc_inputs", &["--ivc_inputs_path"], true);
pub(crate) const IPA_ACCUMULATION: OptionSpec =
    opt("ipa_accumulation", &["--ipa_accumulation"], false);
pub(crate) const DISABLE_ZK: OptionSpec = opt("disable_zk", &["--disable_zk"], false);
pub(crate) const USE_ZK_FLAVOR: OptionSpec = opt("use_zk_flavor", &["--use_zk_flavor"], false);
/// 0.84-0.87 clients pass it for recursive circuits; v5 rejects it (109).
pub(crate) const INIT_KZG: OptionSpec =
    opt("init_kzg_accumulator", &["--init_kzg_accumulator"], false);
pub(crate) const SLOW_LOW_MEMORY: OptionSpec =
    opt("slow_low_memory", &["--slow_low_memory"], false);
pub(crate) const STORAGE_BUDGET: OptionSpec = opt("storage_budget", &["--storage_budget"], true);
pub(crate) const PRINT_BENCH: OptionSpec = opt("print_bench", &["--print_bench"], false);
pub(crate) const BENCH_OUT: OptionSpec = opt("bench_out", &["--bench_out"], true);
pub(crate) const BENCH_OUT_HIER: OptionSpec = opt(
    "bench_out_hierarchical",
    &["--bench_out_hierarchical"],
    true,
);
pub(crate) const MEMORY_PROFILE_OUT: OptionSpec =
    opt("memory_profile_out", &["--memory_profile_out"], true);
pub(crate) const TRACE_PERFETTO: OptionSpec =
    opt("trace_out_perfetto", &["--trace_out_perfetto"], true);
pub(crate) const TRACE_PERFETTO_AGG: OptionSpec = opt(
    "trace_out_perfetto_aggregate",
    &["--trace_out_perfetto_aggregate"],
    true,
);
pub(crate) const INCLUDE_GATES: OptionSpec = opt(
    "include_gates_per_opcode",
    &["--include_gates_per_opcode"],
    false,
);
pub(crate) const OPTIMIZED: OptionSpec = opt("optimized", &["--optimized"], false);
pub(crate) const PROOFS_DIR: OptionSpec = opt("proofs_dir", &["--proofs_dir"], true);
pub(crate) const AVM_INPUTS: OptionSpec = opt("avm_inputs", &["--avm-inputs"], true);
pub(crate) const AVM_PUBLIC_INPUTS: OptionSpec =
    opt("avm_public_inputs", &["--avm-public-inputs"], true);

const LOG_V: Reads = setting(&VERBOSE).with_usage(Use::Logging);
const LOG_D: Reads = setting(&DEBUG).with_usage(Use::Logging);
const CRS_R: Reads = setting(&CRS)
    .with_usage(Use::Crs)
    .with_default("$HOME/.bb-crs");

/// Options before the subcommand. `-v`, `-d` and `-c` are also defined by every
/// subcommand (so they work after it too); help and version make bb print and exit 0.
pub static TOP_LEVEL: &[Reads] = &[
    setting(&HELP),
    setting(&HELP_EXTENDED),
    setting(&VERSION),
    LOG_V,
    LOG_D,
    CRS_R,
];

const B: Reads = input(&BYTECODE, "bytecode", "./target/program.json");
const W: Reads = input(&WITNESS, "witness", "./target/witness.gz");
const K: Reads = input(&VK, "vk", "./target/vk");
const P: Reads = input(&PROOF, "proof", "./target/proof");
const I: Reads = input(&PUBLIC_INPUTS, "public_inputs", "./target/public_inputs");
const S: Reads = setting(&SCHEME).with_default("ultra_honk");
const T: Reads = setting(&VERIFIER_TARGET);
const AVM_IN: Reads = input(&AVM_INPUTS, "avm_inputs", "./target/avm_inputs.bin");
const fn extra(option: &'static OptionSpec) -> Reads {
    setting(option).with_usage(Use::ExtraOutput)
}

const fn cmd(name: &'static str, versions: &'static str, reads: &'static [Reads]) -> CommandSpec {
    CommandSpec {
        name,
        generation: Generation::Modern,
        versions,
        reads,
        implicit_inputs: &[],
        opaque: false,
    }
}

const fn opaque(name: &'static str, versions: &'static str) -> CommandSpec {
    CommandSpec {
        opaque: true,
        ..cmd(name, versions, &[])
    }
}

const ALL: &str = "0.77.0-5.x";

/// 0.77-2.x `prove_tube`: the ClientIVC proof is `<o>/proof` (overwritten by the tube
/// proof); its vk comes with `-k`, from outside `-o`.
pub(super) static TUBE_INPUTS: &[ImplicitInput] = &[ImplicitInput {
    role: "tube_client_ivc_proof",
    file: "proof",
    versions: None,
}];

/// Every subcommand. Those not listed are unknown to CLI11 (exit 109).
pub static COMMANDS: &[CommandSpec] = &[
    // Checked against bb 5.0.0: after these subcommands, CLI11 rejects (exit 109) the
    // logging and CRS options the other subcommands take (`check`: `-v`, `-d`, `-c`;
    // `gates`, `proof_stats`: `-d`, `-c`; `write_solidity_verifier`: `-d`;
    // `avm_simulate`: `-c`). Before the subcommand they are accepted (TOP_LEVEL).
    // Older releases were not checked; an option missing here only sends the call to
    // the native bb, which answers for itself.
    cmd("check", ALL, &[B, W, S]),
    cmd("gates", ALL, &[B, setting(&INCLUDE_GATES), T, S, LOG_V]),
    cmd(
        "prove",
        ALL,
        &[
            B,
            W,
            output_dir(&OUTPUT, "./out", true),
            Reads {
                usage: Use::Input {
                    role: "vk",
                    unless_flag: Some("write_vk"),
                },
                ..K
            },
            T,
            setting(&WRITE_VK),
            setting(&OUTPUT_FORMAT),
            setting(&VERIFY),
            S,
            setting(&IVC_INPUTS).with_default("./ivc-inputs.msgpack"),
            setting(&ORACLE_HASH),
            setting(&IPA_ACCUMULATION),
            setting(&DISABLE_ZK),
            setting(&VK_POLICY).only("5.x"),
            setting(&INIT_KZG).only("0.84-0.87"),
            setting(&SLOW_LOW_MEMORY),
            setting(&STORAGE_BUDGET),
            setting(&PRINT_BENCH),
            extra(&BENCH_OUT),
            extra(&BENCH_OUT_HIER),
            extra(&MEMORY_PROFILE_OUT),
            extra(&TRACE_PERFETTO),
            extra(&TRACE_PERFETTO_AGG),
            LOG_V,
            LOG_D,
            CRS_R,
        ],
    ),
    // The `-o` default is assumed to be prove's `./out` (not confirmed on a binary).
    cmd(
        "write_vk",
        ALL,
        &[
            B,
            output_dir(&OUTPUT, "./out", true),
            T,
            setting(&OUTPUT_FORMAT),
            S,
            setting(&IVC_INPUTS).with_default("./ivc-inputs.msgpack"),
            setting(&ORACLE_HASH),
            setting(&IPA_ACCUMULATION),
            setting(&DISABLE_ZK),
            setting(&USE_ZK_FLAVOR),
            setting(&INIT_KZG).only("0.84-0.87"),
            LOG_V,
            LOG_D,
            CRS_R,
        ],
    ),
    cmd(
        "verify",
        ALL,
        &[
            I,
            P,
            K,
            T,
            S,
            setting(&ORACLE_HASH),
            setting(&DISABLE_ZK),
            setting(&IPA_ACCUMULATION),
            LOG_V,
            LOG_D,
            CRS_R,
        ],
    ),
    cmd(
        "batch_verify",
        ALL,
        &[setting(&PROOFS_DIR), LOG_V, LOG_D, CRS_R],
    ),
    cmd("proof_stats", ALL, &[P, output_file(&OUTPUT, "-"), LOG_V]),
    cmd(
        "write_solidity_verifier",
        ALL,
        &[
            K,
            output_file(&OUTPUT, "./target/contract.sol"),
            T,
            setting(&OPTIMIZED),
            S,
            setting(&DISABLE_ZK),
            LOG_V,
            CRS_R,
        ],
    ),
    opaque("msgpack", ALL),
    opaque("acir_roundtrip", ALL),
    opaque("aztec_process", ALL),
    opaque("OLD_API", "0.77.0-0.8x"),
    opaque("contract", "0.77.0-2.x"),
    cmd("avm_simulate", ALL, &[AVM_IN, LOG_V, LOG_D]),
    cmd(
        "avm_prove",
        ALL,
        &[
            AVM_IN,
            output_dir(&OUTPUT, "./proofs", false),
            LOG_V,
            LOG_D,
            CRS_R,
        ],
    ),
    cmd(
        "avm_write_vk",
        ALL,
        &[output_dir(&OUTPUT, "./keys", false), LOG_V, LOG_D, CRS_R],
    ),
    cmd("avm_check_circuit", ALL, &[AVM_IN, LOG_V, LOG_D, CRS_R]),
    cmd(
        "avm_verify",
        ALL,
        &[
            P,
            input(
                &AVM_PUBLIC_INPUTS,
                "avm_public_inputs",
                "./target/avm_public_inputs.bin",
            ),
            K.only("0.77.0-4.x"),
            LOG_V,
            LOG_D,
            CRS_R,
        ],
    ),
    cmd(
        "avm2_prove",
        "0.77.0-0.8x",
        &[
            AVM_IN,
            output_dir(&OUTPUT, "./proofs", false),
            LOG_V,
            LOG_D,
            CRS_R,
        ],
    ),
    cmd(
        "avm2_check_circuit",
        "0.77.0-0.8x",
        &[AVM_IN, LOG_V, LOG_D, CRS_R],
    ),
    cmd(
        "avm2_verify",
        "0.77.0-0.8x",
        &[
            P,
            input(
                &AVM_PUBLIC_INPUTS,
                "avm_public_inputs",
                "./target/avm_public_inputs.bin",
            ),
            LOG_V,
            LOG_D,
            CRS_R,
        ],
    ),
    // Hidden in 0.77 - 2.x; removed from cli.cpp in Sept 2025. The `-k` default is
    // assumed to be the usual `./target/vk` (the client always passes `-k`).
    CommandSpec {
        implicit_inputs: TUBE_INPUTS,
        ..cmd(
            "prove_tube",
            "0.77.0-2.x",
            &[
                output_dir(&OUTPUT, "./target", false),
                Reads {
                    usage: Use::Input {
                        role: "tube_vk",
                        unless_flag: None,
                    },
                    ..K
                },
                LOG_V,
                LOG_D,
                CRS_R,
            ],
        )
    },
];

/// The subcommand named `name`, if modern bb knows it (in some version).
pub fn command(name: &str) -> Option<&'static CommandSpec> {
    COMMANDS.iter().find(|c| c.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_per_command() {
        let mut commands = HashSet::new();
        for c in COMMANDS {
            assert!(commands.insert(c.name), "duplicate subcommand {}", c.name);
            let mut names = HashSet::new();
            for r in c.reads {
                for n in r.option.names {
                    assert!(names.insert(*n), "{} has {n} twice", c.name);
                }
            }
        }
    }

    #[test]
    fn every_option_has_a_long_name() {
        for c in COMMANDS {
            for r in c.reads {
                assert!(
                    r.option.canonical_name().starts_with("--"),
                    "{}",
                    r.option.id
                );
            }
        }
    }

    #[test]
    fn env_fallbacks_are_the_documented_ones() {
        let prove = command("prove").unwrap();
        assert_eq!(
            prove.reads_id("scheme").unwrap().option.env,
            Some("BB_SCHEME")
        );
        assert_eq!(
            prove.reads_id("verifier_target").unwrap().option.env,
            Some("BB_VERIFIER_TARGET")
        );
        assert_eq!(
            prove.reads_id("scheme").unwrap().default,
            Some("ultra_honk")
        );
    }
}
