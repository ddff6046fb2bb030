//! Which paths a task uses inside the container (the executor's bb, CRS and forwarded
//! variables are settings: `config::remote_side`).
//!
//! Where it can be done exactly, the container sees the caller's own paths
//! (inputs at their absolute paths, the output directory where the caller named it,
//! bb's working directory the caller's), and argv keeps the caller's spelling. bb's
//! messages then name the caller's paths, byte for byte. When a path cannot be used
//! as a container path on every engine (see [`caller_paths_usable`]), the task falls
//! back to the fixed `/bb-remote/...` layout.
use std::path::{Component, Path};

use crate::config::RemoteSide;
use crate::route::{InputSource, Plan};

/// Container paths the task never uses for the caller's files: an image's own
/// directories, and the task's bookkeeping directory.
const RESERVED: &[&str] = &[
    "/bb-remote",
    "/bin",
    "/boot",
    "/crs",
    "/dev",
    "/etc",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/proc",
    "/root",
    "/run",
    "/sbin",
    "/sys",
    "/usr",
];

/// Whether the caller's paths can be the container's: every input, the output
/// directory and the working directory are absolute, UTF-8, without `..`, spaces,
/// control characters or `:` (docker's volume syntax), outside [`RESERVED`] and the
/// executor's own bb and CRS, and no input is the output directory or above it.
pub(crate) fn caller_paths_usable(plan: &Plan, cwd: &Path, side: &RemoteSide) -> bool {
    let Some(cwd) = cwd.to_str() else {
        return false;
    };
    let mut reserved: Vec<&str> = RESERVED.to_vec();
    reserved.extend(side.crs.as_deref());
    if side.bb.starts_with('/') {
        reserved.push(&side.bb);
    }
    let usable = |path: &str| {
        path.starts_with('/')
            && path != "/"
            && !path
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == ':')
            && Path::new(path)
                .components()
                .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
            && !reserved.iter().any(|r| within(path, r))
    };
    let out = plan.output_dir.path.as_str();
    usable(cwd)
        && usable(out)
        && plan.inputs.iter().all(|input| {
            usable(&input.path)
                && !within(out, &input.path)
                && (input.source == InputSource::Implicit || given_is_clean(&input.given))
        })
        && given_is_clean(&plan.output_dir.given)
}

/// `path` is `base` or below it.
fn within(path: &str, base: &str) -> bool {
    let base = base.trim_end_matches('/');
    path == base || path.strip_prefix(base).is_some_and(|r| r.starts_with('/'))
}

/// A given path that names the same file from the caller's working directory on the
/// remote side: no `..` (it may cross a symlink that does not exist there).
fn given_is_clean(given: &str) -> bool {
    !given.is_empty()
        && Path::new(given)
            .components()
            .all(|c| !matches!(c, Component::ParentDir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_is_by_component() {
        assert!(within("/usr/bin", "/usr"));
        assert!(within("/usr", "/usr/"));
        assert!(!within("/usrx", "/usr"));
    }
}
