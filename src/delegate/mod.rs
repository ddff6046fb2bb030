//! Running a `Remote(plan)` on the backend: upload, submit, wait, fetch, exit code.

pub mod outputs;
pub mod signals;
