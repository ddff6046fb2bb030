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
//!   paths never enter the key) **minus the verbosity flags** `-v`, `--verbose`,
//!   `--verbose_logging`, `-d`, `--debug`, `--debug_logging`: they change only what bb
//!   logs on stderr, never its files or exit code.
//! - `inputs` lists every plan input in plan order with its role and the SHA-256 of
//!   its content, or `null` when the file is absent (an optional `prove_tube`
//!   candidate): which candidates exist changes what bb reads.
//! - Not in the key: local paths (input paths, the output directory), `-c` (dropped
//!   by the plan), the executor image (tagged separately), the environment.
use crate::grammar::Generation;
use crate::route::{ArgTemplate, Plan};
use crate::store::Digest;
use serde::Serialize;

/// Version of the canonical document; bump when its content changes meaning.
pub(crate) const KEY_VERSION: u32 = 1;

/// Flags that only change bb's logging, left out of the key.
pub(crate) const VERBOSITY_FLAGS: &[&str] = &[
    "-v",
    "--verbose",
    "--verbose_logging",
    "-d",
    "--debug",
    "--debug_logging",
];

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
    let argv = plan
        .argv
        .iter()
        .filter(
            |arg| !matches!(arg, ArgTemplate::Literal(s) if VERBOSITY_FLAGS.contains(&s.as_str())),
        )
        .collect();
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
