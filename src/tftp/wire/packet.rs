//! `Packet<'a>`: parse a datagram without copying, encode into a caller's buffer.

use alloc::vec::Vec;
use core::fmt;

use nom::IResult;
use nom::Parser;
use nom::bytes::complete::take_till;
use nom::number::complete::be_u16;

use super::error::{EncodeError, Field, ParseError, ParseErrorKind};
use super::options::{OptionName, Options, UnknownOption};
use super::text::Text;

/// Which way the file goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Download: RRQ, we receive DATA.
    Read,
    /// Upload: WRQ, we send DATA.
    Write,
}

/// Bytes in front of a DATA payload: opcode and block number.
pub const DATA_HEADER_LEN: usize = 4;

/// The longest request RFC 2347 allows, options included.
pub const MAX_REQUEST_LEN: usize = 512;

/// TFTP opcodes (RFC 1350, RFC 2347).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum Opcode {
    /// Read request.
    Rrq = 1,
    /// Write request.
    Wrq = 2,
    /// A block of data.
    Data = 3,
    /// Acknowledgement.
    Ack = 4,
    /// Error.
    Error = 5,
    /// Option acknowledgement (RFC 2347).
    Oack = 6,
}

impl Opcode {
    /// The opcode for a number, if it is one.
    pub const fn from_u16(n: u16) -> Option<Opcode> {
        Some(match n {
            1 => Opcode::Rrq,
            2 => Opcode::Wrq,
            3 => Opcode::Data,
            4 => Opcode::Ack,
            5 => Opcode::Error,
            6 => Opcode::Oack,
            _ => return None,
        })
    }
}

/// TFTP error codes (RFC 1350, RFC 2347). Codes above 8 parse as [`ErrorCode::Other`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 0: not defined, see the message.
    NotDefined,
    /// 1: file not found.
    FileNotFound,
    /// 2: access violation.
    AccessViolation,
    /// 3: disk full or allocation exceeded.
    DiskFull,
    /// 4: illegal TFTP operation.
    IllegalOperation,
    /// 5: unknown transfer ID.
    UnknownTransferId,
    /// 6: file already exists.
    FileExists,
    /// 7: no such user.
    NoSuchUser,
    /// 8: option negotiation refused (RFC 2347).
    OptionNegotiation,
    /// Any code above 8. Build it with [`ErrorCode::from_u16`] so that codes 0 to 8 keep
    /// their names.
    Other(u16),
}

impl ErrorCode {
    /// The code for a number.
    pub const fn from_u16(n: u16) -> ErrorCode {
        match n {
            0 => ErrorCode::NotDefined,
            1 => ErrorCode::FileNotFound,
            2 => ErrorCode::AccessViolation,
            3 => ErrorCode::DiskFull,
            4 => ErrorCode::IllegalOperation,
            5 => ErrorCode::UnknownTransferId,
            6 => ErrorCode::FileExists,
            7 => ErrorCode::NoSuchUser,
            8 => ErrorCode::OptionNegotiation,
            n => ErrorCode::Other(n),
        }
    }

    /// The number on the wire.
    pub const fn as_u16(self) -> u16 {
        match self {
            ErrorCode::NotDefined => 0,
            ErrorCode::FileNotFound => 1,
            ErrorCode::AccessViolation => 2,
            ErrorCode::DiskFull => 3,
            ErrorCode::IllegalOperation => 4,
            ErrorCode::UnknownTransferId => 5,
            ErrorCode::FileExists => 6,
            ErrorCode::NoSuchUser => 7,
            ErrorCode::OptionNegotiation => 8,
            ErrorCode::Other(n) => n,
        }
    }

    /// The default ERROR message for this code, in the words other servers send and
    /// scripts and monitoring grep for: RFC 1350's names for codes 1 to 7, and for codes
    /// 0 and 8 the texts both tftp-hpa and atftp send (RFC 1350 gives code 0 no name of
    /// its own, RFC 2347 none for code 8). Send it whenever there is nothing more specific
    /// to say: a message that names the code in other words breaks those greps.
    ///
    /// ```
    /// use wirekit::tftp::ErrorCode;
    ///
    /// assert_eq!(ErrorCode::FileNotFound.description(), "File not found");
    /// assert_eq!(
    ///     ErrorCode::OptionNegotiation.description(),
    ///     "Failure to negotiate RFC2347 options"
    /// );
    /// ```
    pub const fn description(self) -> &'static str {
        match self {
            ErrorCode::NotDefined => "Undefined error code",
            ErrorCode::FileNotFound => "File not found",
            ErrorCode::AccessViolation => "Access violation",
            ErrorCode::DiskFull => "Disk full or allocation exceeded",
            ErrorCode::IllegalOperation => "Illegal TFTP operation",
            ErrorCode::UnknownTransferId => "Unknown transfer ID",
            ErrorCode::FileExists => "File already exists",
            ErrorCode::NoSuchUser => "No such user",
            ErrorCode::OptionNegotiation => "Failure to negotiate RFC2347 options",
            ErrorCode::Other(_) => "Unknown error code",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.description(), self.as_u16())
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for ErrorCode {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(ErrorCode::from_u16(u.arbitrary()?))
    }
}

/// Transfer mode of a request. Parsed case-insensitively, encoded in lower case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Mode {
    /// Text with CR LF line ends (RFC 764).
    Netascii,
    /// Raw bytes.
    Octet,
    /// Obsolete; it parses so that a server can refuse it with an ERROR.
    Mail,
}

impl Mode {
    /// The mode as written on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Netascii => "netascii",
            Mode::Octet => "octet",
            Mode::Mail => "mail",
        }
    }

    fn from_wire(b: &[u8]) -> Option<Mode> {
        [Mode::Netascii, Mode::Octet, Mode::Mail]
            .into_iter()
            .find(|m| b.eq_ignore_ascii_case(m.as_str().as_bytes()))
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of an RRQ or WRQ.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct Request<'a> {
    /// The file asked for, as raw bytes (see [`Text`]).
    pub filename: Text<'a>,
    /// The transfer mode.
    pub mode: Mode,
    /// Options (RFC 2347), empty for a plain RFC 1350 request.
    pub options: Options<'a>,
}

/// One TFTP packet. Parsed packets borrow from the datagram.
///
/// ```
/// use wirekit::tftp::{Mode, Packet, Request};
///
/// let rrq = Packet::parse(b"\0\x01boot.img\0OCTET\0blksize\01468\0")?;
/// let Packet::Rrq(Request { filename, mode, options }) = rrq else { panic!() };
/// assert_eq!(filename.to_str(), Some("boot.img"));
/// assert_eq!(mode, Mode::Octet);
/// assert_eq!(options.blksize.unwrap().unwrap().get(), 1468);
/// # Ok::<(), wirekit::tftp::ParseError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Packet<'a> {
    /// Read request.
    Rrq(Request<'a>),
    /// Write request.
    Wrq(Request<'a>),
    /// A block of file data.
    Data {
        /// Block number; wraps from 65535 to 0.
        block: u16,
        /// The payload, 0 to blksize bytes.
        data: &'a [u8],
    },
    /// Acknowledges a DATA block (or, with block 0, a WRQ or OACK).
    Ack {
        /// The block acknowledged.
        block: u16,
    },
    /// Ends the transfer.
    Error {
        /// What kind of error.
        code: ErrorCode,
        /// Human-readable text, possibly empty.
        message: Text<'a>,
    },
    /// Option acknowledgement (RFC 2347).
    Oack(Options<'a>),
}

/// The parser's internal error: a kind and the input left where it arose.
struct Fail<'a> {
    kind: ParseErrorKind,
    rest: &'a [u8],
}

type PResult<'a, T> = IResult<&'a [u8], T, Fail<'a>>;

impl<'a> nom::error::ParseError<&'a [u8]> for Fail<'a> {
    fn from_error_kind(input: &'a [u8], _: nom::error::ErrorKind) -> Self {
        // Only reached when a 2-byte field is cut short; callers name the field.
        Fail {
            kind: ParseErrorKind::Truncated(Field::Opcode),
            rest: input,
        }
    }

    fn append(_: &'a [u8], _: nom::error::ErrorKind, other: Self) -> Self {
        other
    }
}

fn fail<T>(kind: ParseErrorKind, rest: &[u8]) -> PResult<'_, T> {
    Err(nom::Err::Error(Fail { kind, rest }))
}

/// A big-endian u16 that, if missing, is reported as `field` truncated.
fn u16_field(field: Field) -> impl Fn(&[u8]) -> PResult<'_, u16> {
    move |input| {
        be_u16::<_, Fail>(input).map_err(|_| {
            nom::Err::Error(Fail {
                kind: ParseErrorKind::Truncated(field),
                rest: input,
            })
        })
    }
}

/// A NUL-terminated field; `MissingNul(field)` if the datagram ends first.
fn cstr(field: Field) -> impl Fn(&[u8]) -> PResult<'_, &[u8]> {
    move |input| {
        let (rest, s) = take_till(|b| b == 0).parse(input)?;
        match rest.split_first() {
            Some((_, rest)) => Ok((rest, s)),
            None => fail(ParseErrorKind::MissingNul(field), input),
        }
    }
}

fn number(option: OptionName, value: &[u8]) -> Result<u64, ParseErrorKind> {
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return Err(ParseErrorKind::NotANumber(option));
    }
    value.iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(d - b'0')))
            .ok_or(ParseErrorKind::NumberTooLarge(option))
    })
}

/// `name NUL value NUL` pairs up to the end. A tail of NUL bytes alone is padding some
/// clients add, and is ignored.
///
/// In a request (`lenient`), a known option whose value is not a number is dropped, so that
/// the request is served without it: atftp 0.8.0 sends `tsize enable`, and tftp-hpa's server
/// ignores such values too. It is not kept as an unknown option, which the encoder would
/// refuse for shadowing a known name. In an OACK it stays an error.
fn options(mut input: &[u8], lenient: bool) -> PResult<'_, Options<'_>> {
    let mut options = Options::default();
    while !input.iter().all(|&b| b == 0) {
        let (rest, name) = cstr(Field::OptionName)(input)?;
        if name.is_empty() {
            return fail(ParseErrorKind::EmptyOptionName, input);
        }
        if rest.is_empty() {
            return fail(ParseErrorKind::OptionWithoutValue, input);
        }
        let value_start = rest;
        let (rest, value) = cstr(Field::OptionValue)(rest)?;
        match OptionName::from_wire(name) {
            // The first copy of a known option counts; later ones are ignored unread.
            Some(known) if options.raw(known).is_some() => {}
            // A bad number is reported at the value, the field that is wrong.
            Some(known) => match number(known, value) {
                Ok(n) => options.set_first(known, n),
                // atftp sends `tsize enable`; like tftp-hpa, a request's option that is not
                // a number is dropped, not fatal. An OACK is held to the letter.
                Err(ParseErrorKind::NotANumber(_)) if lenient => {}
                Err(kind) => return fail(kind, value_start),
            },
            None => options.unknown.push(UnknownOption {
                name: Text::new(name),
                value: Text::new(value),
            }),
        }
        input = rest;
    }
    Ok((&[], options))
}

fn request(input: &[u8]) -> PResult<'_, Request<'_>> {
    let (rest, filename) = cstr(Field::Filename)(input)?;
    let (rest_after_mode, mode) = cstr(Field::Mode)(rest)?;
    let Some(mode) = Mode::from_wire(mode) else {
        return fail(ParseErrorKind::UnknownMode, rest);
    };
    let (rest, options) = options(rest_after_mode, true)?;
    Ok((
        rest,
        Request {
            filename: Text::new(filename),
            mode,
            options,
        },
    ))
}

fn packet(input: &[u8]) -> PResult<'_, Packet<'_>> {
    let (body, op) = u16_field(Field::Opcode)(input)?;
    match Opcode::from_u16(op) {
        Some(Opcode::Rrq) => request(body).map(|(r, q)| (r, Packet::Rrq(q))),
        Some(Opcode::Wrq) => request(body).map(|(r, q)| (r, Packet::Wrq(q))),
        Some(Opcode::Data) => {
            let (data, block) = u16_field(Field::BlockNumber)(body)?;
            Ok((&[], Packet::Data { block, data }))
        }
        // Bytes after the block number are tolerated: some peers pad ACKs.
        Some(Opcode::Ack) => {
            let (_, block) = u16_field(Field::BlockNumber)(body)?;
            Ok((&[], Packet::Ack { block }))
        }
        Some(Opcode::Error) => {
            let (rest, code) = u16_field(Field::ErrorCode)(body)?;
            // Tolerated: a message without its NUL, and bytes after the NUL.
            let (_, message) = take_till::<_, _, Fail>(|b| b == 0).parse(rest)?;
            Ok((
                &[],
                Packet::Error {
                    code: ErrorCode::from_u16(code),
                    message: Text::new(message),
                },
            ))
        }
        Some(Opcode::Oack) => options(body, false).map(|(r, o)| (r, Packet::Oack(o))),
        None => fail(ParseErrorKind::UnknownOpcode(op), input),
    }
}

fn push_number(out: &mut Writer<'_>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.put(&digits[i..]);
}

fn number_len(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |l| l as usize + 1)
}

/// Writes into a buffer already checked to be large enough.
struct Writer<'b> {
    buf: &'b mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        if let Some(dst) = self.buf.get_mut(self.at..self.at + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
        self.at += bytes.len();
    }

    fn cstr(&mut self, bytes: &[u8]) {
        self.put(bytes);
        self.put(&[0]);
    }
}

impl Options<'_> {
    fn known(&self) -> impl Iterator<Item = (OptionName, u64)> + '_ {
        OptionName::ALL
            .into_iter()
            .filter_map(|o| self.raw(o).map(|v| (o, v)))
    }

    /// Bytes these options take on the wire.
    pub fn encoded_len(&self) -> usize {
        let known: usize = self
            .known()
            .map(|(o, v)| o.as_str().len() + number_len(v) + 2)
            .sum();
        let unknown: usize = self
            .unknown
            .iter()
            .map(|u| u.name.len() + u.value.len() + 2)
            .sum();
        known + unknown
    }

    fn validate(&self) -> Result<(), EncodeError> {
        for u in &self.unknown {
            if u.name.is_empty() {
                return Err(EncodeError::EmptyOptionName);
            }
            if let Some(known) = OptionName::from_wire(u.name.as_bytes()) {
                return Err(EncodeError::ShadowsKnownOption(known));
            }
            if u.name.contains_nul() {
                return Err(EncodeError::ContainsNul(Field::OptionName));
            }
            if u.value.contains_nul() {
                return Err(EncodeError::ContainsNul(Field::OptionValue));
            }
        }
        Ok(())
    }

    fn write(&self, out: &mut Writer<'_>) {
        for (o, v) in self.known() {
            out.cstr(o.as_str().as_bytes());
            push_number(out, v);
            out.put(&[0]);
        }
        for u in &self.unknown {
            out.cstr(u.name.as_bytes());
            out.cstr(u.value.as_bytes());
        }
    }
}

impl Request<'_> {
    fn encoded_len(&self) -> usize {
        self.filename.len() + 1 + self.mode.as_str().len() + 1 + self.options.encoded_len()
    }
}

impl<'a> Packet<'a> {
    /// Parses one datagram. The whole datagram is one packet; nothing is copied.
    #[inline]
    pub fn parse(datagram: &'a [u8]) -> Result<Packet<'a>, ParseError> {
        // Fast path for the packets of a running transfer: DATA and ACK have fixed headers,
        // so they need neither the nom dispatch nor the error mapping. Same result as the
        // general path (which handles every other case, short DATA/ACK included).
        match *datagram {
            [0, 3, hi, lo, ref data @ ..] => Ok(Packet::Data {
                block: u16::from_be_bytes([hi, lo]),
                data,
            }),
            [0, 4, hi, lo, ..] => Ok(Packet::Ack {
                block: u16::from_be_bytes([hi, lo]),
            }),
            _ => Self::parse_general(datagram),
        }
    }

    #[inline(never)]
    fn parse_general(datagram: &'a [u8]) -> Result<Packet<'a>, ParseError> {
        match packet(datagram) {
            Ok((_, p)) => Ok(p),
            Err(nom::Err::Error(e) | nom::Err::Failure(e)) => {
                Err(ParseError::new(e.kind, datagram.len() - e.rest.len()))
            }
            // Complete parsers never ask for more input.
            Err(nom::Err::Incomplete(_)) => Err(ParseError::new(
                ParseErrorKind::Truncated(Field::Opcode),
                datagram.len(),
            )),
        }
    }

    /// The packet's opcode.
    pub const fn opcode(&self) -> Opcode {
        match self {
            Packet::Rrq(_) => Opcode::Rrq,
            Packet::Wrq(_) => Opcode::Wrq,
            Packet::Data { .. } => Opcode::Data,
            Packet::Ack { .. } => Opcode::Ack,
            Packet::Error { .. } => Opcode::Error,
            Packet::Oack(_) => Opcode::Oack,
        }
    }

    /// Bytes the packet takes on the wire.
    pub fn encoded_len(&self) -> usize {
        2 + match self {
            Packet::Rrq(r) | Packet::Wrq(r) => r.encoded_len(),
            Packet::Data { data, .. } => 2 + data.len(),
            Packet::Ack { .. } => 2,
            Packet::Error { message, .. } => 2 + message.len() + 1,
            Packet::Oack(o) => o.encoded_len(),
        }
    }

    fn validate(&self) -> Result<(), EncodeError> {
        match self {
            Packet::Rrq(r) | Packet::Wrq(r) => {
                if r.filename.contains_nul() {
                    return Err(EncodeError::ContainsNul(Field::Filename));
                }
                r.options.validate()?;
                let len = self.encoded_len();
                if len > MAX_REQUEST_LEN {
                    return Err(EncodeError::RequestTooLarge { len });
                }
                Ok(())
            }
            Packet::Error { message, .. } if message.contains_nul() => {
                Err(EncodeError::ContainsNul(Field::ErrorMessage))
            }
            Packet::Oack(o) => o.validate(),
            _ => Ok(()),
        }
    }

    /// Encodes the packet at the start of `buf` and returns its length.
    ///
    /// On error nothing has been written: the packet is checked, and the buffer's length
    /// against [`Packet::encoded_len`], before the first byte is.
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        self.validate()?;
        let needed = self.encoded_len();
        if buf.len() < needed {
            return Err(EncodeError::BufferTooSmall {
                needed,
                available: buf.len(),
            });
        }
        let mut out = Writer { buf, at: 0 };
        out.put(&(self.opcode() as u16).to_be_bytes());
        match self {
            Packet::Rrq(r) | Packet::Wrq(r) => {
                out.cstr(r.filename.as_bytes());
                out.cstr(r.mode.as_str().as_bytes());
                r.options.write(&mut out);
            }
            Packet::Data { block, data } => {
                out.put(&block.to_be_bytes());
                out.put(data);
            }
            Packet::Ack { block } => out.put(&block.to_be_bytes()),
            Packet::Error { code, message } => {
                out.put(&code.as_u16().to_be_bytes());
                out.cstr(message.as_bytes());
            }
            Packet::Oack(o) => o.write(&mut out),
        }
        debug_assert_eq!(out.at, needed);
        Ok(needed)
    }

    /// Encodes the packet into a new `Vec`.
    pub fn to_vec(&self) -> Result<Vec<u8>, EncodeError> {
        let mut v = alloc::vec![0; self.encoded_len()];
        self.encode(&mut v)?;
        Ok(v)
    }
}

/// Writes a DATA header (opcode 3 and `block`) into the first [`DATA_HEADER_LEN`] bytes of
/// `buf`, in front of a payload the caller has already put at `buf[DATA_HEADER_LEN..]`.
///
/// This is how a sender avoids copying file data: read the file straight into
/// `buf[4..]`, then stamp the header. It costs the same whatever the payload's size.
#[inline]
pub fn write_data_header(buf: &mut [u8], block: u16) -> Result<(), EncodeError> {
    let available = buf.len();
    let Some(header) = buf.get_mut(..DATA_HEADER_LEN) else {
        return Err(EncodeError::BufferTooSmall {
            needed: DATA_HEADER_LEN,
            available,
        });
    };
    let [a, b] = (Opcode::Data as u16).to_be_bytes();
    let [c, d] = block.to_be_bytes();
    header.copy_from_slice(&[a, b, c, d]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The DATA/ACK fast path in `parse` agrees with the general parser.
    #[test]
    fn fast_path_matches_general_parser() {
        let cases: [&[u8]; 9] = [
            b"\0\x03\0\x01",
            b"\0\x03\xff\xfehello",
            b"\0\x03\0\x01\0\0\0",
            b"\0\x04\0\0",
            b"\0\x04\x12\x34",
            b"\0\x04\0\x09trailing",
            b"\0\x03\0",
            b"\0\x04",
            b"\x01\x03\0\x01",
        ];
        for bytes in cases {
            assert_eq!(
                Packet::parse(bytes),
                Packet::parse_general(bytes),
                "{bytes:?}"
            );
        }
    }
}
