//! Passthrough to the native bb: exec a binary, or dlopen a library and call `bb_main`.
//!
//! This is the whole behaviour of `bb` while nothing is delegated, so it must stay
//! cheap: a few environment reads, one `stat` for discovery, then exec or the call.
//! No async runtime, no parsing of bb's argv, no network.

mod discover;
mod library;

pub(crate) use discover::{locate, NativeTarget};

/// Whether this process can load a libbb. Not in a statically linked shim (the fast
/// passthrough build, `scripts/build-shim`): glibc's `dlopen` there would bring a
/// second libc into the process (the libbb TEST DOUBLE crashes with SIGSEGV), so that
/// build runs only an executable. A process with a dynamic loader has its address in
/// the auxiliary vector (`AT_BASE`); a static one has 0.
pub(crate) fn can_load_libraries() -> bool {
    // SAFETY: getauxval only reads the auxiliary vector the kernel gave this process.
    unsafe { libc::getauxval(libc::AT_BASE) != 0 }
}

use crate::env_vars;
use crate::env_vars::Env;
use std::ffi::OsString;
use std::path::PathBuf;

/// The second way out of [`NativeError::NotFound`], offered only by a shim that can
/// load a library.
fn library_hint(libraries: bool) -> String {
    match libraries {
        true => format!(" or {} to a libbb shared library", env_vars::NATIVE_LIB),
        false => String::new(),
    }
}

/// Why the native bb could not be run. Each maps to [`crate::exit::NATIVE_MISSING`]
/// except [`NativeError::Conflict`], which is a configuration error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NativeError {
    #[error(
        "no native bb found: set {bin} to the native bb executable{lib} \
         (looked beside the shim for {looked})",
        bin = env_vars::NATIVE_BIN,
        lib = library_hint(*.libraries),
        looked = .looked.join(" and ")
    )]
    NotFound {
        looked: Vec<String>,
        /// Whether this shim can load a libbb (not when linked statically), so whether
        /// to suggest one.
        libraries: bool,
    },
    #[error("{var}={path}: {reason}", path = .path.display())]
    Unusable {
        var: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error(
        "{path} is this shim itself (found via {source_of}); point it at the real bb, e.g. bb.native",
        path = .path.display()
    )]
    IsShim { path: PathBuf, source_of: String },
    #[error(
        "the native bb handed control back to a bb-remote shim ({guard} is set): {hint}",
        guard = env_vars::RECURSION_GUARD
    )]
    Recursion { hint: String },
    #[error(
        "both {} and {} are set; set only one",
        env_vars::NATIVE_BIN,
        env_vars::NATIVE_LIB
    )]
    Conflict,
    #[error("{path}: cannot load library: {reason}", path = .path.display())]
    Load { path: PathBuf, reason: String },
    #[error("{path}: symbol `{symbol}` not found: {reason}", path = .path.display())]
    MissingSymbol {
        path: PathBuf,
        symbol: String,
        reason: String,
    },
    #[error("{path}: cannot exec: {reason}", path = .path.display())]
    Exec { path: PathBuf, reason: String },
    #[error("argument {index} contains a NUL byte and cannot be passed to {symbol}")]
    NulInArgument { index: usize, symbol: String },
}

/// Run the native bb with `argv` (argv[0] included) and return its exit status.
///
/// For [`NativeTarget::Bin`] this only returns on failure: the process is replaced.
pub(crate) fn run(target: &NativeTarget, argv: &[OsString]) -> Result<u8, NativeError> {
    match target {
        NativeTarget::Bin { path, .. } => Err(exec(path, argv)),
        NativeTarget::Lib { path, symbol, .. } => {
            let lib = library::BbLibrary::load(path, symbol)?;
            let status = lib.call_main(argv)?;
            // bb's C stdio may hold buffered output; flush it as a process exit would.
            library::flush_c_stdio();
            // exit() semantics: only the low 8 bits survive.
            Ok((status & 0xff) as u8)
        }
    }
}

/// Replace this process with the native binary. Returns only if exec failed.
fn exec(path: &std::path::Path, argv: &[OsString]) -> NativeError {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(path);
    if let Some((arg0, rest)) = argv.split_first() {
        cmd.arg0(arg0).args(rest);
    }
    // Marks the child so that a native that is secretly another shim stops instead of looping.
    cmd.env(env_vars::RECURSION_GUARD, "1");
    let err = cmd.exec();
    NativeError::Exec {
        path: path.to_owned(),
        reason: err.to_string(),
    }
}

/// Load the library and resolve its entry point without calling it (for `doctor`):
/// the same checks passthrough makes before it runs anything.
pub(crate) fn check_library(path: &std::path::Path, symbol: &str) -> Result<(), NativeError> {
    library::BbLibrary::load(path, symbol).map(drop)
}

/// Locate the native bb from the environment and run it; the shim's passthrough path.
pub(crate) fn passthrough(env: &Env, argv: &[OsString]) -> Result<u8, NativeError> {
    if env.get(env_vars::RECURSION_GUARD).is_some() {
        return Err(NativeError::Recursion {
            hint: format!(
                "{} or {} points at a bb-remote shim, not at the real bb",
                env_vars::NATIVE_BIN,
                env_vars::NATIVE_LIB
            ),
        });
    }
    let target = locate(env, std::env::current_exe().ok().as_deref())?;
    run(&target, argv)
}
