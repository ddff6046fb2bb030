//! A task's sandbox: the directory that stands in for the container's file system.
//!
//! TES executors name absolute container paths (`/work/in/program.json`); the worker
//! runs bb as a local process, so each such path maps to `<sandbox>/root/<path>`.
//! Paths are checked lexically (absolute, no `..`) both when a task is created and
//! when it runs, so nothing a task names can resolve outside its sandbox.
//!
//! The argv rule: any argument that starts with `/`, and the value of any
//! `--option=/path`, is a container path and is mapped. `command[0]` is replaced by the
//! image's bb binary, and the worker's CRS directory is passed as `-c` right after the
//! subcommand (any `-c`/`--crs_path` the task gave is dropped, so tasks never fetch or
//! choose a CRS). Both bb grammars accept `-c` there: modern bb declares it on each
//! subcommand, legacy bb scans the whole argv for it.
use std::path::{Component, Path, PathBuf};

/// A container path the worker will not map.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("{what} {path:?} is not an absolute container path")]
    NotAbsolute { what: String, path: String },
    #[error("{what} {path:?} escapes the sandbox (`..` is not allowed)")]
    Escapes { what: String, path: String },
    #[error("{what} {path:?} names the container root, not a file or directory under it")]
    IsRoot { what: String, path: String },
}

/// The relative path under the sandbox root for an absolute container path.
/// `what` names the field in errors (e.g. `inputs[2].path`).
pub fn container_relative(path: &str, what: &str) -> Result<PathBuf, PathError> {
    let err_fields = || (what.to_owned(), path.to_owned());
    if !path.starts_with('/') || path.contains('\0') {
        let (what, path) = err_fields();
        return Err(PathError::NotAbsolute { what, path });
    }
    let mut relative = PathBuf::new();
    for component in Path::new(path).components() {
        match component {
            Component::Normal(part) => relative.push(part),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                let (what, path) = err_fields();
                return Err(PathError::Escapes { what, path });
            }
        }
    }
    if relative.as_os_str().is_empty() {
        let (what, path) = err_fields();
        return Err(PathError::IsRoot { what, path });
    }
    Ok(relative)
}

/// Check every container path an executor's argv names (same rule as [`rewrite_argv`]).
pub fn check_argv(command: &[String], what: &str) -> Result<(), PathError> {
    for (i, arg) in command.iter().enumerate().skip(1) {
        if let Some(path) = container_path_in_arg(arg) {
            if path != "/" {
                container_relative(path, &format!("{what}[{i}]"))?;
            }
        }
    }
    Ok(())
}

/// The container path an argument names, if any: the whole argument, or the value of
/// `--option=/path`.
fn container_path_in_arg(arg: &str) -> Option<&str> {
    if arg.starts_with('/') {
        return Some(arg);
    }
    let (option, value) = arg.split_once('=')?;
    (option.starts_with('-') && value.starts_with('/')).then_some(value)
}

/// One task's sandbox directory.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// `<data-dir>/sandboxes/<task id>`; removed when the task ends.
    pub dir: PathBuf,
}

impl Sandbox {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    /// The directory that plays the container's `/`.
    pub fn root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// Where the executor's own stdout/stderr are captured (outside `root`).
    pub fn capture_path(&self, stream: &str) -> PathBuf {
        self.dir.join(format!("{stream}.log"))
    }

    /// The host path for a container path.
    pub fn map(&self, container_path: &str, what: &str) -> Result<PathBuf, PathError> {
        Ok(self.root().join(container_relative(container_path, what)?))
    }

    /// The argv to run: `bb` for `command[0]`, container paths mapped, and the worker's
    /// CRS directory as `-c` after the subcommand.
    pub fn rewrite_argv(
        &self,
        command: &[String],
        bb: &Path,
        crs_dir: &Path,
    ) -> Result<Vec<String>, PathError> {
        let mut argv = vec![bb.display().to_string()];
        let mut args = command.iter().skip(1).peekable();
        let mut pushed_subcommand = false;
        while let Some(arg) = args.next() {
            if arg == "-c" || arg == "--crs_path" {
                args.next();
                continue;
            }
            if arg.starts_with("--crs_path=") {
                continue;
            }
            argv.push(self.rewrite_arg(arg)?);
            if !pushed_subcommand {
                pushed_subcommand = true;
                argv.push("-c".into());
                argv.push(crs_dir.display().to_string());
            }
        }
        Ok(argv)
    }

    fn rewrite_arg(&self, arg: &str) -> Result<String, PathError> {
        let Some(path) = container_path_in_arg(arg) else {
            return Ok(arg.to_owned());
        };
        let prefix = &arg[..arg.len() - path.len()];
        let mapped = if path == "/" {
            self.root()
        } else {
            self.map(path, "argument")?
        };
        Ok(format!("{prefix}{}", mapped.display()))
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
        let bad = [
            ("work/in", "not an absolute"),
            ("/work/../../etc", "escapes"),
            ("/", "container root"),
        ];
        for (path, msg) in bad {
            let err = container_relative(path, "inputs[0].path")
                .unwrap_err()
                .to_string();
            assert!(err.contains(msg) && err.contains("inputs[0].path"), "{err}");
        }
    }

    #[test]
    fn argv_maps_paths_and_pins_the_crs() {
        let sandbox = Sandbox::new(PathBuf::from("/data/sb/t1"));
        let command = strings(&[
            "bb",
            "prove",
            "-b",
            "/work/in/p.json",
            "-c",
            "/home/x/.bb-crs",
            "--output_path=/work/out",
            "--disable_zk",
            "--crs_path=/elsewhere",
        ]);
        let argv = sandbox
            .rewrite_argv(&command, Path::new("/opt/bb"), Path::new("/crs"))
            .unwrap();
        let expected = [
            "/opt/bb",
            "prove",
            "-c",
            "/crs",
            "-b",
            "/data/sb/t1/root/work/in/p.json",
            "--output_path=/data/sb/t1/root/work/out",
            "--disable_zk",
        ];
        assert_eq!(argv, expected);
    }

    #[test]
    fn argv_with_an_escaping_path_is_refused() {
        let command = strings(&["bb", "prove", "-o", "/work/../../../etc/x"]);
        let err = check_argv(&command, "executors[0].command").unwrap_err();
        assert!(err.to_string().contains("executors[0].command[3]"), "{err}");
        let sandbox = Sandbox::new(PathBuf::from("/sb"));
        assert!(sandbox
            .rewrite_argv(&command, Path::new("bb"), Path::new("/c"))
            .is_err());
        assert!(check_argv(&strings(&["bb", "prove", "--x=/a/../b"]), "c").is_err());
        assert!(check_argv(&strings(&["/bin/bb", "prove", "-o", "/work/out"]), "c").is_ok());
    }
}
