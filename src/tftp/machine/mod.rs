//! The machines: one transfer, and the server endpoint that owns many. Pure state: no
//! socket, file, clock or thread inside.

pub(crate) mod endpoint;
mod handshake;
pub(crate) mod policy;
mod receiver;
mod retransmit;
mod sender;
mod storage;
mod transfer;
mod transfer_error;

pub use handshake::{ClientRequest, Negotiated};
pub use retransmit::Config;
#[cfg(test)]
pub(crate) use storage::tests as storage_tests;
pub use storage::{Segments, Storage, StorageError};
pub use transfer::{Stats, Transfer, TransferError, TransferEvent, Transmit};
