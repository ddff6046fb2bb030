//! bb-remote: a drop-in `bb` that delegates heavy proving to a remote backend.
//!
//! Layout (each module's docs say more):
//! - [`grammar`]: bb's argv grammars (legacy and modern) as data; a faithful, I/O-free parse.
//! - [`route`]: the verdict for a parsed invocation: `Remote(plan)` or `Native(reason)`.
//! - [`native`]: passthrough to the native bb (exec or dlopen). The only `unsafe` code.
//! - [`shim`]: the `bb` binary's main: environment → parse → route → run.
//! - [`store`]: content-addressed object storage (object_store).
//! - [`tes`]: GA4GH TES v1.1 types.
//! - [`worker`]: the reference TES proving backend (`bb-remote worker`).
#![warn(clippy::print_stdout)]

pub mod config;
pub mod delegate;
pub mod env_vars;
pub mod exit;
pub mod grammar;
pub mod native;
pub mod route;
pub mod shim;
pub mod store;
pub mod tes;
pub mod worker;
