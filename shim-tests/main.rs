#![expect(
    unreachable_pub,
    reason = "every module here is private to this test binary; `pub` only shares helpers between them"
)]
pub mod delegate;
mod dockerfile;
mod docs;
mod doctor;
mod funnel;
mod grammar;
mod layout;
mod msgpack;
mod passthrough;
mod real_stores;
mod record;
mod store;
mod support;
mod tes_client;
mod testbed;
mod worker;
