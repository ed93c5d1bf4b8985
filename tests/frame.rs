//! The frame codec, decoder and std driver: settings errors, edge cases, real sockets, and
//! agreement with tokio-util's `LengthDelimitedCodec`.

#![cfg(feature = "std")]

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use bytes::BytesMut;
use proptest::prelude::*;
use tokio_util::codec::{Decoder as _, LengthDelimitedCodec};
use wirekit::frame::{DecodeError, Decoded, Decoder, EncodeError, Needed, Settings, SettingsError};
use wirekit::net::{Framed, FramedReader, FramedWriter};

const TIMEOUT: Option<Duration> = Some(Duration::from_secs(5));

#[test]
fn builder_refuses_invalid_settings() {
    for n in [0, 5, 6, 7, 9, 16] {
        assert_eq!(
            Settings::builder().length_field_length(n).build(),
            Err(SettingsError::InvalidLengthFieldLength(n))
        );
    }
    assert_eq!(
        Settings::builder()
            .length_field_length(2)
            .num_skip(3)
            .build(),
        Err(SettingsError::SkipPastHeader {
            num_skip: 3,
            header_len: 2
        })
    );
    assert_eq!(
        Settings::builder().varint().num_skip(0).build(),
        Err(SettingsError::SkipWithVarint)
    );
    assert_eq!(
        Settings::builder().length_field_offset(usize::MAX).build(),
        Err(SettingsError::TooLong)
    );
    assert_eq!(
        Settings::builder().max_frame_length(usize::MAX).build(),
        Err(SettingsError::TooLong)
    );
    // The last width wins over varint, and the other way round.
    let s = Settings::builder().varint().length_field_length(3).build();
    assert_eq!(s.map(|s| s.header_len()), Ok(Some(3)));
    assert_eq!(Settings::default(), Settings::builder().build().unwrap());
}

#[test]
fn tokio_vocabulary_examples() {
    // Length counts the header, header kept in the frame: no adjustment, as in tokio-util.
    let s = Settings::builder()
        .length_field_length(2)
        .num_skip(0)
        .build()
        .unwrap();
    let mut d = Decoder::new(s);
    let wire = b"\x00\x07hello";
    assert_eq!(
        d.decode(wire),
        Ok(Decoded::Frame {
            frame: &wire[..],
            consumed: 7
        })
    );
    // A 3-byte little-endian length after a 1-byte tag, tag kept, length dropped.
    let s = Settings::builder()
        .length_field_offset(1)
        .length_field_length(3)
        .little_endian()
        .num_skip(0)
        .length_adjustment(4)
        .build()
        .unwrap();
    let mut d = Decoder::new(s);
    let wire = b"\x09\x02\x00\x00hi";
    assert_eq!(
        d.decode(wire),
        Ok(Decoded::Frame {
            frame: &wire[..],
            consumed: 6
        })
    );
    let mut out = [0u8; 6];
    assert_eq!(s.encode(b"hi", &mut out), Ok(6));
    assert_eq!(
        &out, b"\x00\x02\x00\x00hi",
        "offset bytes are written as zeros"
    );
}

#[test]
fn varint_lengths() {
    let s = Settings::builder().varint().build().unwrap();
    let payload = vec![1u8; 300];
    let mut wire = Vec::new();
    s.encode_to_vec(&payload, &mut wire).unwrap();
    assert_eq!(&wire[..2], &[0xAC, 0x02]); // 300 = 0b10_0101100
    let mut d = Decoder::new(s);
    assert_eq!(
        d.decode(&wire[..1]),
        Ok(Decoded::NeedMore(Needed::AtLeast(1)))
    );
    assert_eq!(
        d.decode(&wire[1..2]),
        Ok(Decoded::NeedMore(Needed::Exact(300)))
    );
    assert_eq!(
        d.decode(&wire[2..]),
        Ok(Decoded::Frame {
            frame: &payload[..],
            consumed: 300
        })
    );
    // More than 64 bits.
    let mut d = Decoder::new(s);
    assert_eq!(d.decode(&[0xFF; 11]), Err(DecodeError::VarintOverflow));
    let mut d = Decoder::new(s);
    let mut too_big = [0xFF; 10];
    too_big[9] = 0x02;
    assert_eq!(d.decode(&too_big), Err(DecodeError::VarintOverflow));
    // A non-minimal varint is accepted.
    let mut d = Decoder::new(s);
    assert_eq!(
        d.decode(&[0x81, 0x80, 0x00, 7]),
        Ok(Decoded::Frame {
            frame: &[7][..],
            consumed: 4
        })
    );
}

#[test]
fn needed_counts_and_clean_or_cut_end() {
    let s = Settings::builder()
        .length_field_offset(1)
        .length_field_length(2)
        .build()
        .unwrap();
    let mut d = Decoder::new(s);
    assert_eq!(d.decode(&[]), Ok(Decoded::NeedMore(Needed::AtLeast(3))));
    assert_eq!(d.finish(), Ok(()));
    assert_eq!(d.decode(&[0xAB]), Ok(Decoded::NeedMore(Needed::AtLeast(2))));
    assert_eq!(d.decode(&[0]), Ok(Decoded::NeedMore(Needed::AtLeast(1))));
    assert_eq!(
        d.decode(&[4, b'a']),
        Ok(Decoded::NeedMore(Needed::Exact(3)))
    );
    assert_eq!(d.buffered(), 4);
    assert_eq!(d.finish(), Err(DecodeError::UnexpectedEnd { buffered: 4 }));
    assert_eq!(
        d.decode(b"bcd"),
        Err(DecodeError::UnexpectedEnd { buffered: 4 })
    );
}

#[test]
fn bad_lengths_fail_and_stay_failed() {
    let counts_header = Settings::builder()
        .length_field_length(2)
        .length_adjustment(-2)
        .build()
        .unwrap();
    let mut d = Decoder::new(counts_header);
    let e = DecodeError::NegativeLength {
        value: 1,
        adjustment: -2,
    };
    assert_eq!(d.decode(&[0, 1]), Err(e));
    assert_eq!(d.decode(&[0, 2]), Err(e));
    assert_eq!(d.error(), Some(e));

    let keeps_header = Settings::builder()
        .length_field_length(2)
        .num_skip(0)
        .build()
        .unwrap();
    let mut d = Decoder::new(keeps_header);
    assert_eq!(
        d.decode(&[0, 1, 0]),
        Err(DecodeError::EndsInsideHeader {
            length: 1,
            kept_header: 2
        })
    );

    // A peer announcing 4 GiB gets an error, not an allocation.
    let mut d = Decoder::default();
    assert_eq!(
        d.decode(&[0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3]),
        Err(DecodeError::FrameTooLarge {
            length: u64::from(u32::MAX),
            max: 8 * 1024 * 1024
        })
    );
    assert_eq!(d.buffer_capacity(), 0);
}

#[test]
fn large_frame_grows_the_buffer_only_as_bytes_arrive() {
    let mut d = Decoder::default();
    assert_eq!(
        d.decode(&[0, 0x80, 0, 0, 1, 2, 3]),
        Ok(Decoded::NeedMore(Needed::Exact((8 << 20) - 3)))
    );
    assert!(d.buffer_capacity() < 1024, "{}", d.buffer_capacity());
}

#[test]
fn encoder_refuses_what_it_cannot_write() {
    let s = Settings::builder()
        .length_field_length(1)
        .max_frame_length(1000)
        .build()
        .unwrap();
    let mut out = [0xAAu8; 2000];
    assert_eq!(
        s.encode(&[0; 256], &mut out),
        Err(EncodeError::LengthNotRepresentable { length: 256 })
    );
    assert_eq!(
        s.encode(&[0; 1001], &mut out),
        Err(EncodeError::FrameTooLarge {
            length: 1001,
            max: 1000
        })
    );
    assert_eq!(
        s.encode(&[0; 10], &mut out[..10]),
        Err(EncodeError::BufferTooSmall {
            needed: 11,
            available: 10
        })
    );
    assert!(out.iter().all(|&b| b == 0xAA), "nothing written on error");
    let mut v = vec![9];
    assert!(s.encode_to_vec(&[0; 256], &mut v).is_err());
    assert_eq!(v, [9]);
    // An adjustment larger than the frame cannot be encoded.
    let s = Settings::builder().length_adjustment(5).build().unwrap();
    assert_eq!(
        s.encode(b"abc", &mut out),
        Err(EncodeError::LengthNotRepresentable { length: 3 })
    );
}

/// A reader that hands out one byte at a time, with an `Interrupted` error before each.
struct Trickle<'a> {
    data: &'a [u8],
    interrupt: bool,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.interrupt = !self.interrupt;
        if self.interrupt {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = self.data.len().min(buf.len()).min(1);
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// A writer that takes at most 3 bytes per call, with an `Interrupted` error before each.
struct Narrow {
    out: Vec<u8>,
    interrupt: bool,
}

impl Write for Narrow {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.interrupt = !self.interrupt;
        if self.interrupt {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = buf.len().min(3);
        self.out.extend_from_slice(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn driver_handles_short_io_and_interrupts() {
    let s = Settings::builder().varint().build().unwrap();
    let mut w = FramedWriter::new(
        Narrow {
            out: Vec::new(),
            interrupt: false,
        },
        s,
    );
    let messages: [&[u8]; 4] = [b"hello", b"", &[7; 200], b"bye"];
    for m in messages {
        w.send(m).unwrap();
    }
    let wire = w.into_inner().out;
    let mut r = FramedReader::with_capacity(
        4,
        Trickle {
            data: &wire,
            interrupt: false,
        },
        s,
    );
    for m in messages {
        assert_eq!(r.recv().unwrap().as_deref(), Some(m));
    }
    assert_eq!(r.recv().unwrap(), None, "clean end");

    // A peer that closes mid-frame.
    let mut r = FramedReader::new(&wire[..wire.len() - 1], s);
    for m in &messages[..3] {
        assert_eq!(r.read_frame().unwrap(), Some(*m));
    }
    let e = r.read_frame().unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    assert_eq!(
        e.get_ref().and_then(|e| e.downcast_ref::<DecodeError>()),
        Some(&DecodeError::UnexpectedEnd { buffered: 3 })
    );

    // A frame too large to send is refused before a byte is written.
    let small = Settings::builder().max_frame_length(4).build().unwrap();
    let mut w = FramedWriter::new(Vec::new(), small);
    let e = w.send(b"12345").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert!(w.get_ref().is_empty());
}

#[test]
fn tcp_split_two_way() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream.set_read_timeout(TIMEOUT).unwrap();
        let (mut reader, mut writer) = Framed::new(stream, Settings::default()).split().unwrap();
        // Echo upper-cased until the client closes.
        let mut n = 0;
        while let Some(frame) = reader.read_frame().unwrap() {
            writer.send(&frame.to_ascii_uppercase()).unwrap();
            n += 1;
        }
        n
    });
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(TIMEOUT).unwrap();
    let (mut reader, mut writer) = Framed::new(stream, Settings::default()).split().unwrap();
    let big = vec![b'x'; 100_000];
    let sender = thread::spawn(move || {
        for i in 0..50 {
            writer.send(format!("line {i}").as_bytes()).unwrap();
        }
        writer.send(&big).unwrap();
        writer
            .get_ref()
            .shutdown(std::net::Shutdown::Write)
            .unwrap();
    });
    for i in 0..50 {
        assert_eq!(
            reader.recv().unwrap(),
            Some(format!("LINE {i}").into_bytes())
        );
    }
    assert_eq!(reader.recv().unwrap(), Some(vec![b'X'; 100_000]));
    assert_eq!(reader.recv().unwrap(), None);
    sender.join().unwrap();
    assert_eq!(server.join().unwrap(), 51);
}

#[cfg(unix)]
#[test]
fn unix_stream_framed() {
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    b.set_read_timeout(TIMEOUT).unwrap();
    let s = Settings::builder().length_field_length(2).build().unwrap();
    let (_, mut w) = Framed::new(a, s).split().unwrap();
    let mut r = Framed::new(b, s);
    w.send(b"over a unix socket").unwrap();
    drop(w);
    assert_eq!(r.read_frame().unwrap(), Some(&b"over a unix socket"[..]));
    assert_eq!(r.read_frame().unwrap(), None);
}

#[test]
#[cfg(feature = "tokio")]
fn tokio_codec_decodes_and_encodes() {
    use tokio_util::codec::{Decoder as _, Encoder as _};
    use wirekit::net::FrameCodec;

    let s = Settings::builder()
        .length_field_length(2)
        .length_adjustment(-2)
        .build()
        .unwrap();
    let mut codec = FrameCodec::new(s);
    let mut wire = BytesMut::new();
    for m in [&b"one"[..], b"", b"three"] {
        codec.encode(m, &mut wire).unwrap();
    }
    codec
        .encode(bytes::Bytes::from_static(b"four"), &mut wire)
        .unwrap();
    // Fed two bytes at a time, as a FramedRead would with short reads.
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    for chunk in wire.chunks(2) {
        buf.extend_from_slice(chunk);
        while let Some(frame) = codec.decode(&mut buf).unwrap() {
            frames.push(frame.to_vec());
        }
    }
    assert_eq!(frames, [&b"one"[..], b"", b"three", b"four"]);
    assert_eq!(codec.decode_eof(&mut buf).unwrap(), None);
    // Cut inside a frame.
    let mut cut = BytesMut::from(&b"\x00\x07abc"[..]);
    let e = codec.decode_eof(&mut cut).unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    // Too large, and failed from then on.
    let mut codec = FrameCodec::new(Settings::default());
    let mut huge = BytesMut::from(&b"\xff\xff\xff\xff"[..]);
    assert_eq!(
        codec.decode(&mut huge).unwrap_err().kind(),
        io::ErrorKind::InvalidData
    );
    let mut fine = BytesMut::from(&b"\x00\x00\x00\x00"[..]);
    assert!(codec.decode(&mut fine).is_err());
    // Too large to encode.
    let mut codec = FrameCodec::new(Settings::builder().max_frame_length(2).build().unwrap());
    let mut out = BytesMut::new();
    assert!(codec.encode(&b"abc"[..], &mut out).is_err());
    assert!(out.is_empty());
}

fn tokio_settings() -> impl Strategy<Value = (Settings, LengthDelimitedCodec)> {
    (
        prop::sample::select(vec![1usize, 2, 3, 4, 8]),
        any::<bool>(),
        0usize..3,
        -6isize..6,
        proptest::option::of(0usize..11),
    )
        .prop_map(|(len, little, offset, adj, skip)| {
            let mut ours = Settings::builder()
                .length_field_length(len)
                .length_field_offset(offset)
                .length_adjustment(adj);
            let mut theirs = LengthDelimitedCodec::builder();
            theirs
                .length_field_length(len)
                .length_field_offset(offset)
                .length_adjustment(adj);
            if little {
                ours = ours.little_endian();
                theirs.little_endian();
            }
            if let Some(skip) = skip {
                let skip = skip % (offset + len + 1);
                ours = ours.num_skip(skip);
                theirs.num_skip(skip);
            }
            (ours.build().unwrap(), theirs.new_codec())
        })
}

proptest! {
    /// Our decoder and tokio-util's hand out the same frames from the same stream.
    #[test]
    fn same_frames_as_tokio_util(
        (settings, mut codec) in tokio_settings(),
        payloads in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..200), 0..8),
        chunk in 1usize..40,
    ) {
        let mut wire = Vec::new();
        for p in &payloads {
            let _ = settings.encode_to_vec(p, &mut wire);
        }
        let mut ours = Vec::new();
        let mut decoder = Decoder::new(settings);
        for c in wire.chunks(chunk) {
            let mut feed = decoder.feed(c);
            while let Some(f) = feed.next_frame().unwrap() {
                ours.push(f.to_vec());
            }
        }
        let mut theirs = Vec::new();
        let mut buf = BytesMut::new();
        for c in wire.chunks(chunk) {
            buf.extend_from_slice(c);
            while let Some(f) = codec.decode(&mut buf).unwrap() {
                theirs.push(f.to_vec());
            }
        }
        prop_assert_eq!(ours, theirs);
    }
}
