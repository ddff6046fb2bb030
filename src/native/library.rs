//! The one place that loads native code at run time.
//!
//! One struct owns the library and the resolved entry point; the symbol is resolved
//! when loading, so a missing symbol fails before anything runs. The library is never
//! unloaded: bb may register atexit handlers that point into it.

use super::NativeError;
use std::ffi::{c_char, c_int, CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `int bb_main(int argc, char **argv)`
type BbMain = unsafe extern "C" fn(c_int, *mut *mut c_char) -> c_int;

pub(super) struct BbLibrary {
    entry: BbMain,
    symbol: String,
}

impl BbLibrary {
    pub(super) fn load(path: &Path, symbol: &str) -> Result<Self, NativeError> {
        // SAFETY: loading a library runs its initialisers. The operator chose this file
        // as their native bb; running its code is the purpose of passthrough.
        let lib = unsafe { libloading::Library::new(path) }.map_err(|e| NativeError::Load {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        // SAFETY: the symbol's type is bb_main's documented C signature; a library that
        // exports the name with another signature is outside what we can check.
        let entry = unsafe { lib.get::<BbMain>(symbol.as_bytes()) }
            .map(|sym| *sym)
            .map_err(|e| NativeError::MissingSymbol {
                path: path.to_owned(),
                symbol: symbol.to_owned(),
                reason: e.to_string(),
            })?;
        // Keep the code mapped for the rest of the process (see module docs).
        std::mem::forget(lib);
        Ok(Self {
            entry,
            symbol: symbol.to_owned(),
        })
    }

    /// Call the entry point with `argv` exactly as given (argv[0] included).
    pub(super) fn call_main(&self, argv: &[OsString]) -> Result<c_int, NativeError> {
        let owned: Vec<CString> = argv
            .iter()
            .enumerate()
            .map(|(index, a)| {
                CString::new(a.as_bytes()).map_err(|_| NativeError::NulInArgument {
                    index,
                    symbol: self.symbol.clone(),
                })
            })
            .collect::<Result<_, _>>()?;
        // C's argv: mutable pointers, terminated by NULL, as main() receives them.
        let mut ptrs: Vec<*mut c_char> = owned.iter().map(|s| s.as_ptr().cast_mut()).collect();
        ptrs.push(std::ptr::null_mut());
        let argc = c_int::try_from(owned.len()).expect("argc fits in a C int");
        // SAFETY: `ptrs` is a NULL-terminated array of NUL-terminated strings that
        // outlive the call (`owned` is alive until the end of this function).
        Ok(unsafe { (self.entry)(argc, ptrs.as_mut_ptr()) })
    }
}

/// Flush every C stdio stream, as `exit()` would, before we exit from Rust.
pub(super) fn flush_c_stdio() {
    // SAFETY: fflush(NULL) is defined to flush all open output streams.
    unsafe {
        libc::fflush(std::ptr::null_mut());
    }
}
