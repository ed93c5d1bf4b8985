//! The machines: transfers and the server endpoint as pure state machines.

mod handshake_client;
pub mod handshake_server;
mod receiver;
mod sender;
mod storage;
mod transfer;

pub use handshake_client::ClientRequest;
pub use storage::{Storage, StorageError};
pub use transfer::{Config, Event, Negotiated, Stats, Transfer, TransferError, Transmit};
