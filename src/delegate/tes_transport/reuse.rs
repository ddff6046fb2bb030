//! Whether a task found by its key tag may stand in for the one this shim would create.
//!
//! Anyone who can create tasks on the backend can put our key tag on a task that runs
//! something else (another witness, another command, an input with inline `content`)
//! and so hand us a forged proof. A task is reused only when its FULL view is exactly
//! the task this shim would have created, under the other caller's attempt tag:
//! executors (image, command, env, workdir, stdin/stdout/stderr), inputs (name, URL,
//! path, type, content), outputs, volumes, name, description and tags. Resources are
//! the one thing that may differ: callers may size the same proof differently, and
//! the proof does not depend on them. What the backend adds (id, state, logs, creation
//! time) is ignored, and the schema's defaults count as absent.
use crate::tes::types::Task;

use super::super::task::TAG_ATTEMPT;

/// The attempt tag of `found`, if it is one a shim could have made (letters, digits
/// and `-`; it becomes part of a store path, so nothing else is accepted).
pub(super) fn attempt_of(found: &Task) -> Option<&str> {
    let attempt = found.tags.get(TAG_ATTEMPT)?;
    let plain = !attempt.is_empty()
        && attempt.len() <= 64
        && attempt
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    plain.then_some(attempt.as_str())
}

/// `Ok` when `found` (a FULL view) is `expected` (the task we would create with
/// `found`'s attempt tag); otherwise the first difference, for the log.
pub(super) fn same_spec(expected: &Task, found: &Task) -> Result<(), String> {
    let expected = comparable(expected);
    let found = comparable(found);
    if expected == found {
        return Ok(());
    }
    let differs = |what: &str| Err(format!("its {what} differ from this invocation's"));
    if expected.executors != found.executors {
        return differs("executors");
    }
    if expected.inputs != found.inputs {
        return differs("inputs");
    }
    if expected.outputs != found.outputs {
        return differs("outputs");
    }
    if expected.tags != found.tags {
        return differs("tags");
    }
    differs("name, description or volumes")
}

/// The parts of a task that decide what runs, with the schema's defaults made explicit
/// absences (a backend may echo `streamable: false` for an absent field).
fn comparable(task: &Task) -> Task {
    let mut t = Task {
        id: None,
        state: None,
        logs: Vec::new(),
        creation_time: None,
        resources: None,
        ..task.clone()
    };
    for input in &mut t.inputs {
        if input.streamable == Some(false) {
            input.streamable = None;
        }
    }
    for output in &mut t.outputs {
        if output.path_prefix.as_deref() == Some("") {
            output.path_prefix = None;
        }
    }
    for exec in &mut t.executors {
        if exec.ignore_error == Some(false) {
            exec.ignore_error = None;
        }
    }
    t
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::tes::types::{Executor, Input, Output, Resources, State, TaskLog};

    fn ours() -> Task {
        Task {
            name: Some("bb prove".into()),
            inputs: vec![Input {
                name: Some("witness".into()),
                url: Some("file:///s/cas/sha256/aa".into()),
                path: "/bb-remote/in/0/w.gz".into(),
                ..Input::default()
            }],
            outputs: vec![Output {
                url: "file:///s/runs/k/att/out".into(),
                path: "/bb-remote/out".into(),
                ..Output::default()
            }],
            resources: Some(Resources {
                cpu_cores: Some(2),
                ..Resources::default()
            }),
            executors: vec![Executor {
                image: "bb".into(),
                command: vec!["bb".into(), "prove".into()],
                workdir: Some("/bb-remote/work".into()),
                ..Executor::default()
            }],
            tags: BTreeMap::from([(TAG_ATTEMPT.to_owned(), "att".to_owned())]),
            ..Task::default()
        }
    }

    #[test]
    fn the_same_task_as_echoed_by_a_backend_is_reused() {
        let mut found = ours();
        found.id = Some("t1".into());
        found.state = Some(State::Running);
        found.logs = vec![TaskLog::default()];
        found.creation_time = Some("2026-01-01T00:00:00Z".into());
        found.resources = Some(Resources::default());
        found.inputs[0].streamable = Some(false);
        found.executors[0].ignore_error = Some(false);
        assert_eq!(same_spec(&ours(), &found), Ok(()));
        assert_eq!(attempt_of(&found), Some("att"));
    }

    #[test]
    fn any_change_to_what_runs_is_refused() {
        type Forge = fn(&mut Task);
        let forgeries: [(&str, Forge); 10] = [
            ("executors", |t| {
                t.executors[0].command.push("--extra".into())
            }),
            ("executors", |t| t.executors[0].image = "evil".into()),
            ("executors", |t| {
                t.executors[0].env.insert("LD_PRELOAD".into(), "/x".into());
            }),
            ("executors", |t| t.executors[0].workdir = None),
            ("executors", |t| {
                t.executors[0].stdout = Some("/bb-remote/out/proof".into())
            }),
            ("inputs", |t| t.inputs[0].content = Some("forged".into())),
            ("inputs", |t| {
                t.inputs[0].url = Some("file:///s/cas/sha256/bb".into())
            }),
            ("outputs", |t| t.outputs[0].url = "file:///elsewhere".into()),
            ("tags", |t| {
                t.tags.insert("bb-remote.input.9".into(), "x".into());
            }),
            ("volumes", |t| t.volumes.push("/bb-remote/out".into())),
        ];
        for (what, forge) in forgeries {
            let mut found = ours();
            forge(&mut found);
            let why = same_spec(&ours(), &found).unwrap_err();
            assert!(why.contains(what), "{what}: {why}");
        }
    }

    #[test]
    fn attempt_tags_that_could_name_another_path_are_refused() {
        for bad in ["", "a/b", "..", "a b", &"x".repeat(65)] {
            let mut t = ours();
            t.tags.insert(TAG_ATTEMPT.into(), bad.into());
            assert_eq!(attempt_of(&t), None, "{bad:?}");
        }
        let mut t = ours();
        t.tags.remove(TAG_ATTEMPT);
        assert_eq!(attempt_of(&t), None);
    }
}
