//! From a parsed command to a [`Plan`], or the reason no faithful plan exists.
//!
//! A plan is built only for commands that write into an output directory; every
//! file argument becomes a placeholder, inputs bb would take from its defaults are
//! appended explicitly (the remote side has another cwd and environment), and the
//! CRS directory is dropped.

use super::plan::{ArgTemplate, InputSource, Plan, PlanInput, PlanOutputDir, PLAN_VERSION};
use super::verdict::{NativeCode as C, NativeReason};
use crate::grammar::{
    Effective, Generation, Ignored, Invocation, Item, OutputKind, ParsedCommand, Reads, Use,
};
use std::path::{Path, PathBuf};

/// The only scheme a plan is built for (`prove` / `write_vk`).
const DELEGATED_SCHEME: &str = "ultra_honk";

pub(super) fn build_plan(
    inv: &Invocation,
    cmd: &ParsedCommand,
    cwd: &str,
) -> Result<Plan, NativeReason> {
    let output = check_plannable(cmd)?;
    let output_dir = plan_output(cmd, output, cwd)?;
    let inputs = plan_inputs(cmd, cwd, &output_dir.path)?;
    let (argv, dropped) = Template::new(inv, cmd, &inputs, &output_dir).build();
    Ok(Plan {
        plan_version: PLAN_VERSION,
        generation: inv.generation,
        command: cmd.name().to_owned(),
        inputs: inputs.into_iter().map(|(_, input)| input).collect(),
        output_dir,
        argv,
        dropped,
        stdout_file: None,
        assemble: None,
    })
}

/// Everything that sends a delegated command native regardless of its files.
fn check_plannable(cmd: &ParsedCommand) -> Result<&'static Reads, NativeReason> {
    let name = cmd.name();
    let no_plan =
        |why: &str| NativeReason::new(C::NoPlan, format!("`{name}` {why}; no remote plan for it"));
    if cmd.spec.opaque {
        return Err(no_plan("takes arguments this crate does not model"));
    }
    let output = match cmd.spec.output() {
        Some((reads, OutputKind::Dir { .. })) => reads,
        Some((_, OutputKind::File)) => return Err(no_plan("writes a single file or stdout")),
        None => return Err(no_plan("writes no output files")),
    };
    if let Some(why) = &cmd.ambiguity {
        return Err(NativeReason::new(C::AmbiguousArgv, why.clone()));
    }
    if let Some(token) = cmd.unknown_tokens().next() {
        let msg = format!("`{token}` is not an option of `{name}` (bb ignores it, but it may mean something here)");
        return Err(NativeReason::new(C::UnknownArgument, msg));
    }
    if let Some(Item::Value { spelled, .. }) = cmd
        .items
        .iter()
        .find(|i| matches!(i, Item::Value { reads, .. } if reads.usage == Use::ExtraOutput))
    {
        return Err(NativeReason::new(
            C::ExtraOutput,
            format!("`{spelled}` writes a file outside the output directory"),
        ));
    }
    if let Some(reads) = cmd.spec.reads_id("scheme") {
        let scheme = cmd.effective(reads).value().unwrap_or(DELEGATED_SCHEME);
        if scheme != DELEGATED_SCHEME {
            return Err(NativeReason::new(
                C::SchemeNotDelegated,
                format!("scheme `{scheme}` is not delegated"),
            ));
        }
    }
    Ok(output)
}

/// bb opens relative paths from its cwd; join without touching the filesystem.
/// `components()` drops `.` segments; `..` is kept (it may cross a symlink).
fn resolve(cwd: &str, given: &str) -> String {
    Path::new(cwd)
        .join(given)
        .components()
        .collect::<PathBuf>()
        .to_string_lossy()
        .into_owned()
}

fn source_and_value<'a>(e: Effective<'a>) -> Option<(InputSource, &'a str)> {
    match e {
        Effective::Argv(v) => Some((InputSource::Flag, v)),
        Effective::Env { value, .. } => Some((InputSource::Env, value)),
        Effective::Default(v) => Some((InputSource::Default, v)),
        Effective::Absent => None,
    }
}

fn plan_output(
    cmd: &ParsedCommand,
    output: &'static Reads,
    cwd: &str,
) -> Result<PlanOutputDir, NativeReason> {
    let (source, given) = source_and_value(cmd.effective(output))
        .ok_or_else(|| NativeReason::new(C::NoPlan, "the output directory has no value"))?;
    match given {
        "-" => return Err(NativeReason::new(C::StdoutOutput, "`-o -` asks for stdout")),
        "" => {
            return Err(NativeReason::new(
                C::EmptyPath,
                "the output directory is an empty string",
            ))
        }
        _ => {}
    }
    let created_by_bb = matches!(
        output.usage,
        Use::Output(OutputKind::Dir {
            created_by_bb: true
        })
    );
    Ok(PlanOutputDir {
        given: given.to_owned(),
        path: resolve(cwd, given),
        source,
        created_by_bb,
    })
}

/// The inputs, each with the option it came from (`None` for implicit files).
fn plan_inputs(
    cmd: &ParsedCommand,
    cwd: &str,
    output_dir: &str,
) -> Result<Vec<(Option<&'static Reads>, PlanInput)>, NativeReason> {
    let mut inputs = Vec::new();
    for reads in cmd.spec.reads {
        let Use::Input { role, unless_flag } = reads.usage else {
            continue;
        };
        let Some((source, given)) = source_and_value(cmd.effective(reads)) else {
            continue;
        };
        let skipped_by_flag = unless_flag.is_some_and(|f| cmd.flag(f));
        if skipped_by_flag && source != InputSource::Flag {
            continue; // bb does not read it, and nobody named it
        }
        if given.is_empty() {
            return Err(NativeReason::new(
                C::EmptyPath,
                format!("the {role} path is an empty string"),
            ));
        }
        let input = PlanInput {
            role: role.to_owned(),
            given: given.to_owned(),
            path: resolve(cwd, given),
            source,
            required: reads.versions.is_none() && !skipped_by_flag,
            versions: reads.versions.map(str::to_owned),
        };
        inputs.push((Some(reads), input));
    }
    for implicit in cmd.spec.implicit_inputs {
        let input = PlanInput {
            role: implicit.role.to_owned(),
            given: implicit.file.to_owned(),
            path: resolve(output_dir, implicit.file),
            source: InputSource::Implicit,
            required: implicit.versions.is_none(),
            versions: implicit.versions.map(str::to_owned),
        };
        inputs.push((None, input));
    }
    Ok(inputs)
}

/// Builds the argv template from the parsed items.
struct Template<'a> {
    inv: &'a Invocation,
    cmd: &'a ParsedCommand,
    inputs: &'a [(Option<&'static Reads>, PlanInput)],
    output_dir: &'a PlanOutputDir,
    argv: Vec<ArgTemplate>,
    dropped: Vec<String>,
}

fn lit(s: impl Into<String>) -> ArgTemplate {
    ArgTemplate::Literal(s.into())
}

impl<'a> Template<'a> {
    fn new(
        inv: &'a Invocation,
        cmd: &'a ParsedCommand,
        inputs: &'a [(Option<&'static Reads>, PlanInput)],
        output_dir: &'a PlanOutputDir,
    ) -> Self {
        Self {
            inv,
            cmd,
            inputs,
            output_dir,
            argv: Vec::new(),
            dropped: Vec::new(),
        }
    }

    fn input_index(&self, reads: &Reads) -> Option<usize> {
        self.inputs
            .iter()
            .position(|(r, _)| r.is_some_and(|r| r.option == reads.option))
    }

    /// The placeholder for an option's file value, if it has one.
    fn placeholder(&self, reads: &Reads) -> Option<ArgTemplate> {
        match reads.usage {
            Use::Output(_) => Some(ArgTemplate::OutputDir),
            Use::Input { .. } => self.input_index(reads).map(ArgTemplate::Input),
            _ => None,
        }
    }

    fn build(mut self) -> (Vec<ArgTemplate>, Vec<String>) {
        for item in &self.cmd.items {
            self.item(item);
        }
        self.append_implicit_values();
        (self.argv, self.dropped)
    }

    fn item(&mut self, item: &Item) {
        match item {
            Item::Command { index } => self.argv.push(lit(&self.inv.args[*index])),
            Item::Flag { spelled, .. } => self.argv.push(lit(spelled)),
            Item::Empty { .. } => self.argv.push(lit("")),
            Item::Ignored {
                token,
                why: Ignored::MissingValue,
                ..
            } => self.dropped.push(token.clone()),
            Item::Ignored {
                token,
                why: Ignored::Unknown,
                ..
            } => self.argv.push(lit(token)),
            Item::Value {
                reads,
                spelled,
                value,
                joined,
                effective,
                ..
            } => {
                if reads.usage == Use::Crs {
                    self.dropped.extend(if *joined {
                        vec![format!("{spelled}={value}")]
                    } else {
                        vec![spelled.clone(), value.clone()]
                    });
                    return;
                }
                let placeholder = if *effective {
                    self.placeholder(reads)
                } else {
                    None
                };
                match (placeholder, joined) {
                    (Some(p), _) => self.argv.extend([lit(spelled), p]),
                    // CLI11 reads `--long=value` the same as `-svalue`; `=` keeps a
                    // value starting with `-` attached to its option.
                    (None, true) => self
                        .argv
                        .push(lit(format!("{}={value}", reads.option.canonical_name()))),
                    (None, false) => self.argv.extend([lit(spelled), lit(value)]),
                }
            }
        }
    }

    /// Values bb would have taken from its env or defaults, written out explicitly.
    fn append_implicit_values(&mut self) {
        if self.inv.generation == Generation::Modern {
            for env in &self.cmd.from_env {
                if env.reads.usage == Use::Setting {
                    self.argv.push(lit(format!(
                        "{}={}",
                        env.reads.option.canonical_name(),
                        env.value
                    )));
                }
            }
        }
        for (index, (reads, input)) in self.inputs.iter().enumerate() {
            if let Some(reads) = reads.filter(|_| input.source != InputSource::Flag) {
                self.argv.extend([
                    lit(reads.option.canonical_name()),
                    ArgTemplate::Input(index),
                ]);
            }
        }
        if self.output_dir.source != InputSource::Flag {
            if let Some((reads, _)) = self.cmd.spec.output() {
                self.argv
                    .extend([lit(reads.option.canonical_name()), ArgTemplate::OutputDir]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_is_a_pure_join() {
        assert_eq!(resolve("/w", "./target/vk"), "/w/target/vk");
        assert_eq!(resolve("/w", "/abs/x"), "/abs/x");
        assert_eq!(resolve("/w/a", "../b"), "/w/a/../b");
        assert_eq!(resolve("/w", "tmp-1/./proof"), "/w/tmp-1/proof");
    }
}
