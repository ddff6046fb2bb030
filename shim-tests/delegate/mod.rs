//! Delegation end to end: the `bb` shim sends heavy commands to a real
//! `bb-remote worker` through object storage and TES, and the caller sees what a
//! local bb would have written.
mod config;
mod faults;
pub mod harness;
mod legacy;
mod long_poll;
mod modern;
mod proxy;
mod sharing;
pub mod stderr_bytes;
mod stops;
