//! A task's sandbox: the directory that stands in for the container's file system.
//!
//! TES executors name absolute container paths (`/work/in/program.json`); the worker
//! runs bb as a local process, so each such path maps to `<sandbox>/root/<path>`, and
//! bb's working directory is the mapped `workdir` (default `/`). Paths are checked
//! lexically (no `..` above the container root) both when a task is created and when
//! it runs. Nothing in the sandbox is a symbolic link (inputs are copied in as regular
//! files), so a lexical check is a real one; the kernel confinement (`confine`) is the
//! second layer for anything this misses.
//!
//! The argv rule, for every argument after `command[0]` and every form bb's grammars
//! accept a path in: the whole argument (`/abs`, `rel/x`, `..`), the value of a long
//! option (`--output_path=X`) and the value glued to a short option (`-oX`). A value
//! that is absolute is mapped into the sandbox; one that is relative is resolved from
//! the workdir and left as written (bb resolves it the same way from its cwd); either
//! is refused if it leaves the container root. A value without a `/` (other than `..`)
//! names a file in the working directory and is left alone.
//!
//! `command[0]` is replaced by the image's bb binary, and the worker's CRS directory is
//! passed as `-c` where bb's grammar (`crate::grammar` tables) accepts it: modern bb
//! (CLI11) before the subcommand, where every subcommand honours it (bb 5's `gates`
//! and `check` refuse a `-c` after the subcommand, exit 109); legacy bb after the
//! command (it scans the whole argv). Any `-c`/`--crs_path` the task gave, in any form,
//! is dropped, so tasks never fetch or choose a CRS.
use std::path::{Component, Path, PathBuf};

use crate::grammar::{self, tables, Generation, Use};

/// A container path the worker will not map.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PathError {
    #[error("{what} {path:?} is not an absolute container path")]
    NotAbsolute { what: String, path: String },
    #[error("{what} {path:?} escapes the sandbox (`..` above the container root)")]
    Escapes { what: String, path: String },
    #[error("{what} {path:?} names the container root, not a file or directory under it")]
    IsRoot { what: String, path: String },
    #[error("{what} contains a NUL byte")]
    Nul { what: String },
}

/// The relative path under the sandbox root for an absolute container path.
/// `what` names the field in errors (e.g. `inputs[2].path`).
pub(crate) fn container_relative(path: &str, what: &str) -> Result<PathBuf, PathError> {
    let err_fields = || (what.to_owned(), path.to_owned());
    if path.contains('\0') {
        return Err(PathError::Nul { what: what.into() });
    }
    if !path.starts_with('/') {
        let (what, path) = err_fields();
        return Err(PathError::NotAbsolute { what, path });
    }
    let relative = normalize(Path::new(path)).ok_or_else(|| {
        let (what, path) = err_fields();
        PathError::Escapes { what, path }
    })?;
    if relative.as_os_str().is_empty() {
        let (what, path) = err_fields();
        return Err(PathError::IsRoot { what, path });
    }
    Ok(relative)
}

/// `path` without `.`, `..` and the root, relative to the root; None if a `..` would
/// climb above it.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Prefix(_) => return None,
        }
    }
    Some(parts.iter().collect())
}

/// Where a path starts inside one argument, if the argument holds one (module docs).
fn path_in_arg(arg: &str) -> Option<usize> {
    let looks_like_path = |v: &str| v.contains('/') || v == "..";
    if let Some(long) = arg.strip_prefix("--") {
        let (_, value) = long.split_once('=')?;
        return looks_like_path(value).then_some(arg.len() - value.len());
    }
    if arg.starts_with('-') && arg.len() > 2 && arg.as_bytes()[1].is_ascii_alphanumeric() {
        return looks_like_path(&arg[2..]).then_some(2);
    }
    looks_like_path(arg).then_some(0)
}

/// A path from argv (absolute, or relative to the container `workdir`) as a container
/// path under the root, or the error naming the argument.
fn resolve_arg(path: &str, workdir: &str, what: &str) -> Result<PathBuf, PathError> {
    let full = Path::new(workdir).join(path);
    normalize(&full).ok_or_else(|| PathError::Escapes {
        what: what.to_owned(),
        path: path.to_owned(),
    })
}

/// Check every path an executor's argv names (same rule as [`Sandbox::rewrite_argv`]).
pub(crate) fn check_argv(command: &[String], workdir: &str, what: &str) -> Result<(), PathError> {
    for (i, arg) in command.iter().enumerate().skip(1) {
        if let Some(at) = path_in_arg(arg) {
            resolve_arg(&arg[at..], workdir, &format!("{what}[{i}] ({arg:?})"))?;
        }
    }
    Ok(())
}

/// Whether `arg` (with `next`, the token after it) sets the CRS; returns how many
/// tokens it spans (0: it does not). Every spelling the grammar tables know, joined
/// (`--crs_path=x`, `-cx`) or not.
fn crs_tokens(arg: &str) -> usize {
    let names = grammar::crs_option().names;
    if names.contains(&arg) {
        return 2;
    }
    let joined = names.iter().any(|name| match name.strip_prefix("--") {
        Some(_) => arg.starts_with(&format!("{name}=")),
        None => arg.starts_with(name) && arg.len() > name.len(),
    });
    usize::from(joined)
}

/// Where `-c <crs>` goes among `args` (argv without the program), if bb's grammar
/// accepts one for this argv: an index to insert at.
fn crs_position(args: &[String]) -> Option<usize> {
    let sets_crs = |reads: &[grammar::Reads]| reads.iter().any(|r| r.usage == Use::Crs);
    match grammar::detect(args).0 {
        Generation::Modern => sets_crs(tables::MODERN_TOP_LEVEL).then_some(0),
        Generation::Legacy => {
            let command = args.first()?;
            let reads = tables::legacy_command(command).map_or(&[][..], |c| c.reads);
            (sets_crs(tables::LEGACY_GLOBAL) || sets_crs(reads)).then_some(1)
        }
    }
}

/// One task's sandbox directory.
#[derive(Debug, Clone)]
pub(crate) struct Sandbox {
    /// `<data-dir>/sandboxes/<task id>`; removed when the task ends.
    pub(crate) dir: PathBuf,
}

impl Sandbox {
    pub(crate) fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The directory that plays the container's `/`.
    pub(crate) fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// Where the executor's own stdout/stderr are captured (outside `root`).
    pub(crate) fn capture_path(&self, stream: &str) -> PathBuf {
        self.dir.join(format!("{stream}.log"))
    }

    /// The host path for a container path.
    pub(crate) fn map(&self, container_path: &str, what: &str) -> Result<PathBuf, PathError> {
        Ok(self.root().join(container_relative(container_path, what)?))
    }

    /// The argv to run: `bb` for `command[0]`, container paths mapped, relative ones
    /// checked, and the worker's CRS directory as `-c` where bb accepts it.
    pub(crate) fn rewrite_argv(
        &self,
        command: &[String],
        workdir: &str,
        bb: &Path,
        crs_dir: &Path,
    ) -> Result<Vec<String>, PathError> {
        let mut args = Vec::new();
        let mut rest = command.iter().enumerate().skip(1);
        while let Some((i, arg)) = rest.next() {
            match crs_tokens(arg) {
                2 => {
                    rest.next();
                    continue;
                }
                1 => continue,
                _ => {}
            }
            args.push(self.rewrite_arg(arg, workdir, &format!("argument {i}"))?);
        }
        if let Some(at) = crs_position(&args) {
            let at = at.min(args.len());
            let flag = grammar::crs_option().names[0].to_owned();
            args.splice(at..at, [flag, crs_dir.display().to_string()]);
        }
        args.insert(0, bb.display().to_string());
        Ok(args)
    }

    fn rewrite_arg(&self, arg: &str, workdir: &str, what: &str) -> Result<String, PathError> {
        let Some(at) = path_in_arg(arg) else {
            return Ok(arg.to_owned());
        };
        let (prefix, path) = arg.split_at(at);
        let what = format!("{what} ({arg:?})");
        let container = resolve_arg(path, workdir, &what)?;
        if !path.starts_with('/') {
            // Relative: bb resolves it from its working directory, the mapped workdir.
            return Ok(arg.to_owned());
        }
        Ok(format!("{prefix}{}", self.root().join(container).display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn relative_paths_are_checked_lexically() {
        assert_eq!(
            container_relative("/work/./in//p.json", "x").unwrap(),
            PathBuf::from("work/in/p.json")
        );
        assert_eq!(
            container_relative("/work/tmp/../in/p.json", "x").unwrap(),
            PathBuf::from("work/in/p.json")
        );
        let bad = [
            ("work/in", "not an absolute"),
            ("/work/../../etc", "escapes"),
            ("/", "container root"),
            ("/work/a\0b", "NUL byte"),
        ];
        for (path, msg) in bad {
            let err = container_relative(path, "inputs[0].path")
                .unwrap_err()
                .to_string();
            assert!(err.contains(msg) && err.contains("inputs[0].path"), "{err}");
        }
    }

    #[test]
    fn argv_maps_paths_and_pins_the_crs_before_a_modern_subcommand() {
        let sandbox = Sandbox::new(PathBuf::from("/data/sb/t1"));
        let command = strings(&[
            "bb",
            "prove",
            "-b",
            "/work/in/p.json",
            "-c",
            "/home/x/.bb-crs",
            "--output_path=/work/out",
            "-w/work/in/w.gz",
            "--disable_zk",
            "--crs_path=/elsewhere",
            "-c/elsewhere",
            "-k",
            "vk",
        ]);
        let argv = sandbox
            .rewrite_argv(&command, "/", Path::new("/opt/bb"), Path::new("/crs"))
            .unwrap();
        let expected = [
            "/opt/bb",
            "-c",
            "/crs",
            "prove",
            "-b",
            "/data/sb/t1/root/work/in/p.json",
            "--output_path=/data/sb/t1/root/work/out",
            "-w/data/sb/t1/root/work/in/w.gz",
            "--disable_zk",
            "-k",
            "vk",
        ];
        assert_eq!(argv, expected);
    }

    #[test]
    fn gates_gets_the_crs_where_bb_5_accepts_it_and_legacy_after_the_command() {
        let sandbox = Sandbox::new(PathBuf::from("/sb"));
        let gates = strings(&["bb", "gates", "-b", "/in/p.json"]);
        let argv = sandbox
            .rewrite_argv(&gates, "/", Path::new("bb"), Path::new("/crs"))
            .unwrap();
        assert_eq!(
            argv,
            ["bb", "-c", "/crs", "gates", "-b", "/sb/root/in/p.json"]
        );
        let msgpack = strings(&["bb", "msgpack", "run", "--input", "/req/r"]);
        let argv = sandbox
            .rewrite_argv(&msgpack, "/", Path::new("bb"), Path::new("/crs"))
            .unwrap();
        assert_eq!(
            argv,
            [
                "bb",
                "-c",
                "/crs",
                "msgpack",
                "run",
                "--input",
                "/sb/root/req/r"
            ]
        );
        let legacy = strings(&["bb", "prove_ultra_honk", "-b", "/in/p.json"]);
        let argv = sandbox
            .rewrite_argv(&legacy, "/", Path::new("bb"), Path::new("/crs"))
            .unwrap();
        assert_eq!(
            argv,
            [
                "bb",
                "prove_ultra_honk",
                "-c",
                "/crs",
                "-b",
                "/sb/root/in/p.json"
            ]
        );
    }

    #[test]
    fn every_path_form_that_leaves_the_sandbox_is_refused_naming_the_argument() {
        let escapes = [
            (&["bb", "prove", "-o", "/work/../../../etc/x"][..], "/", 3),
            (
                &["bb", "write_solidity_verifier", "-o", "../../../tasks.redb"],
                "/",
                3,
            ),
            (&["bb", "prove", "-o", ".."], "/", 3),
            (&["bb", "prove", "-o/work/../../x"], "/", 2),
            (&["bb", "prove", "-o../../x"], "/work", 2),
            (&["bb", "prove", "--output_path=../../x"], "/work", 2),
            (
                &["bb", "prove", "--output_path", "a/../../../x"],
                "/work",
                3,
            ),
            (&["bb", "prove", "-b", "../../etc/passwd"], "/a", 3),
        ];
        let sandbox = Sandbox::new(PathBuf::from("/sb"));
        for (command, workdir, index) in escapes {
            let command = strings(command);
            let err = check_argv(&command, workdir, "executors[0].command").unwrap_err();
            let needle = format!("executors[0].command[{index}]");
            assert!(err.to_string().contains(&needle), "{command:?}: {err}");
            assert!(sandbox
                .rewrite_argv(&command, workdir, Path::new("bb"), Path::new("/c"))
                .is_err());
        }
        let inside = [
            (&["/bin/bb", "prove", "-o", "/work/out"][..], "/"),
            (&["bb", "prove", "-o", "../out"], "/work/sub"),
            (&["bb", "prove", "-o", "out/x", "-b", "program.json"], "/"),
            (&["bb", "prove", "--scheme=ultra_honk", "-vd"], "/"),
        ];
        for (command, workdir) in inside {
            assert!(
                check_argv(&strings(command), workdir, "c").is_ok(),
                "{command:?}"
            );
        }
    }

    #[test]
    fn relative_paths_stay_as_written() {
        let sandbox = Sandbox::new(PathBuf::from("/sb"));
        let command = strings(&["bb", "prove", "-o", "../out", "-b./p.json"]);
        let argv = sandbox
            .rewrite_argv(&command, "/work/sub", Path::new("bb"), Path::new("/c"))
            .unwrap();
        assert_eq!(
            argv,
            ["bb", "-c", "/c", "prove", "-o", "../out", "-b./p.json"]
        );
    }
}
