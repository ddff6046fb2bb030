//! Output names coming back from a backend (or a fixture) are untrusted: validate
//! before touching disk, and never write through a link inside the output directory.
//! Also: whether an output location is one bb would accept at all.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use crate::error::Error;
use crate::route::PlanOutputDir;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("backend returned an unsafe output name {name:?}: {why}")]
pub(crate) struct UnsafeName {
    pub(crate) name: String,
    pub(crate) why: &'static str,
}

/// A relative output name that stays inside the output directory: plain components
/// only (no `..`, no `.`, no root, no empty name, no NUL).
pub(crate) fn validate(name: &str) -> Result<PathBuf, UnsafeName> {
    let fail = |why| {
        Err(UnsafeName {
            name: name.to_owned(),
            why,
        })
    };
    if name.is_empty() {
        return fail("empty name");
    }
    if name.contains('\0') {
        return fail("contains a NUL byte");
    }
    let path = Path::new(name);
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => return fail("contains `..`"),
            Component::RootDir | Component::Prefix(_) => return fail("is absolute"),
            Component::CurDir => return fail("contains `.`"),
        }
    }
    if out.as_os_str().is_empty() {
        return fail("names no file");
    }
    Ok(out)
}

impl From<UnsafeName> for Error {
    fn from(err: UnsafeName) -> Self {
        Self::BadOutputs(crate::error::BadAnswer::UnsafeName {
            name: err.name,
            why: err.why,
        })
    }
}

/// Refuse to write through a symbolic link already in the output directory: a link
/// planted at `proof`, or at any directory between `out_dir` and it (`sub` of
/// `sub/vk`), must not redirect an output elsewhere. `relative` is a validated name.
/// Directories that do not exist yet are fine (they are made by [`make_parents`]).
pub(crate) fn check_no_links(out_dir: &Path, relative: &Path) -> Result<(), UnsafeName> {
    let refuse = |at: &Path, why| UnsafeName {
        name: at.display().to_string(),
        why,
    };
    let mut at = out_dir.to_path_buf();
    let mut parts = relative.components().peekable();
    while let Some(part) = parts.next() {
        at.push(part);
        let last = parts.peek().is_none();
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(refuse(&at, "a symbolic link inside the output directory"))
            }
            Ok(meta) if !last && !meta.is_dir() => {
                return Err(refuse(&at, "not a directory inside the output directory"))
            }
            Ok(meta) if last && meta.is_dir() => {
                return Err(refuse(&at, "the destination is a directory"))
            }
            // Absent: nothing below it exists either.
            Err(_) => return Ok(()),
            Ok(_) => {}
        }
    }
    Ok(())
}

/// Make the directories between `out_dir` and `relative`'s file, one level at a time,
/// refusing any link found on the way (checked again here, just before the rename).
pub(crate) fn make_parents(out_dir: &Path, relative: &Path) -> Result<(), Error> {
    let Some(parent) = relative.parent() else {
        return Ok(());
    };
    let mut at = out_dir.to_path_buf();
    for part in parent.components() {
        at.push(part);
        match std::fs::create_dir(&at) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(Error::local_io(format!("creating {}", at.display()), e)),
        }
        let meta = std::fs::symlink_metadata(&at)
            .map_err(|e| Error::local_io(format!("checking {}", at.display()), e))?;
        if !meta.is_dir() {
            return Err(UnsafeName {
                name: at.display().to_string(),
                why: "a symbolic link inside the output directory",
            }
            .into());
        }
    }
    check_no_links(out_dir, relative).map_err(Error::from)
}

/// Whether bb would accept `out` as its output location before proving. When it would
/// not (an existing file: bb aborts, 134; a directory it cannot write: bb fails, 1; a
/// legacy directory that does not exist), the native bb must answer with its own
/// message and code, so the call is not delegated.
pub(crate) fn output_dir_usable(out: &PlanOutputDir) -> bool {
    let path = Path::new(&out.path);
    match std::fs::metadata(path) {
        Ok(meta) => meta.is_dir() && writable(path),
        // Modern bb creates the directory: the nearest existing ancestor must let it.
        Err(_) if out.created_by_bb => path
            .ancestors()
            .skip(1)
            .find(|a| a.exists())
            .is_some_and(|a| a.is_dir() && writable(a)),
        Err(_) => false,
    }
}

/// access(2) with W_OK|X_OK: the kernel's own answer for this process (a read-only
/// mount, permissions, ACLs), the same one bb would get.
fn writable(dir: &Path) -> bool {
    let Ok(c_path) = CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access(2) only reads the NUL-terminated path, which lives across the call.
    unsafe { libc::access(c_path.as_ptr(), libc::W_OK | libc::X_OK) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_pass() {
        assert_eq!(validate("proof").unwrap(), PathBuf::from("proof"));
        assert_eq!(validate("sub/vk").unwrap(), PathBuf::from("sub/vk"));
    }

    #[test]
    fn escapes_are_refused() {
        for (name, why) in [
            ("../x", "contains `..`"),
            ("a/../../x", "contains `..`"),
            ("/etc/passwd", "is absolute"),
            ("", "empty name"),
            ("./proof", "contains `.`"),
            ("a\0b", "contains a NUL byte"),
        ] {
            assert_eq!(validate(name).unwrap_err().why, why, "{name:?}");
        }
    }

    #[test]
    fn links_anywhere_below_the_output_directory_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("proof")).unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("sub")).unwrap();
        std::fs::create_dir(dir.path().join("real")).unwrap();
        let check = |name: &str| check_no_links(dir.path(), Path::new(name));
        assert!(check("proof").is_err());
        assert_eq!(
            check("sub/vk").unwrap_err().why,
            "a symbolic link inside the output directory"
        );
        assert!(check("vk").is_ok() && check("real/vk").is_ok() && check("new/vk").is_ok());
        assert!(make_parents(dir.path(), Path::new("sub/vk")).is_err());
        make_parents(dir.path(), Path::new("a/b/vk")).unwrap();
        assert!(dir.path().join("a/b").is_dir());
        assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    }

    #[test]
    fn output_locations_bb_would_refuse_are_not_usable() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let out = |path: &Path, created_by_bb| PlanOutputDir {
            given: String::new(),
            path: path.display().to_string(),
            source: crate::route::InputSource::Flag,
            created_by_bb,
        };
        assert!(output_dir_usable(&out(dir.path(), false)));
        assert!(output_dir_usable(&out(
            &dir.path().join("new/deeper"),
            true
        )));
        assert!(!output_dir_usable(&out(&dir.path().join("new"), false)));
        assert!(!output_dir_usable(&out(&file, true)));
        assert!(!output_dir_usable(&out(&file.join("below"), true)));
    }
}
