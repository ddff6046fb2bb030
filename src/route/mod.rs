//! Routing: where a parsed bb invocation runs, and the plan for running it remotely.
//!
//! API (consumed by the shim and the delegation):
//! - [`route`]`(&Invocation, &DelegateSet, cwd) -> Route`: [`Route::Remote`]
//!   with a [`Plan`], or [`Route::Native`] with a [`NativeReason`] (stable
//!   [`NativeCode`] + message). No I/O: relative paths are joined to `cwd`, nothing is
//!   opened, canonicalised or checked for existence.
//! - [`Plan`]: versioned JSON ([`PLAN_VERSION`]); inputs with roles, sources
//!   (flag / env / default / implicit) and whether every bb release reads them; the
//!   output directory; the argv template with [`ArgTemplate`] placeholders.
//! - [`Plan::render_argv`] with a [`PathMapping`] (input index -> path, output dir
//!   -> path) turns the template back into argv, e.g. with a worker's sandbox paths.
//!   Implicit inputs (`source: implicit`, `prove_tube`) are not on the argv: place
//!   them inside the mapped output directory under their `given` file name.
//! - [`DelegateSet`]: the default heavy set per grammar, or `BB_REMOTE_DELEGATE`
//!   (a setting: defined and parsed in `config`).
//!
//! What goes native, and why (each is a [`NativeCode`]): anything bb rejects or
//! answers with help/version; commands outside the delegated set; commands that
//! write single files or stdout (`-o -`); schemes other than `ultra_honk`; legacy
//! tokens bb ignores but that are not empty (`''` is fine: old clients send it);
//! legacy argv where a token is both an option and a value; options that write
//! files outside `-o` (`--avm-dump-trace`, `--bench_out`, ...). `--output_format json`
//! is delegated: it only changes which files appear inside `-o`.
//!
//! `prove_tube` inputs per release, listed as implicit candidates (the shim uploads
//! whichever exist): `client_ivc_proof` (all legacy, required); `inst_vk`
//! (0.47.1-0.54); `final_decider_vk` (0.55-0.62); `pg_acc` (0.47.1-0.62); `mega_vk`
//! (0.63.1-0.64); `translator_vk`, `ecc_vk` (0.47.1-0.64); `client_ivc_vk`
//! (0.65-0.76.4). Modern 0.77-2.x: `proof` inside `-o` (required) plus the `-k` file.

mod build;
mod cli;
mod plan;
mod verdict;

pub use crate::config::{DelegateSet, LEGACY_DEFAULT, MODERN_DEFAULT};
pub use cli::{run_cli, RouteArgs};
pub use plan::{
    ArgTemplate, InputSource, PathMapping, Plan, PlanInput, PlanOutputDir, RenderError,
    PLAN_VERSION,
};
pub use verdict::{route, NativeCode, NativeReason, Route};

/// The msgpack requests delegated (the rest are relayed to a native bb):
/// self-contained (apart from the CRS) and heavy.
pub(crate) const MSGPACK_DELEGATED: &[&str] = &["CircuitProve", "AvmProve"];
