//! The invocation key: the identity of one delegated command, shared by the TES
//! transport (idempotent submission) and record/replay (fixture lookup).
//!
//! The key is the SHA-256 of a canonical JSON document ([`KEY_VERSION`] 1):
//!
//! ```text
//! {"key_version":1,"generation":"modern","command":"prove",
//!  "argv":[{"literal":"prove"},{"input":0},...,"output_dir"],
//!  "inputs":[{"role":"bytecode","digest":"<hex>"},{"role":"vk","digest":null},...]}
//! ```
//!
//! - `argv` is the plan's argv template (file arguments are placeholders, so local
//!   paths never enter the key) **minus the logging flags**: the options the grammar
//!   tables mark [`Use::Logging`] for the command (`-v`, `--verbose`,
//!   `--verbose_logging`, `-d`, `--debug_logging`). They change only what bb logs on
//!   stderr, never its files or exit code. A value that merely spells one (the value
//!   of a value option) stays.
//! - `inputs` lists every plan input in plan order with its role and the SHA-256 of
//!   its content, or `null` when the file is absent (an optional `prove_tube`
//!   candidate): which candidates exist changes what bb reads.
//! - Not in the key: local paths (input paths, the output directory), `-c` (dropped
//!   by the plan), the executor image (tagged separately), the environment.
use crate::grammar::{tables, Generation, Reads, Use};
use crate::route::{ArgTemplate, Plan};
use crate::store::Digest;
use serde::Serialize;

/// Version of the canonical document; bump when its content changes meaning.
pub(crate) const KEY_VERSION: u32 = 1;

#[derive(Serialize)]
struct Canonical<'a> {
    key_version: u32,
    generation: Generation,
    command: &'a str,
    argv: Vec<&'a ArgTemplate>,
    inputs: Vec<KeyInput<'a>>,
}

#[derive(Serialize)]
struct KeyInput<'a> {
    role: &'a str,
    digest: Option<String>,
}

/// The invocation key (64 hex characters) for `plan` whose inputs have the given
/// digests (`digests[i]` for `plan.inputs[i]`; `None` = file absent).
pub(crate) fn invocation_key(plan: &Plan, digests: &[Option<Digest>]) -> String {
    Digest::of_bytes(&canonical_json(plan, digests)).hex()
}

/// The exact bytes hashed into the key (exposed for fixtures and debugging).
pub(crate) fn canonical_json(plan: &Plan, digests: &[Option<Digest>]) -> Vec<u8> {
    let argv = without_logging_flags(plan);
    let inputs = plan
        .inputs
        .iter()
        .enumerate()
        .map(|(i, input)| KeyInput {
            role: &input.role,
            digest: digests.get(i).copied().flatten().map(|d| d.hex()),
        })
        .collect();
    let doc = Canonical {
        key_version: KEY_VERSION,
        generation: plan.generation,
        command: &plan.command,
        argv,
        inputs,
    };
    serde_json::to_vec(&doc).expect("plain structs always serialise")
}

/// The plan's argv without the command's logging flags. Walks the template as bb
/// reads it, so the value of a value option is never mistaken for a flag.
fn without_logging_flags(plan: &Plan) -> Vec<&ArgTemplate> {
    let option = |token: &str| -> Option<&'static Reads> {
        let (command, global) = match plan.generation {
            Generation::Modern => (
                tables::modern_command(&plan.command),
                tables::MODERN_TOP_LEVEL,
            ),
            Generation::Legacy => (tables::legacy_command(&plan.command), tables::LEGACY_GLOBAL),
        };
        command
            .and_then(|c| c.reads_named(token))
            .or_else(|| global.iter().find(|r| r.option.is_named(token)))
    };
    let mut value_next = false;
    plan.argv
        .iter()
        .filter(|arg| {
            let ArgTemplate::Literal(token) = arg else {
                value_next = false;
                return true;
            };
            if std::mem::take(&mut value_next) {
                return true;
            }
            match option(token) {
                Some(reads) if reads.usage == Use::Logging => false,
                Some(reads) => {
                    value_next = reads.option.takes_value;
                    true
                }
                None => true,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::{InputSource, PlanInput, PlanOutputDir, PLAN_VERSION};

    fn plan(dir: &str, verbose: bool) -> Plan {
        let mut argv = vec![
            ArgTemplate::Literal("prove".into()),
            ArgTemplate::Literal("-b".into()),
            ArgTemplate::Input(0),
            ArgTemplate::Literal("-o".into()),
            ArgTemplate::OutputDir,
        ];
        if verbose {
            argv.push(ArgTemplate::Literal("-v".into()));
        }
        Plan {
            plan_version: PLAN_VERSION,
            generation: Generation::Modern,
            command: "prove".into(),
            inputs: vec![PlanInput {
                role: "bytecode".into(),
                given: format!("{dir}/b"),
                path: format!("/{dir}/b"),
                source: InputSource::Flag,
                required: true,
                versions: None,
            }],
            output_dir: PlanOutputDir {
                given: dir.into(),
                path: format!("/{dir}"),
                source: InputSource::Flag,
                created_by_bb: true,
            },
            argv,
            dropped: vec![],
            stdout_file: None,
            assemble: None,
        }
    }

    #[test]
    fn paths_and_verbosity_do_not_change_the_key() {
        let d = [Some(Digest::of_bytes(b"circuit"))];
        let a = invocation_key(&plan("a", false), &d);
        assert_eq!(a, invocation_key(&plan("elsewhere", true), &d));
        assert_eq!(a.len(), 64);
    }

    /// Every spelling the tables mark as logging, in both grammars.
    fn logging_spellings() -> std::collections::BTreeSet<&'static str> {
        let commands = tables::MODERN.iter().chain(tables::LEGACY.iter());
        let reads = commands
            .flat_map(|c| c.reads.iter())
            .chain(tables::MODERN_TOP_LEVEL)
            .chain(tables::LEGACY_GLOBAL);
        reads
            .filter(|r| r.usage == Use::Logging)
            .flat_map(|r| r.option.names.iter().copied())
            .collect()
    }

    #[test]
    fn the_key_ignores_what_it_always_did() {
        // The list key.rs kept before the tables said it, minus `--debug`, which no
        // bb grammar accepts (bb 5.0.0: exit 109; legacy routes unknown tokens native).
        let before = [
            "-v",
            "--verbose",
            "--verbose_logging",
            "-d",
            "--debug_logging",
        ];
        assert_eq!(logging_spellings(), before.into_iter().collect());
        let d = [Some(Digest::of_bytes(b"circuit"))];
        let bare = invocation_key(&plan("a", false), &d);
        for flag in before {
            let mut p = plan("a", false);
            p.argv.push(ArgTemplate::Literal(flag.into()));
            assert_eq!(invocation_key(&p, &d), bare, "{flag}");
            // Before the subcommand too (bb's top-level options).
            let mut p = plan("a", false);
            p.argv.insert(0, ArgTemplate::Literal(flag.into()));
            assert_eq!(invocation_key(&p, &d), bare, "{flag} first");
        }
        let mut legacy = plan("a", false);
        legacy.generation = Generation::Legacy;
        legacy.command = "prove_ultra_honk_output_all".into();
        legacy.argv[0] = ArgTemplate::Literal(legacy.command.clone());
        let legacy_bare = invocation_key(&legacy, &d);
        for flag in ["-v", "--verbose_logging", "-d", "--debug_logging"] {
            let mut p = legacy.clone();
            p.argv.push(ArgTemplate::Literal(flag.into()));
            assert_eq!(invocation_key(&p, &d), legacy_bare, "legacy {flag}");
        }
    }

    #[test]
    fn a_value_spelled_like_a_flag_stays_in_the_key() {
        let d = [Some(Digest::of_bytes(b"circuit"))];
        let with = |value: &str| {
            let mut p = plan("a", false);
            p.argv.push(ArgTemplate::Literal("--scheme".into()));
            p.argv.push(ArgTemplate::Literal(value.into()));
            invocation_key(&p, &d)
        };
        assert_ne!(with("-v"), with("-d"));
        assert_ne!(with("-v"), invocation_key(&plan("a", false), &d));
    }

    #[test]
    fn content_and_presence_change_the_key() {
        let p = plan("a", false);
        let a = invocation_key(&p, &[Some(Digest::of_bytes(b"x"))]);
        assert_ne!(a, invocation_key(&p, &[Some(Digest::of_bytes(b"y"))]));
        assert_ne!(a, invocation_key(&p, &[None]));
        let mut other = p.clone();
        other.argv.push(ArgTemplate::Literal("--disable_zk".into()));
        assert_ne!(a, invocation_key(&other, &[Some(Digest::of_bytes(b"x"))]));
    }

    #[test]
    fn canonical_document_is_stable() {
        let json = canonical_json(&plan("a", true), &[None]);
        assert_eq!(
            String::from_utf8(json).unwrap(),
            r#"{"key_version":1,"generation":"modern","command":"prove","argv":[{"literal":"prove"},{"literal":"-b"},{"input":0},{"literal":"-o"},"output_dir"],"inputs":[{"role":"bytecode","digest":null}]}"#
        );
    }
}
