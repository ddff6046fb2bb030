//! Checks a submitted task before anything is stored, so a bad task is a 400 that
//! names the field, and nothing is half-created.
//!
//! What this worker accepts beyond the TES schema's own rules:
//! - every executor's `image` is one the worker maps to a bb binary, and runs bb, or
//!   the built-in `cat` over the task's own inputs (see `builtin.rs`);
//! - every container path (input/output paths, `workdir`, `stdin`/`stdout`/`stderr`,
//!   `volumes`, absolute paths in `command`) stays inside the sandbox;
//! - FILE inputs give inline `content` or a content-addressed URL of the worker's
//!   own store (`<store>/cas/sha256/<hex>`); DIRECTORY inputs are not supported;
//! - outputs go to URLs under the worker's store's `runs/` (never `cas/`, which only
//!   the client writes, by digest), without wildcards;
//! - no argument, path or environment value holds a NUL byte (no process could be
//!   started with it); executor `env` names only variables bb reads
//!   ([`ENV_ALLOWED`]): anything else (`LD_PRELOAD`, `PATH`, `CRS_PATH`) is refused;
//! - the task's resources fit the whole machine.
use std::collections::BTreeMap;
use std::path::PathBuf;

use super::admission::{Admission, Demand};
use super::sandbox::{check_argv, container_relative};
use crate::store::Store;

/// The store directory every task output goes under.
pub(crate) const RUNS_DIR: &str = "runs";
use crate::tes::types::{FileType, Task};

/// Executor environment variables a task may set: exact names, and prefixes ending in
/// `_`. bb reads `BB_*` (e.g. `BB_SCHEME`, `BB_VERIFIER_TARGET`) and
/// `HARDWARE_CONCURRENCY`; anything else could change how the process is loaded or
/// where it reads and writes (`LD_PRELOAD`, `PATH`, `HOME`, `CRS_PATH`).
pub(crate) const ENV_ALLOWED: &[&str] = &["BB_", "HARDWARE_CONCURRENCY"];

fn env_allowed(name: &str) -> bool {
    ENV_ALLOWED
        .iter()
        .any(|allowed| match allowed.strip_suffix('_') {
            Some(_) => name.starts_with(allowed) && name.len() > allowed.len(),
            None => name == *allowed,
        })
}

/// A NUL byte cannot reach a process (argv and environment are C strings): refuse it
/// up front rather than fail the task when it starts.
fn no_nul(value: &str, what: impl FnOnce() -> String) -> Result<(), String> {
    match value.contains('\0') {
        true => Err(format!("{} contains a NUL byte", what())),
        false => Ok(()),
    }
}

/// What validation needs to know about this worker.
pub(crate) struct Rules<'a> {
    pub(crate) images: &'a BTreeMap<String, PathBuf>,
    pub(crate) default_bb: Option<&'a PathBuf>,
    pub(crate) store: &'a Store,
    pub(crate) admission: &'a Admission,
}

impl Rules<'_> {
    /// The bb binary for an image, if this worker serves it.
    pub(crate) fn bb_for(&self, image: &str) -> Option<PathBuf> {
        self.images.get(image).or(self.default_bb).cloned()
    }

    /// Check `task`; on success, the resources it will reserve.
    pub(crate) fn check(&self, task: &Task) -> Result<Demand, String> {
        if task.executors.is_empty() {
            return Err("task has no executors (`executors` must list at least one)".into());
        }
        for (i, executor) in task.executors.iter().enumerate() {
            let what = format!("executors[{i}]");
            if self.bb_for(&executor.image).is_none() {
                return Err(format!(
                    "{what}.image {:?} is not served by this worker (known images: {})",
                    executor.image,
                    self.images.keys().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
            if executor.command.is_empty() {
                return Err(format!("{what}.command is empty"));
            }
            if super::builtin::is_cat(executor) {
                // Before any bb has run, the sandbox holds only what the worker put
                // there: no link a bb could have planted.
                if i > 0 && !super::builtin::is_cat(&task.executors[i - 1]) {
                    return Err(format!(
                        "{what}: the built-in `cat` must come before every bb executor"
                    ));
                }
                super::builtin::check_cat(task, executor, &what)?;
            }
            for (j, arg) in executor.command.iter().enumerate() {
                no_nul(arg, || format!("{what}.command[{j}]"))?;
            }
            for (name, value) in &executor.env {
                no_nul(name, || format!("{what}.env name {name:?}"))?;
                no_nul(value, || format!("{what}.env[{name:?}]"))?;
                if !env_allowed(name) {
                    return Err(format!(
                        "{what}.env: {name:?} may not be set (allowed: BB_*, \
                         HARDWARE_CONCURRENCY)"
                    ));
                }
            }
            let workdir = executor.workdir.as_deref().unwrap_or("/");
            check_argv(&executor.command, workdir, &format!("{what}.command"))
                .map_err(|e| e.to_string())?;
            let paths = [
                ("workdir", &executor.workdir),
                ("stdin", &executor.stdin),
                ("stdout", &executor.stdout),
                ("stderr", &executor.stderr),
            ];
            for (field, path) in paths {
                if let Some(path) = path {
                    container_relative(path, &format!("{what}.{field}"))
                        .map_err(|e| e.to_string())?;
                }
            }
        }
        for (i, input) in task.inputs.iter().enumerate() {
            let what = format!("inputs[{i}]");
            container_relative(&input.path, &format!("{what}.path")).map_err(|e| e.to_string())?;
            if input.file_type == FileType::Directory {
                return Err(format!(
                    "{what}: DIRECTORY inputs are not supported by this worker"
                ));
            }
            match (&input.content, &input.url) {
                (Some(_), _) => {}
                (None, Some(url)) => self.check_input_url(url, &what)?,
                (None, None) => return Err(format!("{what} has neither `url` nor `content`")),
            }
        }
        for (i, output) in task.outputs.iter().enumerate() {
            let what = format!("outputs[{i}]");
            container_relative(&output.path, &format!("{what}.path")).map_err(|e| e.to_string())?;
            if output.path.contains(['*', '?', '[']) || output.path_prefix.is_some() {
                return Err(format!("{what}.path: wildcard outputs are not supported"));
            }
            self.check_output_url(&output.url, &what)?;
        }
        for (i, volume) in task.volumes.iter().enumerate() {
            container_relative(volume, &format!("volumes[{i}]")).map_err(|e| e.to_string())?;
        }
        let demand = Demand::of(task.resources.as_ref())?;
        self.admission.check_fits_machine(demand)?;
        Ok(demand)
    }

    /// Outputs go under `<store>/runs/` only: a task must not plant objects where
    /// clients look up content by digest (`cas/`) or anywhere else they trust.
    fn check_output_url(&self, url: &str, what: &str) -> Result<(), String> {
        let key = self
            .store
            .key_for_url(url)
            .map_err(|e| format!("{what}.url: {e}"))?;
        let runs_url = self.store.url_for_relative(RUNS_DIR);
        let runs = self
            .store
            .key_for_url(runs_url.as_str())
            .map_err(|e| format!("{what}.url: {e}"))?;
        let below_runs = key
            .prefix_match(&runs)
            .is_some_and(|mut rest| rest.next().is_some());
        if !below_runs {
            return Err(format!(
                "{what}.url {url:?} is not under {runs_url}/ (outputs may only go there)"
            ));
        }
        Ok(())
    }

    fn check_input_url(&self, url: &str, what: &str) -> Result<(), String> {
        let key = self
            .store
            .key_for_url(url)
            .map_err(|e| format!("{what}.url: {e}"))?;
        if self.store.digest_for_key(&key).is_none() {
            return Err(format!(
                "{what}.url {url:?} is not a content-addressed blob of the store \
                 ({}/cas/sha256/<hex>)",
                self.store.base_url()
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Env;
    use crate::tes::types::{Executor, Input, Output, Resources};

    fn task() -> Task {
        Task {
            executors: vec![Executor {
                image: "bb".into(),
                command: vec!["bb".into(), "prove".into(), "-o".into(), "/out".into()],
                ..Executor::default()
            }],
            ..Task::default()
        }
    }

    fn check(task: &Task) -> Result<Demand, String> {
        let images = BTreeMap::from([("bb".to_string(), PathBuf::from("/bin/bb"))]);
        let store = Store::from_url("file:///srv/store", &Env::default()).unwrap();
        let admission = Admission::new(Demand {
            cpus: 2,
            memory_gib: 4.0,
        });
        let rules = Rules {
            images: &images,
            default_bb: None,
            store: &store,
            admission: &admission,
        };
        rules.check(task)
    }

    fn expect_err(task: &Task, needle: &str) {
        let err = check(task).unwrap_err();
        assert!(err.contains(needle), "{err:?} should mention {needle:?}");
    }

    #[test]
    fn good_task_passes() {
        let mut t = task();
        let hex = "ab".repeat(32);
        t.inputs.push(Input {
            url: Some(format!("file:///srv/store/cas/sha256/{hex}")),
            path: "/in/p.json".into(),
            ..Input::default()
        });
        t.outputs.push(Output {
            url: "file:///srv/store/runs/1/out".into(),
            path: "/out".into(),
            ..Output::default()
        });
        assert_eq!(check(&t).unwrap().cpus, 1);
    }

    #[test]
    fn each_bad_field_is_named() {
        expect_err(&Task::default(), "no executors");
        let mut t = task();
        t.executors[0].image = "other".into();
        expect_err(&t, "executors[0].image \"other\"");
        let mut t = task();
        t.executors[0].command.push("/../etc/passwd".into());
        expect_err(&t, "executors[0].command[4]");
        let mut t = task();
        t.inputs.push(Input {
            url: Some("file:///etc/passwd".into()),
            path: "/in/x".into(),
            ..Input::default()
        });
        expect_err(&t, "inputs[0].url");
        let mut t = task();
        t.inputs.push(Input {
            url: Some("file:///srv/store/runs/x".into()),
            path: "/in/x".into(),
            ..Input::default()
        });
        expect_err(&t, "not a content-addressed blob");
        let mut t = task();
        t.outputs.push(Output {
            url: "s3://elsewhere/x".into(),
            path: "/out".into(),
            ..Output::default()
        });
        expect_err(&t, "outputs[0].url");
        let mut t = task();
        t.outputs.push(Output {
            url: "file:///srv/store/x".into(),
            path: "/a/../../x".into(),
            ..Output::default()
        });
        expect_err(&t, "outputs[0].path");
        let mut t = task();
        t.resources = Some(Resources {
            ram_gb: Some(64.0),
            ..Resources::default()
        });
        expect_err(&t, "64 GiB");
    }

    #[test]
    fn the_built_in_cat_reads_only_inputs_and_runs_before_bb() {
        let hex = "ab".repeat(32);
        let mut t = task();
        t.inputs.push(Input {
            url: Some(format!("file:///srv/store/cas/sha256/{hex}")),
            path: "/in/0/part".into(),
            ..Input::default()
        });
        let cat = |file: &str| Executor {
            image: "bb".into(),
            command: vec!["cat".into(), file.into()],
            stdout: Some("/req/r".into()),
            ..Executor::default()
        };
        t.executors.insert(0, cat("/in/0/part"));
        assert!(check(&t).is_ok());
        t.executors[0] = cat("/etc/passwd");
        expect_err(&t, "executors[0].command[1] \"/etc/passwd\"");
        t.executors[0] = cat("/in/0/part");
        t.executors.swap(0, 1);
        expect_err(&t, "executors[1]: the built-in `cat` must come before");
    }
}
