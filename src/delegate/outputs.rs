//! Output names coming back from a backend are untrusted: validate before touching disk.

use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("backend returned an unsafe output name {name:?}: {why}")]
pub struct UnsafeName {
    pub name: String,
    pub why: &'static str,
}

/// A relative output name that stays inside the output directory: plain components
/// only (no `..`, no `.`, no root, no empty name, no NUL).
pub fn validate(name: &str) -> Result<PathBuf, UnsafeName> {
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

/// Refuse to write through a symbolic link already in the output directory: a link
/// planted at `proof` must not redirect the proof elsewhere.
pub fn check_not_link(dest: &Path) -> Result<(), UnsafeName> {
    match std::fs::symlink_metadata(dest) {
        Ok(meta) if meta.file_type().is_symlink() => Err(UnsafeName {
            name: dest.display().to_string(),
            why: "the destination is a symbolic link",
        }),
        _ => Ok(()),
    }
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
    fn links_at_the_destination_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("proof");
        std::os::unix::fs::symlink("/tmp/elsewhere", &link).unwrap();
        assert!(check_not_link(&link).is_err());
        assert!(check_not_link(&dir.path().join("vk")).is_ok());
    }
}
