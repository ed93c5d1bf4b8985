//! TFTP (RFC 1350) with options (RFC 2347, 2348, 2349, 7440): the packet codec and the
//! transfer state machines.

mod client;
mod error;
pub mod netascii;
mod options;
mod packet;
mod receiver;
mod sender;
pub mod server;
mod storage;
mod text;
mod transfer;

pub use client::{ClientRequest, Direction};
pub use error::{EncodeError, Field, ParseError, ParseErrorKind};
pub use options::{Blksize, OptionName, Options, OutOfRange, Timeout, UnknownOption, Windowsize};
pub use packet::{
    DATA_HEADER_LEN, ErrorCode, MAX_REQUEST_LEN, Mode, Opcode, Packet, Request, write_data_header,
};
pub use storage::{Storage, StorageError};
pub use text::Text;
pub use transfer::{Config, Event, Negotiated, Stats, Transfer, TransferError, Transmit};
