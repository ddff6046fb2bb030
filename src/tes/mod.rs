//! GA4GH Task Execution Service (TES) v1.1: the wire protocol between the shim and a
//! proving backend (the reference `bb-remote worker`, Funnel, TESK, TES on Azure).
//!
//! - [`types`]: the schema's JSON types, shared by client and worker.
//! - [`client`]: the HTTP client (per-request deadlines, bounded replies and pages,
//!   typed errors in [`error`], bounded retries in [`retry`]);
//! - [`prefer`]: `Prefer: wait=N`, the long poll a backend may honour;
//! - [`inline`]: small outputs in the task log (a reference-worker extension).
pub mod client;
pub(crate) mod error;
pub mod inline;
pub mod prefer;
pub mod retry;
pub mod types;

/// Base path of every TES v1 route.
pub(crate) const BASE_PATH: &str = "/ga4gh/tes/v1";
