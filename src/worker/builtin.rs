//! The one executor the worker runs without bb: `cat`, built in.
//!
//! Why: the shim sends a msgpack request as content-addressed parts (so a repeated
//! proof uploads only its witness) and rebuilds it on the remote side with a first
//! executor `cat <parts>` whose stdout is the request file. A generic TES engine runs
//! the image's `cat`; this worker runs nothing but bb (a token holder must not get
//! arbitrary code execution), so it does the concatenation itself, in-process.
//!
//! What it accepts (checked at creation, a 400 naming the field otherwise, and again
//! when it runs): `command` is `cat` followed by 1 to [`MAX_ARGS`] paths, each the
//! container path of one of the task's own inputs (files the worker itself placed in
//! the sandbox, never an output of another executor), each at most once; `stdout` is a
//! container path that is not an input; no `stdin`. So the file written is at most the
//! sum of the task's inputs, and stays inside the sandbox. Every built-in `cat` comes
//! before the first bb executor, so it reads what the worker itself placed; files are
//! also opened without following a final symbolic link.
use std::path::PathBuf;

use tokio::io::AsyncWriteExt;

use super::sandbox::{container_relative, Sandbox};
use crate::tes::types::{Executor, Task};

/// `command[0]` of the built-in.
pub(crate) const CAT: &str = "cat";
/// Most files one `cat` may join (a request has at most 8 parts).
pub(crate) const MAX_ARGS: usize = 16;

/// Whether `executor` is the built-in `cat` rather than a bb run.
pub(crate) fn is_cat(executor: &Executor) -> bool {
    executor.command.first().map(String::as_str) == Some(CAT)
}

/// Check a built-in `cat` executor of `task` (`what`: `executors[i]`).
pub(crate) fn check_cat(task: &Task, executor: &Executor, what: &str) -> Result<(), String> {
    let files = &executor.command[1..];
    if files.is_empty() || files.len() > MAX_ARGS {
        return Err(format!(
            "{what}.command: the built-in `cat` takes 1 to {MAX_ARGS} input paths, not {}",
            files.len()
        ));
    }
    let relative = |path: &str, field: &str| {
        container_relative(path, &format!("{what}.{field}")).map_err(|e| e.to_string())
    };
    let inputs = task
        .inputs
        .iter()
        .map(|i| relative(&i.path, "inputs"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut seen = Vec::new();
    for (j, file) in files.iter().enumerate() {
        let field = format!("command[{}]", j + 1);
        let path = relative(file, &field)?;
        if !inputs.contains(&path) {
            return Err(format!(
                "{what}.{field} {file:?}: the built-in `cat` reads only the task's inputs"
            ));
        }
        if seen.contains(&path) {
            return Err(format!("{what}.{field} {file:?} is listed twice"));
        }
        seen.push(path);
    }
    let Some(stdout) = &executor.stdout else {
        return Err(format!(
            "{what}.stdout: the built-in `cat` needs a stdout path"
        ));
    };
    if inputs.contains(&relative(stdout, "stdout")?) {
        return Err(format!(
            "{what}.stdout {stdout:?} is one of the task's inputs"
        ));
    }
    if executor.stdin.is_some() {
        return Err(format!("{what}.stdin: the built-in `cat` reads no stdin"));
    }
    Ok(())
}

/// Run a checked built-in `cat` in `sandbox`: the files, in order, into `stdout`.
/// `Err` is the message for the executor's stderr (the executor then fails).
pub(crate) async fn run_cat(
    task: &Task,
    executor: &Executor,
    sandbox: &Sandbox,
) -> Result<(), String> {
    check_cat(task, executor, "cat")?;
    let map = |path: &str| -> Result<PathBuf, String> {
        sandbox.map(path, "cat").map_err(|e| e.to_string())
    };
    let stdout = executor.stdout.as_deref().unwrap_or_default();
    let dest = map(stdout)?;
    if let Some(parent) = dest.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| format!("cat: creating {stdout}'s directory: {e}"))?;
    }
    let mut out = tokio::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&dest)
        .await
        .map_err(|e| format!("cat: {stdout}: {e}"))?;
    for file in &executor.command[1..] {
        let mut input = tokio::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(map(file)?)
            .await
            .map_err(|e| format!("cat: {file}: {e}"))?;
        tokio::io::copy(&mut input, &mut out)
            .await
            .map_err(|e| format!("cat: {file} -> {stdout}: {e}"))?;
    }
    out.flush().await.map_err(|e| format!("cat: {stdout}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tes::types::Input;

    fn task(command: &[&str], stdout: Option<&str>) -> (Task, Executor) {
        let executor = Executor {
            image: "bb".into(),
            command: command.iter().map(|s| s.to_string()).collect(),
            stdout: stdout.map(str::to_owned),
            ..Executor::default()
        };
        let inputs = ["/in/0/a", "/in/1/b"]
            .iter()
            .map(|p| Input {
                path: p.to_string(),
                content: Some("x".into()),
                ..Input::default()
            })
            .collect();
        let task = Task {
            inputs,
            executors: vec![executor.clone()],
            ..Task::default()
        };
        (task, executor)
    }

    #[test]
    fn only_the_tasks_own_inputs_once_each_into_a_fresh_path() {
        let ok = |command: &[&str], stdout| {
            let (t, e) = task(command, stdout);
            check_cat(&t, &e, "executors[0]")
        };
        assert!(ok(&["cat", "/in/0/a", "/in/1/b"], Some("/req/r")).is_ok());
        assert!(ok(&["cat", "/in/1/../0/a"], Some("/req/r")).is_ok());
        let bad = [
            (&["cat"][..], Some("/req/r"), "1 to 16"),
            (&["cat", "/etc/passwd"], Some("/req/r"), "command[1]"),
            (
                &["cat", "/in/0/a", "/in/0/./a"],
                Some("/req/r"),
                "listed twice",
            ),
            (&["cat", "/in/0/a"], None, "needs a stdout"),
            (
                &["cat", "/in/0/a"],
                Some("/in/1/b"),
                "one of the task's inputs",
            ),
            (&["cat", "/in/../../x"], Some("/req/r"), "escapes"),
        ];
        for (command, stdout, needle) in bad {
            let err = ok(command, stdout).unwrap_err();
            assert!(err.contains(needle), "{command:?}: {err}");
        }
        let many: Vec<String> = (0..=MAX_ARGS).map(|i| format!("/in/{i}")).collect();
        let mut command = vec!["cat"];
        command.extend(many.iter().map(String::as_str));
        assert!(ok(&command, Some("/r")).unwrap_err().contains("1 to 16"));
    }

    #[tokio::test]
    async fn cat_joins_the_files_in_order_and_never_follows_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let sandbox = Sandbox::new(dir.path().to_owned());
        let root = sandbox.root();
        std::fs::create_dir_all(root.join("in/0")).unwrap();
        std::fs::create_dir_all(root.join("in/1")).unwrap();
        std::fs::write(root.join("in/0/a"), b"head").unwrap();
        std::fs::write(root.join("in/1/b"), b"+tail").unwrap();
        let (t, e) = task(&["cat", "/in/0/a", "/in/1/b"], Some("/req/r"));
        run_cat(&t, &e, &sandbox).await.unwrap();
        assert_eq!(std::fs::read(root.join("req/r")).unwrap(), b"head+tail");

        let outside = dir.path().join("outside");
        std::fs::write(&outside, b"secret").unwrap();
        std::fs::remove_file(root.join("in/1/b")).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("in/1/b")).unwrap();
        let err = run_cat(&t, &e, &sandbox).await.unwrap_err();
        assert!(err.contains("/in/1/b"), "{err}");
        std::os::unix::fs::symlink(&outside, root.join("req/s")).unwrap();
        let (t, e) = task(&["cat", "/in/0/a"], Some("/req/s"));
        assert!(run_cat(&t, &e, &sandbox).await.is_err());
        assert_eq!(std::fs::read(&outside).unwrap(), b"secret");
    }
}
