//! TFTP (RFC 1350) with options (RFC 2347, 2348, 2349, 7440): the packet codec (`wire`),
//! and the machines (`machine`): [`Transfer`] for one transfer, either side, and
//! [`server::Endpoint`] for a whole server.

mod instant;
mod machine;
mod wire;

pub mod server {
    //! The server side: an [`Endpoint`] owns every transfer and asks the application's
    //! [`Policy`] about every request.
    pub use super::machine::endpoint::{
        Admission, Endpoint, EndpointEvent, Inbound, Incoming, Outbound, Outgoing, PortMode,
        RefusalCause, Report, SharedAdmission, TransferId, TransferInfo,
    };
    #[cfg(feature = "std")]
    pub(crate) use super::machine::endpoint::{Names, direction_word};
    pub use super::machine::policy::{Limits, Policy, Refusal, Served};
}

pub use instant::Instant;
#[cfg(test)]
pub(crate) use machine::storage_tests;
pub use machine::{
    ClientRequest, Config, Negotiated, Segments, Stats, Storage, StorageError, Transfer,
    TransferError, TransferEvent, Transmit,
};
pub use wire::netascii;
pub use wire::{
    Blksize, DATA_HEADER_LEN, Direction, EncodeError, ErrorCode, Field, MAX_REQUEST_LEN, Mode,
    Opcode, OptionName, Options, OutOfRange, Packet, ParseError, ParseErrorKind, Request, Text,
    Timeout, UnknownOption, Windowsize, write_data_header,
};
