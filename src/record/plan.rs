//! Which plan an invocation is recorded and replayed under. Recorder and replayer
//! both call [`choose`], so they always agree on the key.
//!
//! - A command the router sends remote, with its inputs present: the router's
//!   [`Plan`] (roles, defaults and implicit inputs from the grammar tables).
//! - Anything else (native commands, failing calls, odd argv): a generic plan built
//!   from argv alone. Every argument that names an existing regular file is an input
//!   (role: the option before it, or `arg`); the value of the command's output option
//!   is the output location; the CRS option and its value are left out (the CRS does
//!   not change bb's outputs, and its path is machine-specific). Which options those
//!   are comes from the grammar tables (`Use::Output`, `Use::Crs`), never from a list
//!   here; an argv bb would reject keeps every token.
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::config::{Env, Settings};
use crate::delegate::{prepare, Prepared};
use crate::grammar::{parse, Generation, Invocation, Item, Parsed, Use};
use crate::route::{ArgTemplate, InputSource, Plan, PlanInput, PlanOutputDir, PLAN_VERSION};

/// The plan an invocation is keyed by, and its inputs present on disk.
#[derive(Debug, Clone)]
pub(crate) struct Chosen {
    pub(crate) prepared: Prepared,
    /// The router would delegate it (so a backend may run it).
    pub(crate) delegable: bool,
}

impl Chosen {
    /// A delegable invocation's own plan and inputs (the msgpack requests' case).
    pub(crate) fn delegable(plan: &Plan, present: &[(usize, PathBuf)]) -> Self {
        Self {
            prepared: Prepared {
                plan: plan.clone(),
                present: present.to_vec(),
            },
            delegable: true,
        }
    }
}

/// The plan for `args` (argv without the program name) run in `cwd`.
pub(crate) fn choose(settings: &Settings, env: &Env, args: &[OsString], cwd: &Path) -> Chosen {
    if let Some(prepared) = prepare(settings, env, args, cwd) {
        return Chosen {
            prepared,
            delegable: true,
        };
    }
    let invocation = parse(args, env, settings.grammar_hint());
    let plan = generic_plan(&invocation, cwd);
    let present = plan
        .inputs
        .iter()
        .enumerate()
        .map(|(i, input)| (i, PathBuf::from(&input.path)))
        .collect();
    Chosen {
        prepared: Prepared { plan, present },
        delegable: false,
    }
}

/// What the grammar says about one argv token, for the generic plan.
enum Token {
    /// The CRS option or its value: left out.
    Crs,
    /// The output option (as spelled) and its value.
    Output { spelled: String, value: String },
    /// The value of the output option, already handled with it.
    OutputValue,
}

/// The tokens of `invocation` the generic plan treats specially, by argv index. Only
/// the grammar tables know which option is the CRS or the output; an argv bb would
/// reject has none.
fn special_tokens(invocation: &Invocation) -> BTreeMap<usize, Token> {
    let mut special = BTreeMap::new();
    let Parsed::Command(command) = &invocation.parsed else {
        return special;
    };
    let mut output_seen = false;
    for item in &command.items {
        let Item::Value {
            reads,
            index,
            spelled,
            value,
            joined,
            ..
        } = item
        else {
            continue;
        };
        match reads.usage {
            Use::Crs => {
                special.insert(*index, Token::Crs);
                if !joined {
                    special.insert(index + 1, Token::Crs);
                }
            }
            Use::Output(_) if !output_seen => {
                output_seen = true;
                let (spelled, value) = (spelled.clone(), value.clone());
                special.insert(*index, Token::Output { spelled, value });
                if !joined {
                    special.insert(index + 1, Token::OutputValue);
                }
            }
            _ => {}
        }
    }
    special
}

/// A plan from argv alone (see the module docs).
pub(crate) fn generic_plan(invocation: &Invocation, cwd: &Path) -> Plan {
    let generation = invocation.generation;
    let args = &invocation.args;
    let command = match &invocation.parsed {
        Parsed::Command(c) => c.name().to_owned(),
        _ => args.first().cloned().unwrap_or_default(),
    };
    let special = special_tokens(invocation);
    let mut argv = Vec::new();
    let mut inputs = Vec::new();
    let mut output_dir = PlanOutputDir {
        given: String::new(),
        path: cwd.display().to_string(),
        source: InputSource::Default,
        created_by_bb: false,
    };
    let mut previous: Option<&str> = None;
    for (index, token) in args.iter().enumerate() {
        match special.get(&index) {
            Some(Token::Crs | Token::OutputValue) => continue,
            Some(Token::Output { spelled, value }) => {
                argv.push(ArgTemplate::Literal(spelled.clone()));
                let (dir, arg) = output_location(generation, value, cwd);
                argv.push(arg);
                output_dir = dir;
                previous = None;
                continue;
            }
            None => {}
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
        assemble: None,
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
pub(crate) fn single_output_name(plan: &Plan) -> Option<String> {
    plan.argv.iter().find_map(|a| match a {
        ArgTemplate::Literal(s) => s.strip_prefix("<output_dir>/").map(str::to_owned),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delegate::key::invocation_key;
    use crate::grammar::GrammarHint;
    use crate::store::Digest;

    fn invocation(line: &str, dir: &Path, generation: Generation) -> Invocation {
        let args: Vec<OsString> = line
            .split_whitespace()
            .map(|t| t.replace("$D", &dir.display().to_string()).into())
            .collect();
        parse(&args, &Env::default(), GrammarHint::Force(generation))
    }

    fn key_of(line: &str, dir: &Path) -> String {
        let plan = generic_plan(&invocation(line, dir, Generation::Modern), dir);
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
            &invocation(
                "write_vk -b $D/proof -o $D/out",
                a.path(),
                Generation::Modern,
            ),
            a.path(),
        );
        assert_eq!(
            plan.output_dir.path,
            a.path().join("out").display().to_string()
        );
        assert!(plan.output_dir.created_by_bb);
        assert_eq!(plan.inputs[0].role, "b");
        let legacy = generic_plan(
            &invocation(
                "write_vk -b $D/proof -o $D/vk_out",
                a.path(),
                Generation::Legacy,
            ),
            a.path(),
        );
        assert_eq!(legacy.output_dir.path, a.path().display().to_string());
        assert_eq!(single_output_name(&legacy).as_deref(), Some("vk_out"));
    }
}
