//! Which plan an invocation is recorded and replayed under. Recorder and replayer
//! both call [`choose`], so they always agree on the key.
//!
//! - A command the router sends remote, with its inputs present: the router's
//!   [`Plan`] (roles, defaults and implicit inputs from the grammar tables).
//! - Anything else (native commands, failing calls, odd argv): a generic plan built
//!   from argv alone. Every argument that names an existing regular file is an input
//!   (role: the option before it, or `arg`); the value of `-o` / `--output_path` is
//!   the output location; `-c` / `--crs_path` and its value are left out (the CRS
//!   does not change bb's outputs, and its path is machine-specific).
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::config::{Env, Settings};
use crate::delegate::present_inputs;
use crate::grammar::{parse, Generation, Parsed};
use crate::route::{
    route, ArgTemplate, InputSource, Plan, PlanInput, PlanOutputDir, Route, PLAN_VERSION,
};

/// The plan an invocation is keyed by, and its inputs present on disk.
#[derive(Debug, Clone)]
pub struct Chosen {
    pub plan: Plan,
    /// (index in `plan.inputs`, local path) of each input that exists.
    pub present: Vec<(usize, PathBuf)>,
    /// The router would delegate it (so a backend may run it).
    pub delegable: bool,
}

const OUTPUT_FLAGS: &[&str] = &["-o", "--output_path", "--output-path"];
const CRS_FLAGS: &[&str] = &["-c", "--crs_path", "--crs-path"];

/// The plan for `args` (argv without the program name) run in `cwd`.
pub fn choose(settings: &Settings, env: &Env, args: &[OsString], cwd: &Path) -> Chosen {
    let invocation = parse(args, env, settings.grammar_hint());
    if let Route::Remote(plan) = route(&invocation, &settings.delegate, cwd) {
        if let Some(present) = present_inputs(&plan) {
            return Chosen {
                plan,
                present,
                delegable: true,
            };
        }
    }
    let command = match &invocation.parsed {
        Parsed::Command(c) => c.name().to_owned(),
        _ => invocation.args.first().cloned().unwrap_or_default(),
    };
    let plan = generic_plan(invocation.generation, command, &invocation.args, cwd);
    let present = plan
        .inputs
        .iter()
        .enumerate()
        .map(|(i, input)| (i, PathBuf::from(&input.path)))
        .collect();
    Chosen {
        plan,
        present,
        delegable: false,
    }
}

/// A plan from argv alone (see the module docs).
pub fn generic_plan(generation: Generation, command: String, args: &[String], cwd: &Path) -> Plan {
    let mut argv = Vec::new();
    let mut inputs = Vec::new();
    let mut output_dir = PlanOutputDir {
        given: String::new(),
        path: cwd.display().to_string(),
        source: InputSource::Default,
        created_by_bb: false,
    };
    let mut seen_output = false;
    let mut tokens = args.iter().peekable();
    let mut previous: Option<&str> = None;
    while let Some(token) = tokens.next() {
        if CRS_FLAGS.contains(&token.as_str()) {
            tokens.next();
            continue;
        }
        if token.starts_with("--crs_path=") {
            continue;
        }
        if OUTPUT_FLAGS.contains(&token.as_str()) && !seen_output {
            if let Some(value) = tokens.next() {
                seen_output = true;
                argv.push(ArgTemplate::Literal(token.clone()));
                let (dir, arg) = output_location(generation, value, cwd);
                argv.push(arg);
                output_dir = dir;
                previous = None;
                continue;
            }
        }
        let path = cwd.join(token);
        if !token.is_empty() && path.is_file() {
            let role = match previous {
                Some(flag) if flag.starts_with('-') => flag.trim_start_matches('-').to_owned(),
                _ => "arg".to_owned(),
            };
            argv.push(ArgTemplate::Input(inputs.len()));
            inputs.push(PlanInput {
                role,
                given: token.clone(),
                path: path.display().to_string(),
                source: InputSource::Flag,
                required: true,
                versions: None,
            });
        } else {
            argv.push(ArgTemplate::Literal(token.clone()));
        }
        previous = Some(token);
    }
    Plan {
        plan_version: PLAN_VERSION,
        generation,
        command,
        inputs,
        output_dir,
        argv,
        dropped: vec![],
        stdout_file: None,
    }
}

/// Where `-o value` writes, and its argv placeholder. A directory (modern bb creates
/// it) is the output directory; an existing file, or a legacy path that is not a
/// directory, is a single output file: its parent is the output directory and its
/// file name stays in the key.
fn output_location(
    generation: Generation,
    value: &str,
    cwd: &Path,
) -> (PlanOutputDir, ArgTemplate) {
    let path = cwd.join(value);
    let single_file = path.is_file() || (generation == Generation::Legacy && !path.is_dir());
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned());
    match (single_file, path.parent(), file_name) {
        (true, Some(parent), Some(name)) => (
            PlanOutputDir {
                given: value.to_owned(),
                path: parent.display().to_string(),
                source: InputSource::Flag,
                created_by_bb: false,
            },
            ArgTemplate::Literal(format!("<output_dir>/{name}")),
        ),
        _ => (
            PlanOutputDir {
                given: value.to_owned(),
                path: path.display().to_string(),
                source: InputSource::Flag,
                created_by_bb: generation == Generation::Modern,
            },
            ArgTemplate::OutputDir,
        ),
    }
}

/// Only this file name inside the output directory is an output (single-file `-o`).
pub fn single_output_name(plan: &Plan) -> Option<String> {
    plan.argv.iter().find_map(|a| match a {
        ArgTemplate::Literal(s) => s.strip_prefix("<output_dir>/").map(str::to_owned),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delegate::key::invocation_key;
    use crate::store::Digest;

    fn args(line: &str, dir: &Path) -> Vec<String> {
        line.split_whitespace()
            .map(|t| t.replace("$D", &dir.display().to_string()))
            .collect()
    }

    fn key_of(line: &str, dir: &Path) -> String {
        let plan = generic_plan(Generation::Modern, "verify".into(), &args(line, dir), dir);
        let digests: Vec<_> = plan
            .inputs
            .iter()
            .map(|i| Some(Digest::of_bytes(&std::fs::read(&i.path).unwrap())))
            .collect();
        invocation_key(&plan, &digests)
    }

    fn scratch(vk: &[u8]) -> tempfile::TempDir {
        let d = tempfile::Builder::new().prefix("tmp-").tempdir().unwrap();
        std::fs::write(d.path().join("vk"), vk).unwrap();
        std::fs::write(d.path().join("proof"), b"proof").unwrap();
        d
    }

    #[test]
    fn temp_dirs_crs_and_verbosity_do_not_change_the_key() {
        let (a, b) = (scratch(b"vk"), scratch(b"vk"));
        let line = "verify -k $D/vk -p $D/proof -c /home/x/.bb-crs";
        let ka = key_of(line, a.path());
        assert_eq!(ka, key_of("verify -k $D/vk -p $D/proof -v", b.path()));
        assert_eq!(ka, key_of("verify -k vk -p proof", b.path()));
    }

    #[test]
    fn contents_and_flags_change_the_key() {
        let (a, b) = (scratch(b"vk"), scratch(b"other vk"));
        let line = "verify -k $D/vk -p $D/proof";
        assert_ne!(key_of(line, a.path()), key_of(line, b.path()));
        assert_ne!(
            key_of(line, a.path()),
            key_of("verify -k $D/vk -p $D/proof --disable_zk", a.path())
        );
        assert_ne!(
            key_of(line, a.path()),
            key_of("verify -p $D/proof -k $D/vk", a.path())
        );
    }

    #[test]
    fn output_locations() {
        let a = scratch(b"vk");
        let plan = generic_plan(
            Generation::Modern,
            "write_vk".into(),
            &args("write_vk -b $D/proof -o $D/out", a.path()),
            a.path(),
        );
        assert_eq!(
            plan.output_dir.path,
            a.path().join("out").display().to_string()
        );
        assert!(plan.output_dir.created_by_bb);
        assert_eq!(plan.inputs[0].role, "b");
        let legacy = generic_plan(
            Generation::Legacy,
            "write_vk".into(),
            &args("write_vk -b $D/proof -o $D/vk_out", a.path()),
            a.path(),
        );
        assert_eq!(legacy.output_dir.path, a.path().display().to_string());
        assert_eq!(single_output_name(&legacy).as_deref(), Some("vk_out"));
    }
}
