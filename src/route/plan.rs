//! The remote plan: everything the delegation and the worker need to run a command
//! elsewhere, as a versioned, deterministic JSON document.
//!
//! Compatibility rule: [`PLAN_VERSION`] changes whenever a field changes meaning or
//! is removed; readers refuse versions they do not know. Field order is the struct
//! order below, so serialising the same plan twice gives the same bytes (the
//! delegation hashes it into the invocation key).

use crate::grammar::Generation;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of the plan format.
pub const PLAN_VERSION: u32 = 1;

/// How to run one bb command remotely.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Always [`PLAN_VERSION`] when written by this build.
    pub(crate) plan_version: u32,
    pub generation: Generation,
    /// bb's command or subcommand, e.g. `prove_ultra_honk_output_all` or `prove`.
    pub command: String,
    /// Every file bb may read, in table order, then implicit files. Placeholders in
    /// [`Plan::argv`] refer to these by index.
    pub inputs: Vec<PlanInput>,
    pub output_dir: PlanOutputDir,
    /// bb's argv (without the program name) with file arguments as placeholders.
    /// Inputs bb would take from its defaults are appended explicitly, so the argv
    /// does not depend on the working directory or environment it runs in.
    pub argv: Vec<ArgTemplate>,
    /// Tokens removed for the remote side: the CRS directory (`-c <dir>`,
    /// `--crs_path=<dir>`: the backend owns its CRS) and value options left without
    /// a value at the end of a legacy argv (bb ignores them).
    pub dropped: Vec<String>,
    /// A file name inside the output directory that receives bb's stdout, for commands
    /// that answer on stdout (`msgpack run`); `None`: stdout is only shown to the caller.
    /// Left out of the JSON when `None`, so older plans (and their keys) are unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) stdout_file: Option<String>,
    /// An absolute container path the task writes before bb runs: every input, in
    /// plan order, concatenated (a msgpack request sent as content-addressed parts,
    /// see `msgpack/parts.rs`). The argv names that path as a literal. Left out of the
    /// JSON when `None`, like `stdout_file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) assemble: Option<String>,
}

/// One file bb reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanInput {
    /// What the file is: `bytecode`, `witness`, `vk`, `avm_inputs`,
    /// `tube_client_ivc_proof`, ... (the roles of the grammar tables).
    pub role: String,
    /// The path as bb got it (for implicit inputs: the file name inside `-o`).
    pub given: String,
    /// `given` resolved against bb's working directory: a pure join, no I/O, no
    /// symlink resolution (bb itself opens relative paths from its cwd).
    pub path: String,
    pub source: InputSource,
    /// `true`: every version of the command reads it, so bb fails without it.
    /// `false`: only some versions read it (see `versions`); upload it if it exists.
    pub required: bool,
    /// The releases that read it, when not all do (e.g. `"0.55.0-0.62"`).
    pub versions: Option<String>,
}

/// Where an input's path came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputSource {
    /// An option on argv.
    Flag,
    /// A CLI11 environment fallback.
    Env,
    /// bb's default for an absent option.
    Default,
    /// A fixed file name inside the output directory (`prove_tube`). Optional ones
    /// are candidates for different releases: upload whichever exist at run time.
    Implicit,
}

/// Where bb writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanOutputDir {
    pub(crate) given: String,
    /// Resolved against the working directory, like [`PlanInput::path`].
    pub path: String,
    /// `Flag` or `Default`.
    pub source: InputSource,
    /// Modern `prove` / `write_vk` create it; legacy bb requires it to exist.
    pub created_by_bb: bool,
}

/// One argv element of the template. JSON: `{"literal": "-v"}`, `{"input": 2}`,
/// `"output_dir"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArgTemplate {
    Literal(String),
    /// The path of `inputs[n]`.
    Input(usize),
    /// The path of the output directory.
    OutputDir,
}

/// Paths to substitute into the template (e.g. sandbox paths on a worker).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathMapping {
    pub(crate) inputs: BTreeMap<usize, String>,
    pub(crate) output_dir: String,
}

/// A template that cannot be rendered with the mapping given.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RenderError {
    #[error("no path mapped for input {index} ({role}) of the plan")]
    MissingInput { index: usize, role: String },
    #[error("the argv template refers to input {index}, but the plan has {count} inputs")]
    NoSuchInput { index: usize, count: usize },
}

impl Plan {
    /// The argv for bb (without the program name), with placeholders replaced.
    pub fn render_argv(&self, mapping: &PathMapping) -> Result<Vec<String>, RenderError> {
        self.argv
            .iter()
            .map(|arg| match arg {
                ArgTemplate::Literal(s) => Ok(s.clone()),
                ArgTemplate::OutputDir => Ok(mapping.output_dir.clone()),
                ArgTemplate::Input(index) => {
                    let input = self.inputs.get(*index).ok_or(RenderError::NoSuchInput {
                        index: *index,
                        count: self.inputs.len(),
                    })?;
                    mapping
                        .inputs
                        .get(index)
                        .cloned()
                        .ok_or_else(|| RenderError::MissingInput {
                            index: *index,
                            role: input.role.clone(),
                        })
                }
            })
            .collect()
    }

    /// The mapping back to the local, resolved paths: rendering with it gives an argv
    /// that the local bb would read exactly as the original one.
    pub fn local_mapping(&self) -> PathMapping {
        PathMapping {
            inputs: self
                .inputs
                .iter()
                .enumerate()
                .map(|(i, input)| (i, input.path.clone()))
                .collect(),
            output_dir: self.output_dir.path.clone(),
        }
    }

    /// Indices of the inputs that appear in the argv (the others are implicit files
    /// inside the output directory, placed there under their `given` name).
    pub fn inputs_on_argv(&self) -> impl Iterator<Item = usize> + '_ {
        self.argv.iter().filter_map(|a| match a {
            ArgTemplate::Input(i) => Some(*i),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Plan {
        Plan {
            plan_version: PLAN_VERSION,
            generation: Generation::Legacy,
            command: "prove_tube".into(),
            inputs: vec![PlanInput {
                role: "bytecode".into(),
                given: "b".into(),
                path: "/w/b".into(),
                source: InputSource::Flag,
                required: true,
                versions: None,
            }],
            output_dir: PlanOutputDir {
                given: "o".into(),
                path: "/w/o".into(),
                source: InputSource::Flag,
                created_by_bb: false,
            },
            argv: vec![
                ArgTemplate::Literal("cmd".into()),
                ArgTemplate::Literal("-b".into()),
                ArgTemplate::Input(0),
                ArgTemplate::Literal("-o".into()),
                ArgTemplate::OutputDir,
            ],
            dropped: vec![],
            stdout_file: None,
            assemble: None,
        }
    }

    #[test]
    fn renders_with_a_mapping() {
        let plan = sample();
        let mapping = PathMapping {
            inputs: [(0, "/sb/in0".to_owned())].into(),
            output_dir: "/sb/out".into(),
        };
        assert_eq!(
            plan.render_argv(&mapping).unwrap(),
            ["cmd", "-b", "/sb/in0", "-o", "/sb/out"]
        );
        assert_eq!(
            plan.render_argv(&plan.local_mapping()).unwrap(),
            ["cmd", "-b", "/w/b", "-o", "/w/o"]
        );
    }

    #[test]
    fn a_missing_mapping_is_an_error_naming_the_role() {
        let err = sample().render_argv(&PathMapping::default()).unwrap_err();
        assert_eq!(
            err,
            RenderError::MissingInput {
                index: 0,
                role: "bytecode".into()
            }
        );
        assert!(err.to_string().contains("bytecode"));
    }

    #[test]
    fn json_is_stable_and_round_trips() {
        let plan = sample();
        let json = serde_json::to_string(&plan).unwrap();
        assert!(json.starts_with(
            r#"{"plan_version":1,"generation":"legacy","command":"prove_tube","inputs":"#
        ));
        assert!(json.contains(
            r#"[{"literal":"cmd"},{"literal":"-b"},{"input":0},{"literal":"-o"},"output_dir"]"#
        ));
        assert_eq!(serde_json::from_str::<Plan>(&json).unwrap(), plan);
        assert_eq!(serde_json::to_string(&plan).unwrap(), json);
    }
}
