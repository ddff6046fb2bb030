mod dockerfile;
mod docs;
mod tes_client;
mod store;
mod worker;
