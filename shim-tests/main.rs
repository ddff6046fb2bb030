mod dockerfile;
mod docs;
mod grammar;
mod tes_client;
mod store;
mod worker;
mod support;
mod testbed;
