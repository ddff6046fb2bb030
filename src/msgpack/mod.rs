//! bb 5.x's msgpack API, served by the shim: `bb msgpack run --input <P>.sock`.
//!
//! Aztec 5.x provers never run `bb prove` with files; through `@aztec/bb.js` they
//! spawn `bb msgpack run --input <tmp>/bb-<pid>-<tid>-<n>.sock` and talk length-prefixed
//! msgpack over that Unix socket. With delegation configured the shim serves that
//! socket itself: `CircuitProve` and `AvmProve` go to the backend ([`delegate`]),
//! everything else is relayed byte for byte to one native `bb msgpack run` child
//! ([`native_child`]) through [`server`]. [`frame`] knows the framing and just enough
//! of the envelope; `grammar::msgpack_run` decides which invocations are served at all.
//!
//! Not for: `.shm` and stdin/file inputs, `msgpack schema` / `curve_constants`: those
//! exec the native bb as every other passthrough does.
pub(crate) mod delegate;
pub(crate) mod frame;
pub(crate) mod native_child;
pub(crate) mod parts;
mod record;
pub(crate) mod server;
mod socket;

use std::ffi::OsString;

use crate::config::{Env, Settings};

/// Serve `msgpack run --input <P>.sock` when argv is one; `None` for anything else.
pub(crate) fn intercept(settings: &Settings, env: &Env, argv: &[OsString]) -> Option<u8> {
    let socket = crate::grammar::msgpack_run::socket_input(argv.get(1..).unwrap_or_default())?;
    set_parent_death_signal();
    let runtime = match crate::delegate::runtime() {
        Ok(rt) => rt,
        Err(err) => {
            crate::diag::error(&format_args!("starting the async runtime: {err}"));
            return Some(crate::exit::IO);
        }
    };
    let local = tokio::task::LocalSet::new();
    Some(local.block_on(&runtime, server::serve(&socket, settings, env.clone())))
}

/// As bb does: when the parent (bb.js's Node process) dies, we get SIGTERM.
fn set_parent_death_signal() {
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes plain integers and touches no memory of
    // ours; it only changes which signal this process receives when its parent exits.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM as libc::c_ulong);
    }
}
