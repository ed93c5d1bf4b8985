//! TFTP (RFC 1350) with options (RFC 2347, 2348, 2349, 7440): packets and their codec.

mod error;
mod options;
mod packet;
mod text;

pub use error::{EncodeError, Field, ParseError, ParseErrorKind};
pub use options::{Blksize, OptionName, Options, OutOfRange, Timeout, UnknownOption, Windowsize};
pub use packet::{
    DATA_HEADER_LEN, ErrorCode, MAX_REQUEST_LEN, Mode, Opcode, Packet, Request, write_data_header,
};
pub use text::Text;
