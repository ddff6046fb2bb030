//! Record and replay (CI fixtures): `BB_REMOTE_RECORD=<dir>` writes every invocation
//! (delegated or native) as a fixture; `BB_REMOTE_REPLAY=<dir>` answers recorded
//! invocations from them with no backend and no native bb.
//!
//! Layout:
//! - [`format`]: the fixture directory (versioned JSON records, content-addressed
//!   blobs, temp + rename writes);
//! - [`plan`]: which plan (and so which invocation key, `delegate::key`) an
//!   invocation is filed under - shared by recorder and replayer;
//! - [`recorder`]: record a delegated run (the [`recorder::Recording`] transport
//!   decorator) or a native one ([`child`]: bb as a tee'd child process);
//! - [`replay`]: the replay [`crate::delegate::transport::Transport`], driven by the
//!   same `delegate::drive` as remote execution;
//! - [`fixtures`]: `bb-remote fixtures list|show|verify|prune`.
//!
//! Which mode runs is the shim's decision (`shim.rs`); nothing here calls back up.
pub(crate) mod child;
mod fixture_dir;
pub mod fixtures;
pub(crate) mod format;
pub(crate) mod plan;
pub(crate) mod recorder;
pub(crate) mod replay;
