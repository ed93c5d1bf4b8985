//! TFTP (RFC 1350) with options (RFC 2347, 2348, 2349, 7440): the packet codec and the
//! transfer state machines.

mod machine;
mod wire;

pub use machine::handshake_server as server;
pub use machine::{
    ClientRequest, Config, Event, Negotiated, Stats, Storage, StorageError, Transfer,
    TransferError, Transmit,
};
pub use wire::netascii;
pub use wire::{
    Blksize, DATA_HEADER_LEN, Direction, EncodeError, ErrorCode, Field, MAX_REQUEST_LEN, Mode,
    Opcode, OptionName, Options, OutOfRange, Packet, ParseError, ParseErrorKind, Request, Text,
    Timeout, UnknownOption, Windowsize, write_data_header,
};
