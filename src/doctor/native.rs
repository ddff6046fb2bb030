//! `native`: find the native bb as passthrough would, then prove it is usable without
//! running a real command: an executable answers `--version`; a library is loaded and
//! its entry symbol resolved, but never called (calling it would run bb in-process).

use std::path::Path;
use std::process::Stdio;

use super::{Check, Status, CHECK_TIMEOUT};
use crate::config::Env;
use crate::env_vars;
use crate::native::{locate, NativeTarget};

pub(crate) async fn check_native(env: &Env, shim_exe: Option<&Path>) -> Check {
    let target = match locate(env, shim_exe) {
        Ok(target) => target,
        Err(err) => return Check::new("native", Status::Fail, err.to_string()),
    };
    match &target {
        NativeTarget::Bin { path, found_via } => match bin_version(path).await {
            Ok(version) => Check::new(
                "native",
                Status::Ok,
                format!(
                    "{} (from {found_via}): `--version` says {version}",
                    path.display()
                ),
            ),
            Err(why) => Check::new(
                "native",
                Status::Fail,
                format!(
                    "{} (from {found_via}): {why} - set {} to the real bb executable",
                    path.display(),
                    env_vars::NATIVE_BIN
                ),
            ),
        },
        NativeTarget::Lib {
            path,
            symbol,
            found_via,
        } => match resolve_symbol(path, symbol) {
            Ok(()) => Check::new(
                "native",
                Status::Ok,
                format!(
                    "{} (from {found_via}): library loads and `{symbol}` resolves (not called)",
                    path.display()
                ),
            ),
            Err(why) => Check::new(
                "native",
                Status::Fail,
                format!(
                    "{} (from {found_via}): {why} - set {} to a libbb exporting `{symbol}` \
                     (or {} to the symbol's name)",
                    path.display(),
                    env_vars::NATIVE_LIB,
                    env_vars::NATIVE_SYMBOL
                ),
            ),
        },
    }
}

/// Run `<bin> --version` (bounded) and return its first line of output.
async fn bin_version(path: &Path) -> Result<String, String> {
    let mut command = tokio::process::Command::new(path);
    command
        .arg(crate::grammar::VERSION_FLAG)
        // A native that is secretly another shim stops at once instead of looping.
        .env(env_vars::RECURSION_GUARD, "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = command.spawn().map_err(|e| format!("cannot run it: {e}"))?;
    let output = tokio::time::timeout(CHECK_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            format!(
                "`--version` gave no answer within {} s",
                CHECK_TIMEOUT.as_secs()
            )
        })?
        .map_err(|e| format!("running `--version` failed: {e}"))?;
    let first_line = |bytes: &[u8]| {
        String::from_utf8_lossy(bytes)
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_owned)
    };
    match (output.status.success(), first_line(&output.stdout)) {
        (true, Some(version)) => Ok(version),
        (true, None) => Err("`--version` printed nothing".to_owned()),
        (false, _) => Err(format!(
            "`--version` failed ({}): {}",
            output.status,
            first_line(&output.stderr)
                .or_else(|| first_line(&output.stdout))
                .unwrap_or_else(|| "no output".to_owned())
        )),
    }
}

/// dlopen `path` and look `symbol` up, as passthrough would, without calling it.
fn resolve_symbol(path: &Path, symbol: &str) -> Result<(), String> {
    // The passthrough loader itself, so doctor checks exactly what bb would hit.
    crate::native::check_library(path, symbol).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, body: &str) -> std::path::PathBuf {
        let path = dir.join("bb.native");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn bin_env(path: &Path) -> Env {
        Env::from_pairs([(env_vars::NATIVE_BIN, path.to_str().unwrap())])
    }

    #[tokio::test]
    async fn version_line_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let bin = script(dir.path(), "echo; echo \"9.9.9-test $1\"");
        let check = check_native(&bin_env(&bin), None).await;
        assert_eq!(check.status, Status::Ok, "{check:?}");
        assert!(
            check.summary.contains("says 9.9.9-test --version")
                && check.summary.contains("from BB_REMOTE_NATIVE_BIN"),
            "{check:?}"
        );
    }

    #[tokio::test]
    async fn a_failing_or_missing_binary_fails_naming_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let bin = script(dir.path(), "echo broken install >&2; exit 3");
        let check = check_native(&bin_env(&bin), None).await;
        assert_eq!(check.status, Status::Fail, "{check:?}");
        assert!(
            check.summary.contains("broken install") && check.summary.contains("NATIVE_BIN"),
            "{check:?}"
        );
        let check = check_native(&bin_env(&dir.path().join("absent")), None).await;
        assert_eq!(check.status, Status::Fail);
        assert!(check.summary.contains("BB_REMOTE_NATIVE_BIN"), "{check:?}");
    }

    #[tokio::test]
    async fn nothing_found_names_both_variables() {
        let dir = tempfile::tempdir().unwrap();
        let shim = dir.path().join("bb");
        std::fs::write(&shim, b"shim").unwrap();
        let check = check_native(&Env::default(), Some(&shim)).await;
        assert_eq!(check.status, Status::Fail);
        assert!(
            check.summary.contains("BB_REMOTE_NATIVE_BIN")
                && check.summary.contains("BB_REMOTE_NATIVE_LIB"),
            "{check:?}"
        );
    }

    #[tokio::test]
    async fn a_library_is_loaded_and_its_symbol_checked_without_a_call() {
        // libc is always loadable: `getpid` resolves, a made-up name does not.
        let libc = "libc.so.6";
        let env = |symbol: &str| {
            Env::from_pairs([
                (env_vars::NATIVE_LIB, libc),
                (env_vars::NATIVE_SYMBOL, symbol),
            ])
        };
        let check = check_native(&env("getpid"), None).await;
        assert_eq!(check.status, Status::Ok, "{check:?}");
        let check = check_native(&env("no_such_bb_main"), None).await;
        assert_eq!(check.status, Status::Fail, "{check:?}");
        assert!(check.summary.contains("no_such_bb_main"), "{check:?}");
        let missing = Env::from_pairs([(env_vars::NATIVE_LIB, "/nonexistent/libbb.so")]);
        let check = check_native(&missing, None).await;
        assert_eq!(check.status, Status::Fail);
        assert!(check.summary.contains("cannot load library"), "{check:?}");
    }
}
