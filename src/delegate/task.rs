//! A [`Job`] as a GA4GH TES task.
//!
//! Container paths: on generic engines the caller's own where [`caller_paths_usable`]
//! allows (so bb's messages name the caller's files), else the fixed layout:
//! - `/bb-remote/in/<i>/<file name>`: plan input `i`, each in its own directory so two
//!   inputs with the same file name never clash, and the file name is kept so bb's
//!   suffix rules (`.gz`, `.json`, `-bytecode`) still apply;
//! - `/bb-remote/out`: the output directory; implicit inputs (`prove_tube`) are
//!   placed inside it under their given names;
//! - `/bb-remote/work`: bb's working directory.
//!
//! Either way the output directory is a TES DIRECTORY output uploaded to
//! `<store>/runs/<key>/<attempt>/out`, and [`META_DIR`] a second one (to `.../meta`)
//! holding bb's whole stdout and stderr (TES `Executor.stdout`/`stderr`), and, on
//! engines other than the reference worker, the exit code and a SHA-256 manifest of
//! the outputs written by the task itself (see `task_result.rs`).
//!
//! Tags: [`TAG_KEY`] (the invocation key, used to find a live task again),
//! [`TAG_ATTEMPT`] (unique per shim invocation, to recognise our own task after a
//! lost create response), [`TAG_IMAGE`] and one `bb-remote.input.<i>` per input
//! (`<role>:<sha256>`); for the reference worker also `tes::inline::TAG`, which lets it
//! return small outputs in the task log. The caller's `-c` never appears: the plan drops it; the
//! executor's own CRS directory is passed when configured.
use std::collections::BTreeMap;
use std::path::Path;

use super::remote_side::caller_paths_usable;
use super::transport::Job;
use crate::config::RemoteSide;
use crate::grammar::Generation;
use crate::route::{InputSource, PathMapping, RenderError};
use crate::store::Store;
use crate::tes::inline;
use crate::tes::types::{Executor, FileType, Input, Output, Resources, Task};

pub(crate) const TAG_KEY: &str = "bb-remote.key";
pub(crate) const TAG_ATTEMPT: &str = "bb-remote.attempt";
pub(crate) const TAG_IMAGE: &str = "bb-remote.image";
/// The container directory bb writes its outputs into (fixed layout).
pub(crate) const OUT_DIR: &str = "/bb-remote/out";
/// The task's own files: `stdout`, `stderr`, and on generic engines `exit_code`,
/// `sha256sums` (see `task_result.rs`).
pub(crate) const META_DIR: &str = "/bb-remote/meta";
const IN_DIR: &str = "/bb-remote/in";
const WORK_DIR: &str = "/bb-remote/work";
/// `command[0]` of the executor that assembles a request from its parts.
pub(crate) const CAT: &str = "cat";

/// Which kind of TES engine runs the task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Engine {
    /// `bb-remote worker`: runs bb itself (replacing `command[0]`, adding its CRS) and
    /// records each output's SHA-256 in the task log metadata.
    ReferenceWorker,
    /// Any other TES engine (Funnel, TESK, ...): the executor is a POSIX shell in the
    /// image that runs bb, then writes the exit code and a manifest of the outputs.
    Generic,
}

/// Runs bb (`"$@"` after the output directory, the meta directory and the file for
/// bb's stdout, empty when the engine keeps it), then records its exit code and
/// the SHA-256 of every file in the output directory, and exits 0 so that every
/// engine uploads the outputs and the streams even when bb failed. Needs `sh`,
/// `find` and `sha256sum` in the image (the stock barretenberg image has them).
/// bb's stderr holds only what bb wrote: the shell's own messages (`Aborted` when bb
/// dies of a signal, say) go to `wrapper.err` beside it. The subshell matters: a
/// redirection on a plain command is still in force while the shell waits for it,
/// so the shell would print its message into bb's stderr.
/// An answer on stdout that is an output (`msgpack run`) is written by bb itself,
/// not by the engine: an engine copies the container's stdout into its file from a
/// pipe (Funnel: a goroutine) and may not have written it yet when the manifest is
/// made (seen: the digest of an empty file, under load).
const WRAPPER: &str = r#"out=$1 meta=$2 stdout=$3; shift 3
exec 3>&2 2>"$meta/wrapper.err"
if [ -n "$stdout" ]; then (exec "$@" >"$stdout" 2>&3 3>&-); else (exec "$@" 2>&3 3>&-); fi
rc=$?
exec 3>&-
if [ -d "$out" ]; then
  (cd "$out" && find . -type f -exec sha256sum {} +) >"$meta/sha256sums.part" 2>"$meta/manifest.err" &&
    mv "$meta/sha256sums.part" "$meta/sha256sums"
else
  : >"$meta/sha256sums"
fi
echo "$rc" >"$meta/exit_code"
exit 0"#;

/// Everything besides the job that shapes a task.
pub(crate) struct TaskSpec<'a> {
    pub(crate) store: &'a Store,
    pub(crate) image: &'a str,
    /// Unique to this shim invocation.
    pub(crate) attempt: &'a str,
    pub(crate) resources: Resources,
    pub(crate) side: &'a RemoteSide,
    /// `executor.env` (already filtered by the allowlist).
    pub(crate) env: BTreeMap<String, String>,
    /// The caller's working directory, when its paths may be used (see module docs).
    pub(crate) cwd: Option<&'a Path>,
    pub(crate) engine: Engine,
}

/// The container paths of a task.
struct Layout {
    mapping: PathMapping,
    workdir: String,
    out_dir: String,
    input_paths: BTreeMap<usize, String>,
}

impl Layout {
    fn of(job: &Job<'_>, spec: &TaskSpec<'_>) -> Layout {
        let plan = job.plan;
        // The reference worker maps every path into its own sandbox, so bb there never
        // names the caller's paths anyway; the fixed layout keeps its tasks the same
        // from every directory, so identical invocations share one live task.
        let caller = spec
            .cwd
            .filter(|_| spec.engine == Engine::Generic)
            .filter(|cwd| caller_paths_usable(plan, cwd, spec.side));
        if let Some(cwd) = caller {
            let mut mapping = PathMapping {
                output_dir: plan.output_dir.given.clone(),
                ..PathMapping::default()
            };
            let mut input_paths = BTreeMap::new();
            for input in &job.inputs {
                let planned = &plan.inputs[input.index];
                mapping.inputs.insert(input.index, planned.given.clone());
                input_paths.insert(input.index, planned.path.clone());
            }
            return Layout {
                mapping,
                workdir: cwd.to_string_lossy().into_owned(),
                out_dir: plan.output_dir.path.clone(),
                input_paths,
            };
        }
        let mut mapping = PathMapping {
            output_dir: OUT_DIR.to_owned(),
            ..PathMapping::default()
        };
        let mut input_paths = BTreeMap::new();
        for input in &job.inputs {
            let planned = &plan.inputs[input.index];
            let path = sandbox_input_path(input.index, &planned.given, planned.source);
            mapping.inputs.insert(input.index, path.clone());
            input_paths.insert(input.index, path);
        }
        Layout {
            mapping,
            workdir: WORK_DIR.to_owned(),
            out_dir: OUT_DIR.to_owned(),
            input_paths,
        }
    }
}

/// The fixed-layout container path of plan input `index` whose given path is `given`.
fn sandbox_input_path(index: usize, given: &str, source: InputSource) -> String {
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

/// The task, and the container path of its output directory.
pub(crate) fn build_task(
    job: &Job<'_>,
    spec: &TaskSpec<'_>,
) -> Result<(Task, String), RenderError> {
    let plan = job.plan;
    let layout = Layout::of(job, spec);
    let mut inputs = Vec::new();
    let mut tags = BTreeMap::from([
        (TAG_KEY.to_owned(), job.key.clone()),
        (TAG_ATTEMPT.to_owned(), spec.attempt.to_owned()),
        (TAG_IMAGE.to_owned(), spec.image.to_owned()),
    ]);
    if spec.engine == Engine::ReferenceWorker {
        // Small outputs come back in the task log: no store round trip for them.
        tags.insert(
            inline::TAG.to_owned(),
            inline::DEFAULT_MAX_BYTES.to_string(),
        );
    }
    for input in &job.inputs {
        let planned = &plan.inputs[input.index];
        inputs.push(Input {
            name: Some(planned.role.clone()),
            url: Some(spec.store.cas_url(&input.digest).to_string()),
            path: layout.input_paths[&input.index].clone(),
            file_type: FileType::File,
            ..Input::default()
        });
        tags.insert(
            format!("bb-remote.input.{}", input.index),
            format!("{}:{}", planned.role, input.digest),
        );
    }
    let mut bb_argv = vec![spec.side.bb.clone()];
    let mut rendered = plan.render_argv(&layout.mapping)?.into_iter();
    // The executor's CRS goes right after the (sub)command, where both grammars take
    // it and where `bb -v` lists it among the options as it did for the caller; but
    // before `msgpack`, whose `run` refuses it (bb 5 exits 109).
    if plan.generation == Generation::Legacy || plan.command != "msgpack" {
        bb_argv.extend(rendered.next());
    }
    if let Some(crs) = &spec.side.crs {
        let flag = crate::grammar::crs_option().names[0];
        bb_argv.extend([flag.to_owned(), crs.clone()]);
    }
    bb_argv.extend(rendered);
    // A command that answers on stdout (`msgpack run`) gets it as an output file.
    let stdout_output = plan
        .stdout_file
        .as_ref()
        .map(|name| format!("{}/{name}", layout.out_dir));
    let meta_stdout = format!("{META_DIR}/stdout");
    let (command, stdout) = match spec.engine {
        Engine::ReferenceWorker => (bb_argv, stdout_output.unwrap_or(meta_stdout)),
        Engine::Generic => {
            let mut wrapped = vec![
                "/bin/sh".to_owned(),
                "-c".to_owned(), // /bin/sh's, not bb's
                WRAPPER.to_owned(),
                "bb-remote".to_owned(),
                layout.out_dir.clone(),
                META_DIR.to_owned(),
                stdout_output.unwrap_or_default(),
            ];
            wrapped.extend(bb_argv);
            (wrapped, meta_stdout)
        }
    };
    let run_url = |what: &str| {
        spec.store
            .url_for_relative(&format!("runs/{}/{}/{what}", job.key, spec.attempt))
            .to_string()
    };
    let mut executors = Vec::new();
    let mut volumes = Vec::new();
    if let Some(assembled) = &plan.assemble {
        executors.push(assemble_executor(job, spec, &layout, assembled));
        volumes.extend(
            Path::new(assembled)
                .parent()
                .map(|p| p.display().to_string()),
        );
    }
    executors.push(Executor {
        image: spec.image.to_owned(),
        command,
        workdir: Some(layout.workdir),
        stdout: Some(stdout),
        stderr: Some(format!("{META_DIR}/stderr")),
        env: spec.env.clone(),
        ..Executor::default()
    });
    let task = Task {
        name: Some(format!("bb {}", plan.command)),
        description: Some(format!("bb-remote invocation {}", job.key)),
        inputs,
        outputs: vec![
            Output {
                name: Some("output_dir".into()),
                url: run_url("out"),
                path: layout.out_dir.clone(),
                file_type: FileType::Directory,
                ..Output::default()
            },
            Output {
                name: Some("bb-remote_meta".into()),
                url: run_url("meta"),
                path: META_DIR.to_owned(),
                file_type: FileType::Directory,
                ..Output::default()
            },
        ],
        resources: Some(spec.resources.clone()),
        executors,
        volumes,
        tags,
        ..Task::default()
    };
    Ok((task, layout.out_dir))
}

/// The first executor of a task whose plan has `assemble`: `cat` of every input in
/// plan order, its stdout to `assembled` (a standard TES executor; the reference
/// worker runs `cat` as a built-in, see `worker/builtin.rs`).
fn assemble_executor(
    job: &Job<'_>,
    spec: &TaskSpec<'_>,
    layout: &Layout,
    assembled: &str,
) -> Executor {
    let mut inputs: Vec<usize> = job.inputs.iter().map(|i| i.index).collect();
    inputs.sort_unstable();
    let mut command = vec![CAT.to_owned()];
    command.extend(inputs.iter().map(|i| layout.input_paths[i].clone()));
    Executor {
        image: spec.image.to_owned(),
        command,
        workdir: Some(layout.workdir.clone()),
        stdout: Some(assembled.to_owned()),
        ..Executor::default()
    }
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

    /// `<command> -b <input 0> -w <input 1> -o <output dir>`
    fn b_w_o_argv(command: &str) -> Vec<ArgTemplate> {
        vec![
            ArgTemplate::Literal(command.into()),
            ArgTemplate::Literal("-b".into()),
            ArgTemplate::Input(0),
            ArgTemplate::Literal("-w".into()),
            ArgTemplate::Input(1),
            ArgTemplate::Literal("-o".into()),
            ArgTemplate::OutputDir,
        ]
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
            argv: b_w_o_argv("prove_tube"),
            dropped: vec!["-c".into(), "/crs".into()],
            stdout_file: None,
            assemble: None,
        };
        let d = Digest::of_bytes(b"x");
        let job = Job {
            plan: &plan,
            key: "k".repeat(64),
            inputs: (0..3).map(|index| JobInput { index, digest: d }).collect(),
        };
        let store = Store::from_url("file:///srv/store", &Env::default()).unwrap();
        let side = RemoteSide::default();
        let (task, out) =
            build_task(&job, &spec(&store, &side, None, Engine::ReferenceWorker)).unwrap();
        assert_eq!(out, OUT_DIR);
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
        assert_eq!(task.outputs[1].path, META_DIR);
        assert_eq!(
            task.executors[0].stdout.as_deref(),
            Some("/bb-remote/meta/stdout")
        );
    }

    fn spec<'a>(
        store: &'a Store,
        side: &'a RemoteSide,
        cwd: Option<&'a Path>,
        engine: Engine,
    ) -> TaskSpec<'a> {
        TaskSpec {
            store,
            image: "img",
            attempt: "att",
            resources: Resources::default(),
            side,
            env: BTreeMap::from([("BB_VERBOSE".to_owned(), "1".to_owned())]),
            cwd,
            engine,
        }
    }

    /// `prove -b p.json -w w.gz -o out` in /home/me: the caller's paths and spelling.
    fn caller_plan() -> Plan {
        let mut bytecode = input("bytecode", "p.json", InputSource::Flag);
        bytecode.path = "/home/me/p.json".into();
        let mut witness = input("witness", "/data/w.gz", InputSource::Flag);
        witness.path = "/data/w.gz".into();
        Plan {
            plan_version: PLAN_VERSION,
            generation: Generation::Modern,
            command: "prove".into(),
            inputs: vec![bytecode, witness],
            output_dir: PlanOutputDir {
                given: "out".into(),
                path: "/home/me/out".into(),
                source: InputSource::Flag,
                created_by_bb: true,
            },
            argv: b_w_o_argv("prove"),
            dropped: vec![],
            stdout_file: None,
            assemble: None,
        }
    }

    fn job_of(plan: &Plan) -> Job<'_> {
        Job {
            plan,
            key: "k".repeat(64),
            inputs: (0..plan.inputs.len())
                .map(|index| JobInput {
                    index,
                    digest: Digest::of_bytes(b"x"),
                })
                .collect(),
        }
    }

    #[test]
    fn a_generic_engine_gets_the_callers_paths_a_wrapper_and_the_executor_side() {
        let plan = caller_plan();
        let job = job_of(&plan);
        let store = Store::from_url("file:///srv/store", &Env::default()).unwrap();
        let side = RemoteSide {
            bb: "/usr/src/barretenberg/cpp/build/bin/bb".into(),
            crs: Some("/crs".into()),
            ..RemoteSide::default()
        };
        let cwd = Path::new("/home/me");
        let (task, out) =
            build_task(&job, &spec(&store, &side, Some(cwd), Engine::Generic)).unwrap();
        assert_eq!(out, "/home/me/out");
        let exec = &task.executors[0];
        assert_eq!(exec.command[..2], ["/bin/sh", "-c"]);
        assert_eq!(
            exec.command[4..],
            [
                "/home/me/out",
                META_DIR,
                "",
                "/usr/src/barretenberg/cpp/build/bin/bb",
                "prove",
                "-c",
                "/crs",
                "-b",
                "p.json",
                "-w",
                "/data/w.gz",
                "-o",
                "out"
            ]
        );
        assert_eq!(exec.workdir.as_deref(), Some("/home/me"));
        assert_eq!(exec.env["BB_VERBOSE"], "1");
        assert_eq!(task.inputs[0].path, "/home/me/p.json");
        assert_eq!(task.inputs[1].path, "/data/w.gz");
        assert_eq!(task.outputs[0].path, "/home/me/out");
    }

    #[test]
    fn a_request_in_parts_is_rebuilt_by_a_cat_executor_before_bb() {
        const ASSEMBLED_REQUEST: &str = "/bb-remote/req/request.msgpack";
        // As `msgpack/delegate.rs` plans a request sent in two parts.
        let lit = |s: &str| ArgTemplate::Literal(s.into());
        let mut plan = caller_plan();
        plan.command = "msgpack".into();
        for (i, input) in plan.inputs.iter_mut().enumerate() {
            input.given = format!("request.msgpack.{i}");
        }
        plan.argv = vec![
            lit("msgpack"),
            lit("run"),
            lit("--input"),
            lit(ASSEMBLED_REQUEST),
        ];
        plan.assemble = Some(ASSEMBLED_REQUEST.into());
        plan.stdout_file = Some("response.msgpack".into());
        let job = job_of(&plan);
        let store = Store::from_url("file:///srv/store", &Env::default()).unwrap();
        let side = RemoteSide {
            crs: Some("/crs".into()),
            ..RemoteSide::default()
        };
        for engine in [Engine::ReferenceWorker, Engine::Generic] {
            let (task, _) = build_task(&job, &spec(&store, &side, None, engine)).unwrap();
            assert_eq!(task.executors.len(), 2, "{engine:?}");
            let cat = &task.executors[0];
            assert_eq!(
                cat.command,
                [
                    CAT,
                    "/bb-remote/in/0/request.msgpack.0",
                    "/bb-remote/in/1/request.msgpack.1"
                ]
            );
            assert_eq!(cat.stdout.as_deref(), Some(ASSEMBLED_REQUEST));
            assert_eq!(task.volumes, ["/bb-remote/req"]);
            // The answer on stdout is an output: on a generic engine bb writes it
            // itself, before the wrapper's manifest (not the engine, after it).
            let (engine_stdout, wrapper_stdout) = match engine {
                Engine::ReferenceWorker => ("/bb-remote/out/response.msgpack", None),
                Engine::Generic => (
                    "/bb-remote/meta/stdout",
                    Some("/bb-remote/out/response.msgpack"),
                ),
            };
            assert_eq!(task.executors[1].stdout.as_deref(), Some(engine_stdout));
            let command = &task.executors[1].command;
            let wrapped = command[0] == "/bin/sh";
            assert_eq!(
                wrapped.then(|| command[6].as_str()),
                wrapper_stdout,
                "{engine:?}"
            );
            let bb = &task.executors[1].command;
            let at = bb.iter().position(|a| a == "bb").unwrap();
            assert_eq!(
                bb[at..],
                [
                    "bb",
                    "-c",
                    "/crs",
                    "msgpack",
                    "run",
                    "--input",
                    ASSEMBLED_REQUEST
                ],
                "{engine:?}: -c before the subcommand, where bb 5 takes it"
            );
        }
    }

    /// The wrapper run by a real `sh`: an answer on stdout lands in the output
    /// directory before the manifest is made, so the manifest holds its digest (the
    /// engine's copy of the container's stdout may come later).
    #[test]
    fn the_wrapper_writes_an_answer_on_stdout_before_its_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let (out, meta) = (dir.path().join("out"), dir.path().join("meta"));
        std::fs::create_dir_all(&out).unwrap();
        std::fs::create_dir_all(&meta).unwrap();
        let answer = out.join("response.msgpack");
        let status = std::process::Command::new("/bin/sh")
            .args(["-c", WRAPPER, "bb-remote"])
            .args([&out, &meta, &answer])
            .args(["printf", "the answer"])
            .stdout(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(std::fs::read(&answer).unwrap(), b"the answer");
        let manifest = std::fs::read_to_string(meta.join("sha256sums")).unwrap();
        assert_eq!(
            manifest.trim(),
            format!(
                "{}  ./response.msgpack",
                Digest::of_bytes(b"the answer").hex()
            )
        );
        assert_eq!(
            std::fs::read_to_string(meta.join("exit_code")).unwrap(),
            "0\n"
        );
    }

    #[test]
    fn unusable_caller_paths_fall_back_to_the_fixed_layout() {
        let store = Store::from_url("file:///srv/store", &Env::default()).unwrap();
        let side = RemoteSide::default();
        for (witness, cwd) in [
            ("/data/my witness.gz", "/home/me"),
            ("/etc/w.gz", "/home/me"),
            ("/data/w.gz", "/usr/local/work"),
            ("/data/../w.gz", "/home/me"),
            ("/home/me/out", "/home/me"),
        ] {
            let mut plan = caller_plan();
            plan.inputs[1].path = witness.into();
            plan.inputs[1].given = witness.into();
            let job = job_of(&plan);
            let cwd = Path::new(cwd);
            let (task, out) =
                build_task(&job, &spec(&store, &side, Some(cwd), Engine::Generic)).unwrap();
            assert_eq!(out, OUT_DIR, "{witness} in {}", cwd.display());
            assert_eq!(
                task.inputs[1].path,
                "/bb-remote/in/1/".to_owned() + witness.rsplit('/').next().unwrap()
            );
        }
    }
}
