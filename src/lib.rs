//! wirekit: sans-IO TFTP and length-prefixed framing.
//!
//! The crate has three layers, and data flows one way through them:
//!
//! 1. **wire**: pure parsers and encoders over byte slices ([`tftp::Packet`]).
//! 2. **machine**: pure state machines that take events and emit actions.
//! 3. **driver**: thin `std::net` code that runs the machines on sockets (feature `std`).
//!
//! The modules:
//!
//! - [`tftp`]: the TFTP packet codec (RFC 1350 with the options of RFC 2347, 2348, 2349 and
//!   7440), netascii, and the machines: [`tftp::Transfer`] for one transfer, either side, and
//!   [`tftp::server::Endpoint`] for a whole server: every transfer, admission through your
//!   [`tftp::server::Policy`], limits, repeated requests, refusals.
//! - [`frame`]: length-prefixed framing for byte streams such as TCP, with a streaming decoder.
//! - [`net`] (feature `std`): the drivers: a TFTP server ([`net::Server`]) and client
//!   ([`net::get`], [`net::put`]) over `std::net` sockets and files, and framed streams over
//!   any `Read + Write` ([`net::Framed`]).
//!
//! The core ([`tftp`] and [`frame`]: codecs and machines) is `#![no_std]` + `alloc` and
//! uses nothing from `std` whatever the features: everything that does is a driver, in
//! [`net`]. Build the core alone with `--no-default-features`. Feature `cli` builds the
//! `wirekit` program, `tokio` adds a tokio-util codec for [`frame`] ([`net::FrameCodec`])
//! and [`tftp::Storage`] for `Bytes`, `prometheus` the Prometheus text format of
//! [`net::metrics::Metrics`], and `arbitrary` adds `Arbitrary` derives for fuzzing.
//!
//! # Parsing and encoding a packet
//!
//! ```
//! use wirekit::tftp::{Packet, ParseError};
//!
//! // An ACK for block 7, as it arrives in a datagram.
//! let datagram = [0, 4, 0, 7];
//! let packet = Packet::parse(&datagram)?;
//! assert_eq!(packet, Packet::Ack { block: 7 });
//!
//! // DATA borrows its payload from the datagram: no copy, no allocation.
//! let datagram = [0, 3, 0, 1, b'h', b'i'];
//! let Packet::Data { block, data } = Packet::parse(&datagram)? else { unreachable!() };
//! assert_eq!((block, data), (1, &b"hi"[..]));
//!
//! // Encoding writes into a buffer the caller owns.
//! let mut buf = [0u8; 16];
//! let n = Packet::Ack { block: 7 }.encode(&mut buf).unwrap();
//! assert_eq!(&buf[..n], &[0, 4, 0, 7]);
//! # Ok::<(), ParseError>(())
//! ```
//!
//! # A server and a client on sockets
//!
//! With the `std` feature, [`net`] has both ready-made: [`net::Server`] serves a directory
//! (confined to it, read-only unless told otherwise) on event loops over every address,
//! and [`net::get`] and [`net::put`] (or [`net::get_into`] and [`net::put_from`] for any
//! [`tftp::Storage`]) are the client:
//!
//! ```
//! use wirekit::net::{ClientOptions, DirConfig, Server, ServerConfig, get_into};
//!
//! # let dir = std::env::temp_dir().join(format!("wirekit-doc-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir)?;
//! std::fs::write(dir.join("hello.txt"), "hello, world\n")?;
//! // A read-only server of `dir` on a free loopback port, on its own thread.
//! let config = ServerConfig::new(vec!["127.0.0.1:0".parse()?]);
//! let server = Server::bind(config, DirConfig::new(&dir))?.spawn()?;
//!
//! // Asks for 1468-byte blocks, windows of 16 and the size, as the `wirekit` program does.
//! let opts = ClientOptions::default();
//! let mut file = Vec::new();
//! get_into(server.local_addrs()[0], "hello.txt", &mut file, &opts, &mut |_, _| {})?;
//! assert_eq!(file, b"hello, world\n");
//! server.stop()?;
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The two sections below show what those are made of: the machines driven by hand.
//!
//! # A client over a blocking `UdpSocket`
//!
//! The machines never touch a socket or a clock. A driver mutates a
//! [`tftp::Transfer`] (a datagram arrived, or its deadline passed), then drains it: every
//! datagram from `poll_transmit` goes out, every event from `poll_event` is handled, and
//! `poll_timeout` says how long to wait for the next datagram. Here is a whole download:
//!
//! ```no_run
//! use std::io::ErrorKind;
//! use std::net::{SocketAddr, UdpSocket};
//! use std::time::Instant;
//!
//! use wirekit::tftp::{self, Blksize, ClientRequest, Config, Direction, Transfer, TransferEvent};
//! use wirekit::tftp::Windowsize;
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let server: SocketAddr = "192.0.2.10:69".parse()?;
//!     let socket = UdpSocket::bind("0.0.0.0:0")?;
//!     // The machine's clock: a `tftp::Instant`, the time since any epoch the driver picks.
//!     let epoch = Instant::now();
//!     let clock = || tftp::Instant::from(epoch.elapsed());
//!
//!     let mut request = ClientRequest::new(Direction::Read, "pxelinux.0");
//!     request.blksize = Some(Blksize::new(1468)?);
//!     request.windowsize = Some(Windowsize::new(16)?);
//!     request.tsize = true; // ask for the size: `tsize 0` on the wire
//!     let mut transfer = Transfer::client(clock(), server, &request, Config::default())?;
//!
//!     let mut file = Vec::new(); // `Storage`: received DATA is appended here.
//!     let mut out = vec![0u8; transfer.max_datagram_len().max(65_536)];
//!     let mut incoming = vec![0u8; 65_536];
//!     let (stats, result) = loop {
//!         // 1. Send what the machine wants sent (the RRQ, ACKs, ERRORs).
//!         while let Some(t) = transfer.poll_transmit(clock(), &mut file, &mut out) {
//!             socket.send_to(&out[..t.len], t.destination)?;
//!         }
//!         // 2. Handle its events; the transfer's end is one of them, and the final ACK
//!         //    went out in 1. (A request with `dally` set stays a while after this, to
//!         //    re-ACK a repeated final block: drive it on until `is_closed()`.)
//!         if let Some(TransferEvent::Finished { stats, result }) = transfer.poll_event() {
//!             break (stats, result);
//!         }
//!         // 3. The ACK is out: a storage that gathers blocks writes them now. (A `Vec`
//!         //    gathers nothing; a failed write would leave an ERROR to send first.)
//!         if transfer.flush_storage(clock(), &mut file) {
//!             continue;
//!         }
//!         // 4. Wait for a datagram, but no longer than the machine's next deadline.
//!         let Some(deadline) = transfer.poll_timeout() else { continue };
//!         let now = clock();
//!         if deadline <= now {
//!             transfer.handle_timeout(now);
//!             continue;
//!         }
//!         socket.set_read_timeout(Some(deadline - now))?;
//!         match socket.recv_from(&mut incoming) {
//!             // Any source: the machine answers strangers with ERROR 5 itself.
//!             Ok((n, from)) => {
//!                 transfer.handle_datagram(clock(), from, &incoming[..n], &mut file)
//!             }
//!             Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
//!                 transfer.handle_timeout(clock())
//!             }
//!             Err(e) => return Err(e.into()),
//!         }
//!     };
//!     result?;
//!     println!("{} bytes in {:?}", stats.bytes, stats.duration);
//!     assert_eq!(file.len() as u64, stats.bytes);
//!     Ok(())
//! }
//! ```
//!
//! # A server over a blocking `UdpSocket`
//!
//! A [`tftp::server::Endpoint`] is a whole server. Your [`tftp::server::Policy`] says who may read
//! or write what, and hands out the [`tftp::Storage`] each transfer uses. In single-port
//! mode every transfer talks through the one socket, so one socket is the whole driver
//! ([`net::Server`] runs the same endpoint on `mio`, with a port per transfer or a single
//! one, on several threads):
//!
//! ```no_run
//! use std::collections::HashMap;
//! use std::io::ErrorKind;
//! use std::net::{SocketAddr, UdpSocket};
//! use std::sync::Arc;
//! use std::time::Instant;
//!
//! use wirekit::tftp::server::{
//!     Endpoint, EndpointEvent, Inbound, Incoming, Limits, Policy, PortMode, Refusal,
//! };
//! use wirekit::tftp::{self, ErrorCode, Storage, StorageError, Text};
//!
//! /// Files served from memory; uploads are accepted into memory too.
//! struct Memory(HashMap<Vec<u8>, Arc<[u8]>>);
//!
//! /// A transfer's file: one being sent shares the map's bytes (a clone of the `Arc` is a
//! /// reference count, not a copy of the file), one being received grows.
//! enum File {
//!     Sent(Arc<[u8]>),
//!     Received(Vec<u8>),
//! }
//!
//! impl Storage for File {
//!     fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, StorageError> {
//!         match self {
//!             File::Sent(bytes) => bytes.read_at(offset, buf),
//!             File::Received(_) => Err(StorageError::write_only()),
//!         }
//!     }
//!     fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
//!         match self {
//!             File::Sent(_) => Err(StorageError::read_only()),
//!             File::Received(bytes) => bytes.write(data),
//!         }
//!     }
//! }
//!
//! impl Policy for Memory {
//!     type Storage = File;
//!     fn read(&mut self, _: SocketAddr, name: Text<'_>) -> Result<(File, Option<u64>), Refusal> {
//!         let file = self.0.get(name.as_bytes()).ok_or_else(|| {
//!             Refusal::new(ErrorCode::FileNotFound, ErrorCode::FileNotFound.description())
//!         })?;
//!         Ok((File::Sent(Arc::clone(file)), Some(file.len() as u64)))
//!     }
//!     fn write(&mut self, _: SocketAddr, _: Text<'_>, _: Option<u64>) -> Result<File, Refusal> {
//!         Ok(File::Received(Vec::new()))
//!     }
//! }
//!
//! fn main() -> std::io::Result<()> {
//!     let socket = UdpSocket::bind("127.0.0.1:6969")?;
//!     let files = HashMap::from([(b"hello.txt".to_vec(), Arc::from(&b"hello, world\n"[..]))]);
//!     let mut server = Endpoint::new(Memory(files), Limits::default(), PortMode::Single);
//!     let epoch = Instant::now();
//!     let clock = || tftp::Instant::from(epoch.elapsed());
//!     let (mut inbuf, mut outbuf) = (vec![0u8; 65_536], vec![0u8; server.max_datagram_len()]);
//!     loop {
//!         // 1. Send everything due, then act on the events.
//!         while let Some(t) = server.poll_transmit(clock(), &mut outbuf) {
//!             socket.send_to(&outbuf[..t.len], t.destination)?;
//!         }
//!         while let Some(event) = server.poll_event() {
//!             match event {
//!                 // An upload is complete: put it in place, then say how that went.
//!                 EndpointEvent::Commit { id, mut storage } => {
//!                     let result = storage.commit();
//!                     server.committed(clock(), id, result);
//!                 }
//!                 EndpointEvent::Ended { report, .. } => eprintln!("{report}"),
//!                 _ => {}
//!             }
//!         }
//!         // 2. Uploads write what they gathered, now that their ACKs are out; a write
//!         //    that failed leaves its ERROR to send first.
//!         if server.flush_storage(clock()) {
//!             continue;
//!         }
//!         // 3. Wait for a datagram until the next deadline, and hand it over.
//!         let now = clock();
//!         let wait = server.poll_timeout().map(|deadline| deadline - now);
//!         if wait.is_some_and(|w| w.is_zero()) {
//!             server.handle_timeout(now);
//!             continue;
//!         }
//!         socket.set_read_timeout(wait)?;
//!         match socket.recv_from(&mut inbuf) {
//!             Ok((n, source)) => {
//!                 let incoming = Incoming::new(Inbound::Listener(0), source, None);
//!                 // A refusal comes back at once, written into `outbuf`.
//!                 if let Some(t) = server.handle(clock(), incoming, &inbuf[..n], &mut outbuf) {
//!                     socket.send_to(&outbuf[..t.len], t.destination)?;
//!                 }
//!             }
//!             Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
//!                 server.handle_timeout(clock());
//!             }
//!             Err(e) => return Err(e),
//!         }
//!     }
//! }
//! ```
//!
//! # On another network stack, and what allocates
//!
//! The same loops run on any stack that moves datagrams: `examples/smoltcp_client.rs` and
//! `examples/smoltcp_server.rs` run them on smoltcp over a TAP device, with the core alone
//! (its `Instant` is the machines' clock: `tftp::Instant::from_micros(t.total_micros())`),
//! and the README's "On another network stack" shows that loop in full.
//!
//! The core needs an allocator, at the edges of a transfer, never for a block: a client
//! [`tftp::Transfer`] and a server [`tftp::server::Endpoint`] allocate nothing between a
//! transfer's first blocks and its end, in octet and netascii, lock-step and windowed, and
//! through loss (`tests/alloc_budget.rs` counts it with a counting global allocator, and
//! measures the heap each side holds).
//!
//! - [`tftp::Packet::parse`] allocates only for a request or an OACK that carries options it
//!   does not know (kept, borrowed, in [`tftp::Options::unknown`]); [`tftp::Packet::encode`]
//!   and [`tftp::write_data_header`] never allocate, and [`tftp::Packet::to_vec`] returns a
//!   new `Vec`. The [`tftp::netascii`] coders allocate nothing.
//! - A [`tftp::Transfer`] allocates its opening packet when it is made (a client's request,
//!   a server's OACK, kept for retransmission; a client frees its request once answered), its
//!   event queue at the first event, a queue of at most 8 ERROR 5 answers to strangers when
//!   one writes, a peer's ERROR message ([`tftp::TransferError::Peer`]), and, sending in
//!   netascii, one block of scratch and the start of each block of a window. It holds about
//!   0.4 KB while it runs (2.6 KB sending netascii at blksize 1468 and windowsize 16),
//!   besides its own `size_of` (0.7 KB) wherever the driver keeps it.
//! - A [`tftp::server::Endpoint`] allocates for each request: the transfer's slot (its table
//!   grows, and keeps its size), a copy of the request (to recognise a repeat), its
//!   [`tftp::server::TransferInfo`] (names as `String`s), its OACK and its entries in the
//!   timer and routing tables; a refusal, its message; each event, the report it carries.
//!   About 1.6 KB per running transfer (3.9 KB in netascii at blksize 1468).
//! - A [`tftp::Storage`] is yours: `Vec<u8>` grows as it receives (reserve the size an OACK
//!   announced, [`tftp::TransferEvent::Negotiated`], to grow it once), and `&[u8]` allocates
//!   nothing.
//! - A [`frame::Decoder`] allocates nothing until a frame arrives split across inputs, and
//!   then gathers that one frame, never more than the maximum frame length.
#![cfg_attr(not(feature = "std"), no_std)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod frame;
#[cfg(feature = "std")]
#[cfg_attr(docsrs, doc(cfg(feature = "std")))]
pub mod net;
pub mod tftp;

/// The README's code examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
