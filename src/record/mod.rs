//! Record and replay (CI fixtures): `BB_REMOTE_RECORD=<dir>` writes every invocation
//! (delegated or native) as a fixture; `BB_REMOTE_REPLAY=<dir>` answers recorded
//! invocations from them with no backend and no native bb.
//!
//! Layout:
//! - [`format`]: the fixture directory (versioned JSON records, content-addressed
//!   blobs, temp + rename writes);
//! - [`plan`]: which plan (and so which invocation key, `delegate::key`) an
//!   invocation is filed under - shared by recorder and replayer;
//! - [`recorder`]: record a delegated run (a transport wrapper) or a native one
//!   ([`child`]: bb as a tee'd child process);
//! - [`replay`]: the replay [`crate::delegate::transport::Transport`], driven by the
//!   same `delegate::execute_plan` as remote execution;
//! - [`fixtures`]: `bb-remote fixtures list|show|verify|prune`.
//!
//! Not here: anything when neither variable is set. [`intercept`] is two environment
//! lookups, so passthrough stays cheap.
pub mod child;
pub mod fixtures;
pub mod format;
pub mod plan;
pub mod recorder;
pub mod replay;

use std::ffi::OsString;

use crate::config::{Env, Settings};
use crate::delegate::exit_code_of;
use crate::shim::{passthrough, report, runtime};

/// One shim invocation: its settings, environment and argv (argv[0] included).
pub struct Shim<'a> {
    pub settings: &'a Settings,
    pub env: &'a Env,
    pub argv: &'a [OsString],
}

/// The shim's record/replay hook: `Some(exit code)` when `BB_REMOTE_REPLAY` or
/// `BB_REMOTE_RECORD` handled the invocation, `None` to carry on as usual.
/// Replay wins when both are set (a replayed run has nothing new to record).
pub fn intercept(settings: &Settings, env: &Env, argv: &[OsString]) -> Option<u8> {
    let shim = Shim {
        settings,
        env,
        argv,
    };
    if let Some(dir) = &settings.replay {
        return Some(replay::run(settings, env, argv, dir));
    }
    let dir = settings.record.as_deref()?;
    Some(recorder::run(&shim, dir))
}
