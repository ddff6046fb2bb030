//! Finding the native bb: explicit variables first, then files beside the shim.

use super::NativeError;
use crate::env_vars;
use crate::env_vars::Env;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Default symbol resolved in a native library.
pub(super) const DEFAULT_SYMBOL: &str = "bb_main";
/// Names looked for in the shim's own directory when no variable is set.
pub(super) const LIB_BESIDE_SHIM: &str = "libbb.so";
pub(super) const BIN_BESIDE_SHIM: &str = "bb.native";

/// The native bb to hand an invocation to, and how it was found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum NativeTarget {
    /// Exec this executable; the process is replaced.
    Bin { path: PathBuf, found_via: String },
    /// dlopen this library and call `symbol(argc, argv)`.
    Lib {
        path: PathBuf,
        symbol: String,
        found_via: String,
    },
}

/// Resolve the native target. `shim_exe` is this process's executable (for discovery
/// beside it and for the guard against exec'ing ourselves); `None` disables both.
pub(crate) fn locate(env: &Env, shim_exe: Option<&Path>) -> Result<NativeTarget, NativeError> {
    locate_for(env, shim_exe, super::can_load_libraries())
}

/// [`locate`] for a shim that can (or, linked statically, cannot) load a library: a
/// static shim never picks a `libbb.so` beside it (`BB_REMOTE_NATIVE_LIB` is refused
/// by the configuration there).
fn locate_for(
    env: &Env,
    shim_exe: Option<&Path>,
    can_load_libraries: bool,
) -> Result<NativeTarget, NativeError> {
    let symbol = || {
        env.get(env_vars::NATIVE_SYMBOL)
            .unwrap_or(DEFAULT_SYMBOL)
            .to_owned()
    };
    match (env.get(env_vars::NATIVE_BIN), env.get(env_vars::NATIVE_LIB)) {
        (Some(_), Some(_)) => Err(NativeError::Conflict),
        (None, Some(lib)) => Ok(NativeTarget::Lib {
            path: lib.into(),
            symbol: symbol(),
            found_via: env_vars::NATIVE_LIB.to_owned(),
        }),
        (Some(bin), None) => {
            let path = PathBuf::from(bin);
            check_not_shim(&path, shim_exe, env_vars::NATIVE_BIN)?;
            Ok(NativeTarget::Bin {
                path,
                found_via: env_vars::NATIVE_BIN.to_owned(),
            })
        }
        (None, None) => {
            let dir = shim_exe.and_then(Path::parent);
            let beside = |name: &str| dir.map(|d| d.join(name)).filter(|p| p.exists());
            if let Some(path) = beside(LIB_BESIDE_SHIM).filter(|_| can_load_libraries) {
                return Ok(NativeTarget::Lib {
                    path,
                    symbol: symbol(),
                    found_via: "beside the shim".into(),
                });
            }
            if let Some(path) = beside(BIN_BESIDE_SHIM) {
                check_not_shim(&path, shim_exe, "the file beside the shim")?;
                return Ok(NativeTarget::Bin {
                    path,
                    found_via: "beside the shim".into(),
                });
            }
            let names: &[&str] = if can_load_libraries {
                &[LIB_BESIDE_SHIM, BIN_BESIDE_SHIM]
            } else {
                &[BIN_BESIDE_SHIM]
            };
            let looked = names
                .iter()
                .map(|n| dir.map_or_else(|| (*n).to_owned(), |d| d.join(n).display().to_string()))
                .collect();
            Err(NativeError::NotFound {
                looked,
                libraries: can_load_libraries,
            })
        }
    }
}

/// Refuse a native binary that is the very file this shim runs from.
fn check_not_shim(path: &Path, shim_exe: Option<&Path>, source: &str) -> Result<(), NativeError> {
    let meta = std::fs::metadata(path).map_err(|e| NativeError::Unusable {
        var: env_vars::NATIVE_BIN,
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    if let Some(shim) = shim_exe.and_then(|s| std::fs::metadata(s).ok()) {
        if meta.dev() == shim.dev() && meta.ino() == shim.ino() {
            return Err(NativeError::IsShim {
                path: path.to_owned(),
                source_of: source.to_owned(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().copied())
    }

    #[test]
    fn both_variables_is_a_conflict() {
        let e = env(&[
            (env_vars::NATIVE_BIN, "/bin/true"),
            (env_vars::NATIVE_LIB, "/x.so"),
        ]);
        assert!(matches!(locate(&e, None), Err(NativeError::Conflict)));
    }

    #[test]
    fn lib_variable_uses_default_or_overridden_symbol() {
        let e = env(&[(env_vars::NATIVE_LIB, "/x.so")]);
        let NativeTarget::Lib { symbol, .. } = locate(&e, None).unwrap() else {
            panic!()
        };
        assert_eq!(symbol, DEFAULT_SYMBOL);
        let e = env(&[
            (env_vars::NATIVE_LIB, "/x.so"),
            (env_vars::NATIVE_SYMBOL, "my_main"),
        ]);
        let NativeTarget::Lib { symbol, .. } = locate(&e, None).unwrap() else {
            panic!()
        };
        assert_eq!(symbol, "my_main");
    }

    #[test]
    fn empty_variables_count_as_unset_and_discovery_prefers_the_library() {
        let dir = tempfile::tempdir().unwrap();
        let shim = dir.path().join("bb");
        std::fs::write(&shim, b"shim").unwrap();
        let e = env(&[(env_vars::NATIVE_BIN, "")]);
        let err = locate(&e, Some(&shim)).unwrap_err().to_string();
        assert!(
            err.contains(env_vars::NATIVE_BIN) && err.contains(env_vars::NATIVE_LIB),
            "{err}"
        );
        std::fs::write(dir.path().join(BIN_BESIDE_SHIM), b"native").unwrap();
        assert!(matches!(
            locate(&e, Some(&shim)).unwrap(),
            NativeTarget::Bin { .. }
        ));
        std::fs::write(dir.path().join(LIB_BESIDE_SHIM), b"lib").unwrap();
        assert!(matches!(
            locate(&e, Some(&shim)).unwrap(),
            NativeTarget::Lib { .. }
        ));
    }

    #[test]
    fn a_static_shim_passes_over_a_library_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let shim = dir.path().join("bb");
        std::fs::write(&shim, b"shim").unwrap();
        std::fs::write(dir.path().join(LIB_BESIDE_SHIM), b"lib").unwrap();
        let e = Env::default();
        let err = locate_for(&e, Some(&shim), false).unwrap_err().to_string();
        assert!(
            err.contains(BIN_BESIDE_SHIM) && !err.contains(LIB_BESIDE_SHIM),
            "{err}"
        );
        // Nor does it suggest a library it would refuse.
        assert!(!err.contains(env_vars::NATIVE_LIB), "{err}");
        std::fs::write(dir.path().join(BIN_BESIDE_SHIM), b"native").unwrap();
        assert!(matches!(
            locate_for(&e, Some(&shim), false).unwrap(),
            NativeTarget::Bin { .. }
        ));
        assert!(matches!(
            locate_for(&e, Some(&shim), true).unwrap(),
            NativeTarget::Lib { .. }
        ));
    }

    #[test]
    fn refuses_the_shim_itself_even_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let shim = dir.path().join("bb");
        std::fs::write(&shim, b"shim").unwrap();
        let link = dir.path().join("other-name");
        std::fs::hard_link(&shim, &link).unwrap();
        let e = env(&[(env_vars::NATIVE_BIN, link.to_str().unwrap())]);
        assert!(matches!(
            locate(&e, Some(&shim)),
            Err(NativeError::IsShim { .. })
        ));
    }

    #[test]
    fn missing_binary_names_the_variable() {
        let e = env(&[(env_vars::NATIVE_BIN, "/definitely/not/here/bb")]);
        let err = locate(&e, None).unwrap_err().to_string();
        assert!(
            err.starts_with(env_vars::NATIVE_BIN) && err.contains("/definitely/not/here/bb"),
            "{err}"
        );
    }
}
