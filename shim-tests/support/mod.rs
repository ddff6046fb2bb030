//! Helpers shared by the integration-test modules. Not tests themselves.

// Each test module uses a different subset of these helpers.
#![allow(dead_code, reason = "shared helpers; not every module uses every one")]

pub mod testbed;
