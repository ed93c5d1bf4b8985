//! The wire: TFTP packets as bytes. Pure functions over slices, no state.

mod error;
pub mod netascii;
mod options;
mod packet;
mod text;

pub use error::{EncodeError, Field, ParseError, ParseErrorKind};
pub use options::{Blksize, OptionName, Options, OutOfRange, Timeout, UnknownOption, Windowsize};
pub use packet::{
    DATA_HEADER_LEN, Direction, ErrorCode, MAX_REQUEST_LEN, Mode, Opcode, Packet, Request,
    write_data_header,
};
pub use text::Text;
