//! bb 5.x's msgpack API served by the shim (`bb msgpack run --input <P>.sock`), driven
//! with raw frames and with the real `@aztec/bb.js@5.0.0` client, against the real bb.
mod bbjs;
mod delegated;
mod harness;
mod hostile;
mod parts;
mod recorded;
pub mod relay;
