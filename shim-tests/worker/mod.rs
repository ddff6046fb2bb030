//! `bb-remote worker`, the reference TES backend, as a real process over HTTP.
//! Fast tests use a shell-script fake bb; `proving` runs the real bb from the test bed.
mod api;
mod crash_upload;
mod enospc;
pub(crate) mod harness;
mod lifecycle;
pub(crate) mod long_poll;
mod proving;
mod retention;
mod security;
