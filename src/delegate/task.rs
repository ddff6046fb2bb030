//! A [`Job`] as a GA4GH TES task.
//!
//! Container layout (absolute paths inside the executor):
//! - `/bb-remote/in/<i>/<file name>`: plan input `i`, each in its own directory so two
//!   inputs with the same file name never clash, and the file name is kept so bb's
//!   suffix rules (`.gz`, `.json`, `-bytecode`) still apply;
//! - `/bb-remote/out`: the output directory, a TES DIRECTORY output uploaded to
//!   `<store>/runs/<key>/<attempt>/out`; implicit inputs (`prove_tube`) are placed
//!   inside it under their given names;
//! - `/bb-remote/work`: bb's working directory.
//!
//! Tags: [`TAG_KEY`] (the invocation key, used to find a live task again),
//! [`TAG_ATTEMPT`] (unique per shim invocation, to recognise our own task after a
//! lost create response), [`TAG_IMAGE`] and one `bb-remote.input.<i>` per input
//! (`<role>:<sha256>`). `-c` never appears: the plan drops it and the backend owns
//! its CRS.
use std::collections::BTreeMap;

use super::transport::Job;
use crate::route::{InputSource, PathMapping, RenderError};
use crate::store::Store;
use crate::tes::types::{Executor, FileType, Input, Output, Resources, Task};

pub const TAG_KEY: &str = "bb-remote.key";
pub const TAG_ATTEMPT: &str = "bb-remote.attempt";
pub const TAG_IMAGE: &str = "bb-remote.image";
/// The container directory bb writes its outputs into.
pub const OUT_DIR: &str = "/bb-remote/out";
const IN_DIR: &str = "/bb-remote/in";
const WORK_DIR: &str = "/bb-remote/work";

/// The container path of plan input `index` whose given path is `given`.
fn input_path(index: usize, given: &str, source: InputSource) -> String {
    let name = given
        .rsplit('/')
        .next()
        .filter(|n| !n.is_empty())
        .unwrap_or("input");
    match source {
        InputSource::Implicit => format!("{OUT_DIR}/{name}"),
        _ => format!("{IN_DIR}/{index}/{name}"),
    }
}

/// Build the task. `attempt` is unique to this shim invocation.
pub fn build_task(
    job: &Job<'_>,
    store: &Store,
    image: &str,
    attempt: &str,
    resources: Resources,
) -> Result<Task, RenderError> {
    let plan = job.plan;
    let mut mapping = PathMapping {
        output_dir: OUT_DIR.to_owned(),
        ..PathMapping::default()
    };
    let mut inputs = Vec::new();
    let mut tags = BTreeMap::from([
        (TAG_KEY.to_owned(), job.key.clone()),
        (TAG_ATTEMPT.to_owned(), attempt.to_owned()),
        (TAG_IMAGE.to_owned(), image.to_owned()),
    ]);
    for input in &job.inputs {
        let planned = &plan.inputs[input.index];
        let path = input_path(input.index, &planned.given, planned.source);
        mapping.inputs.insert(input.index, path.clone());
        inputs.push(Input {
            name: Some(planned.role.clone()),
            url: Some(store.cas_url(&input.digest).to_string()),
            path,
            file_type: FileType::File,
            ..Input::default()
        });
        tags.insert(
            format!("bb-remote.input.{}", input.index),
            format!("{}:{}", planned.role, input.digest),
        );
    }
    let mut command = vec!["bb".to_owned()];
    command.extend(plan.render_argv(&mapping)?);
    let out_url = store.url_for_relative(&format!("runs/{}/{attempt}/out", job.key));
    Ok(Task {
        name: Some(format!("bb {}", plan.command)),
        description: Some(format!("bb-remote invocation {}", job.key)),
        inputs,
        outputs: vec![Output {
            name: Some("output_dir".into()),
            url: out_url.to_string(),
            path: OUT_DIR.to_owned(),
            file_type: FileType::Directory,
            ..Output::default()
        }],
        resources: Some(resources),
        executors: vec![Executor {
            image: image.to_owned(),
            command,
            workdir: Some(WORK_DIR.to_owned()),
            stdout: plan
                .stdout_file
                .as_ref()
                .map(|name| format!("{OUT_DIR}/{name}")),
            ..Executor::default()
        }],
        tags,
        ..Task::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Env;
    use crate::delegate::transport::JobInput;
    use crate::grammar::Generation;
    use crate::route::{ArgTemplate, Plan, PlanInput, PlanOutputDir, PLAN_VERSION};
    use crate::store::Digest;

    fn input(role: &str, given: &str, source: InputSource) -> PlanInput {
        PlanInput {
            role: role.into(),
            given: given.into(),
            path: format!("/home/me/{given}"),
            source,
            required: true,
            versions: None,
        }
    }

    #[test]
    fn argv_uses_sandbox_paths_with_the_file_names_kept() {
        let plan = Plan {
            plan_version: PLAN_VERSION,
            generation: Generation::Legacy,
            command: "prove_tube".into(),
            inputs: vec![
                input("bytecode", "a/x-bytecode", InputSource::Flag),
                input("witness", "b/x-bytecode", InputSource::Flag),
                input(
                    "tube_client_ivc_proof",
                    "client_ivc_proof",
                    InputSource::Implicit,
                ),
            ],
            output_dir: PlanOutputDir {
                given: "o".into(),
                path: "/home/me/o".into(),
                source: InputSource::Flag,
                created_by_bb: false,
            },
            argv: vec![
                ArgTemplate::Literal("prove_tube".into()),
                ArgTemplate::Literal("-b".into()),
                ArgTemplate::Input(0),
                ArgTemplate::Literal("-w".into()),
                ArgTemplate::Input(1),
                ArgTemplate::Literal("-o".into()),
                ArgTemplate::OutputDir,
            ],
            dropped: vec!["-c".into(), "/crs".into()],
            stdout_file: None,
        };
        let d = Digest::of_bytes(b"x");
        let job = Job {
            plan: &plan,
            key: "k".repeat(64),
            inputs: (0..3)
                .map(|index| JobInput {
                    index,
                    local: "/l".into(),
                    digest: d,
                    size: 1,
                })
                .collect(),
        };
        let store = Store::from_url("file:///srv/store", &Env::default()).unwrap();
        let task = build_task(&job, &store, "bb", "att", Resources::default()).unwrap();
        assert_eq!(
            task.executors[0].command,
            [
                "bb",
                "prove_tube",
                "-b",
                "/bb-remote/in/0/x-bytecode",
                "-w",
                "/bb-remote/in/1/x-bytecode",
                "-o",
                "/bb-remote/out"
            ]
        );
        assert_eq!(task.inputs[2].path, "/bb-remote/out/client_ivc_proof");
        assert_eq!(
            task.inputs[0].url.as_deref(),
            Some(store.cas_url(&d).as_str())
        );
        assert_eq!(task.tags[TAG_KEY], job.key);
        assert_eq!(task.tags["bb-remote.input.1"], format!("witness:{d}"));
        assert_eq!(
            task.outputs[0].url,
            format!("file:///srv/store/runs/{}/att/out", job.key)
        );
        assert!(!task.executors[0].command.iter().any(|a| a == "-c"));
    }
}
