//! The shim against a real Funnel (GA4GH TES engine), no reference-worker extension
//! in play. See `harness.rs` for what is real and what is a test double.
pub mod harness;
mod lifecycle;
mod proving;
mod slurm;
