//! bb-remote: a drop-in `bb` that delegates heavy proving to a remote backend.
//!
//! Layout (each module's docs say more):
//! - [`grammar`]: bb's argv grammars (legacy and modern) as data; a faithful, I/O-free parse.
//! - [`route`]: the verdict for a parsed invocation: `Remote(plan)` or `Native(reason)`.
//! - [`native`]: passthrough to the native bb (exec or dlopen).
//! - [`record`]: record and replay (CI fixtures) and `bb-remote fixtures`.
//! - [`shim`]: the `bb` binary's main: environment → parse → route → run.
//! - [`store`]: content-addressed object storage (object_store).
//! - [`tes`]: GA4GH TES v1.1 types.
//! - `worker`: the reference TES proving backend (`bb-remote worker`); only with the
//!   `worker` cargo feature (default), so the `bb` shim can be built without it.
//! - [`doctor`]: `bb-remote doctor`, which checks configuration, store, backend and
//!   native bb and says what is wrong.
//! - [`msgpack`]: bb 5.x's `msgpack run` socket server (the Aztec 5.x prover's path).
//!
//! `unsafe` code lives in four places only, each block with a `SAFETY` comment:
//! - [`native`]'s `library.rs`: dlopen a libbb, resolve `bb_main` and call it with a C
//!   argv (the single-process passthrough has no other way to run bb);
//! - `worker::process`: `prctl(PR_SET_PDEATHSIG)` in the forked child and `kill` of
//!   the child's process group (std has no safe wrapper for either);
//! - [`record`]'s `child.rs`: `kill` to forward SIGINT/SIGTERM to the native bb child
//!   being recorded, and to stop the msgpack server's native child (`doctor` checks a
//!   libbb through `native`'s loader);
//! - [`msgpack`]: `prctl(PR_SET_PDEATHSIG)` on the serving shim, as bb sets it.

pub mod config;
pub(crate) mod delegate;
pub(crate) mod diag;
pub use diag::tool_error;
pub mod doctor;
pub mod env_vars;
pub(crate) mod error;
pub mod exit;
pub mod grammar;
pub(crate) mod logging;
pub(crate) mod msgpack;
pub(crate) mod native;
pub mod record;
pub(crate) mod redact;
pub mod route;
pub mod shim;
pub mod store;
pub mod tes;
#[cfg(feature = "worker")]
pub mod worker;
