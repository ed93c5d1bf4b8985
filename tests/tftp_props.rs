//! Properties of the TFTP codec: every packet survives encode then parse, every datagram
//! either parses or is refused (never a panic), and whatever parses re-encodes to bytes that
//! parse to the same packet.

use proptest::collection::vec;
use proptest::prelude::*;
use wirekit::tftp::{
    Blksize, EncodeError, ErrorCode, MAX_REQUEST_LEN, Mode, OptionName, Options, Packet, Request,
    Text, Timeout, UnknownOption, Windowsize,
};

// ---------------------------------------------------------------------------------------
// An owned model of a packet, so that strategies can build the bytes a `Packet` borrows.
// ---------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct OwnedOptions {
    blksize: Option<u64>,
    timeout: Option<u64>,
    tsize: Option<u64>,
    windowsize: Option<u64>,
    unknown: Vec<(Vec<u8>, Vec<u8>)>,
}

#[derive(Clone, Debug)]
struct OwnedRequest {
    filename: Vec<u8>,
    mode: Mode,
    options: OwnedOptions,
}

#[derive(Clone, Debug)]
enum Owned {
    Rrq(OwnedRequest),
    Wrq(OwnedRequest),
    Data { block: u16, data: Vec<u8> },
    Ack { block: u16 },
    Error { code: u16, message: Vec<u8> },
    Oack(OwnedOptions),
}

impl OwnedOptions {
    fn view(&self) -> Options<'_> {
        {
            let mut options = Options::default();
            options.blksize = self.blksize.map(Blksize::new);
            options.timeout = self.timeout.map(Timeout::new);
            options.tsize = self.tsize;
            options.windowsize = self.windowsize.map(Windowsize::new);
            options.unknown = self
                .unknown
                .iter()
                .map(|(n, v)| UnknownOption {
                    name: Text::new(n),
                    value: Text::new(v),
                })
                .collect();
            options
        }
    }
}

impl OwnedRequest {
    fn view(&self) -> Request<'_> {
        Request {
            filename: Text::new(&self.filename),
            mode: self.mode,
            options: self.options.view(),
        }
    }
}

impl Owned {
    fn view(&self) -> Packet<'_> {
        match self {
            Owned::Rrq(r) => Packet::Rrq(r.view()),
            Owned::Wrq(r) => Packet::Wrq(r.view()),
            Owned::Data { block, data } => Packet::Data {
                block: *block,
                data,
            },
            Owned::Ack { block } => Packet::Ack { block: *block },
            Owned::Error { code, message } => Packet::Error {
                code: ErrorCode::from_u16(*code),
                message: Text::new(message),
            },
            Owned::Oack(o) => Packet::Oack(o.view()),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------

/// Bytes without NUL, as filenames, messages and option values must be.
fn no_nul(len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<u8>> {
    vec(1u8..=255, len)
}

/// A known option's number: mostly in range, sometimes anything at all.
fn number(min: u64, max: u64) -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => min..=max,
        1 => Just(min),
        1 => Just(max),
        2 => any::<u64>(),
        1 => 0..min.max(1),
    ]
}

fn unknown_option() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    let name = prop_oneof![
        // Printable names, like real vendor options.
        "[a-zA-Z][a-zA-Z0-9_-]{0,11}".prop_map(String::into_bytes),
        no_nul(1..12),
    ]
    .prop_filter("a known name is not an unknown option", |n| {
        OptionName::from_wire(n).is_none()
    });
    (name, no_nul(0..12))
}

fn options() -> impl Strategy<Value = OwnedOptions> {
    (
        proptest::option::of(number(8, 65464)),
        proptest::option::of(number(1, 255)),
        proptest::option::of(any::<u64>()),
        proptest::option::of(number(1, 65535)),
        vec(unknown_option(), 0..4),
    )
        .prop_map(
            |(blksize, timeout, tsize, windowsize, unknown)| OwnedOptions {
                blksize,
                timeout,
                tsize,
                windowsize,
                unknown,
            },
        )
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![Just(Mode::Octet), Just(Mode::Netascii), Just(Mode::Mail)]
}

/// Requests that fit in 512 bytes by construction (filename < 100 bytes, at most four
/// unknown options of under 26 bytes each, known options under 100 bytes in all).
fn request() -> impl Strategy<Value = OwnedRequest> {
    (no_nul(0..100), mode(), options()).prop_map(|(filename, mode, options)| OwnedRequest {
        filename,
        mode,
        options,
    })
}

fn packet() -> impl Strategy<Value = Owned> {
    prop_oneof![
        request().prop_map(Owned::Rrq),
        request().prop_map(Owned::Wrq),
        (any::<u16>(), vec(any::<u8>(), 0..1500))
            .prop_map(|(block, data)| Owned::Data { block, data }),
        any::<u16>().prop_map(|block| Owned::Ack { block }),
        (prop_oneof![0u16..=8, any::<u16>()], no_nul(0..80))
            .prop_map(|(code, message)| Owned::Error { code, message }),
        options().prop_map(Owned::Oack),
    ]
}

/// Datagrams built from TFTP-ish pieces, so that random input reaches the option parser.
fn tftpish() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"\0".to_vec()),
        Just(b"octet".to_vec()),
        Just(b"NETASCII".to_vec()),
        Just(b"blksize".to_vec()),
        Just(b"TSIZE".to_vec()),
        Just(b"timeout".to_vec()),
        Just(b"windowsize".to_vec()),
        Just(b"multicast".to_vec()),
        Just(b"512".to_vec()),
        Just(b"0".to_vec()),
        Just(b"99999999999999999999".to_vec()),
        "[0-9]{1,6}".prop_map(String::into_bytes),
        vec(any::<u8>(), 0..4),
    ];
    (0u16..=7, vec(piece, 0..12)).prop_map(|(op, pieces)| {
        let mut bytes = op.to_be_bytes().to_vec();
        for p in pieces {
            bytes.extend_from_slice(&p);
        }
        bytes
    })
}

#[derive(Clone, Debug)]
enum Mutation {
    Set(usize, u8),
    Insert(usize, u8),
    Remove(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        (any::<usize>(), prop_oneof![Just(0u8), any::<u8>()])
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(bytes: &mut Vec<u8>, mutations: &[Mutation]) {
    for m in mutations {
        let len = bytes.len();
        match *m {
            Mutation::Set(i, b) if len > 0 => bytes[i % len] = b,
            Mutation::Insert(i, b) => bytes.insert(i % (len + 1), b),
            Mutation::Remove(i) if len > 0 => {
                bytes.remove(i % len);
            }
            Mutation::Truncate(i) => bytes.truncate(i % (len + 1)),
            _ => {}
        }
    }
}

// ---------------------------------------------------------------------------------------
// The property every datagram must satisfy
// ---------------------------------------------------------------------------------------

/// Parse never panics; an error points inside the datagram; a packet re-encodes (or is a
/// request too long to re-send) and the re-encoding parses to the same packet.
fn check_datagram(bytes: &[u8]) -> Result<(), TestCaseError> {
    let packet = match Packet::parse(bytes) {
        Ok(p) => p,
        Err(e) => {
            prop_assert!(e.offset() <= bytes.len(), "{e} in {} bytes", bytes.len());
            return Ok(());
        }
    };
    match packet.to_vec() {
        Ok(again) => {
            prop_assert_eq!(again.len(), packet.encoded_len());
            prop_assert_eq!(Packet::parse(&again), Ok(packet.clone()));
            // Canonical bytes are a fixed point.
            prop_assert_eq!(Packet::parse(&again).unwrap().to_vec(), Ok(again.clone()));
        }
        Err(EncodeError::RequestTooLarge { len }) => {
            prop_assert!(matches!(packet, Packet::Rrq(_) | Packet::Wrq(_)));
            prop_assert!(len > MAX_REQUEST_LEN);
            prop_assert_eq!(len, packet.encoded_len());
        }
        Err(e) => prop_assert!(false, "{:?} parsed but does not encode: {}", packet, e),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn encode_then_parse_gives_the_packet_back(owned in packet()) {
        let packet = owned.view();
        let len = packet.encoded_len();
        if let Packet::Rrq(_) | Packet::Wrq(_) = packet {
            prop_assert!(len <= MAX_REQUEST_LEN);
        }
        let mut buf = vec![0xAAu8; len + 8];
        let n = packet.encode(&mut buf).unwrap();
        prop_assert_eq!(n, len);
        prop_assert!(buf[n..].iter().all(|&b| b == 0xAA));
        prop_assert_eq!(Packet::parse(&buf[..n]), Ok(packet.clone()));
        prop_assert_eq!(packet.to_vec().unwrap(), &buf[..n]);
    }

    #[test]
    fn a_short_buffer_is_refused_untouched(owned in packet(), cut in 1usize..64) {
        let packet = owned.view();
        let needed = packet.encoded_len();
        let available = needed.saturating_sub(cut);
        let mut buf = vec![0xAAu8; available];
        prop_assert_eq!(
            packet.encode(&mut buf),
            Err(EncodeError::BufferTooSmall { needed, available })
        );
        prop_assert!(buf.iter().all(|&b| b == 0xAA));
    }

    #[test]
    fn a_request_over_512_bytes_is_refused(
        mut owned in request(),
        filename in no_nul(504..800),
        write in any::<bool>(),
    ) {
        owned.filename = filename;
        let packet = if write { Owned::Wrq(owned) } else { Owned::Rrq(owned) };
        let packet = packet.view();
        let len = packet.encoded_len();
        prop_assert!(len > MAX_REQUEST_LEN);
        let mut buf = vec![0xAAu8; 2048];
        prop_assert_eq!(packet.encode(&mut buf), Err(EncodeError::RequestTooLarge { len }));
        prop_assert!(buf.iter().all(|&b| b == 0xAA));
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_round_trip(bytes in vec(any::<u8>(), 0..600)) {
        check_datagram(&bytes)?;
    }

    #[test]
    fn arbitrary_bodies_behind_each_opcode(op in 0u16..=7, body in vec(any::<u8>(), 0..64)) {
        let mut bytes = op.to_be_bytes().to_vec();
        bytes.extend_from_slice(&body);
        check_datagram(&bytes)?;
    }

    #[test]
    fn tftp_shaped_bytes(bytes in tftpish()) {
        check_datagram(&bytes)?;
    }

    #[test]
    fn mutated_valid_packets(owned in packet(), mutations in vec(mutation(), 1..6)) {
        let mut bytes = owned.view().to_vec().unwrap();
        mutate(&mut bytes, &mutations);
        check_datagram(&bytes)?;
    }
}
