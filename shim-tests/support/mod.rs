//! Helpers shared by the integration-test modules. Not tests themselves.

pub mod testbed;
