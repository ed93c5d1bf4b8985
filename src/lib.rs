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
//!   7440), netascii, and the transfer machines: [`tftp::Transfer`] for both sides, with
//!   [`tftp::server::admit`] for a server's requests.
//! - [`frame`]: length-prefixed framing for byte streams such as TCP, with a streaming decoder.
//! - `net` (feature `std`): the drivers: a TFTP server and client over `std::net` sockets and
//!   files, and framed streams over any `Read + Write`.
//!
//! The core (wire and machines) is `#![no_std]` + `alloc`; build it with
//! `--no-default-features`. Feature `cli` builds the `wirekit` program, `tokio` adds a
//! tokio-util codec for [`frame`], and `arbitrary` adds `Arbitrary` derives for fuzzing.
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
//! # Driving a transfer over a blocking `UdpSocket`
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
//! use wirekit::tftp::{Blksize, ClientRequest, Config, Direction, Event, Transfer, Windowsize};
//!
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     let server: SocketAddr = "192.0.2.10:69".parse()?;
//!     let socket = UdpSocket::bind("0.0.0.0:0")?;
//!     // The machine's time is a Duration since any epoch the driver picks.
//!     let epoch = Instant::now();
//!
//!     let mut request = ClientRequest::new(Direction::Read, "pxelinux.0");
//!     request.blksize = Some(Blksize::new(1468)?);
//!     request.windowsize = Some(Windowsize::new(16)?);
//!     request.tsize = Some(0);
//!     let mut transfer = Transfer::client(epoch.elapsed(), server, &request, Config::default())?;
//!
//!     let mut file = Vec::new(); // `Storage`: received DATA is appended here.
//!     let mut out = vec![0u8; transfer.max_datagram_len().max(65_536)];
//!     let mut incoming = vec![0u8; 65_536];
//!     let mut result = None;
//!     while !transfer.is_closed() {
//!         // 1. Drain what the machine wants sent (the RRQ, ACKs, ERRORs).
//!         while let Some(t) = transfer.poll_transmit(epoch.elapsed(), &mut file, &mut out) {
//!             socket.send_to(&out[..t.len], t.destination)?;
//!         }
//!         // 2. Drain its events.
//!         while let Some(event) = transfer.poll_event() {
//!             match event {
//!                 Event::Negotiated(n) => eprintln!("blksize {}, size {:?}", n.blksize, n.tsize),
//!                 // The receiver still dallies after this, to re-ACK a repeated final
//!                 // block; a driver in a hurry may stop here instead.
//!                 Event::Finished(r) => result = Some(r),
//!             }
//!         }
//!         // 3. Wait for a datagram, but no longer than the machine's next deadline.
//!         let Some(deadline) = transfer.poll_timeout() else { continue };
//!         let now = epoch.elapsed();
//!         if deadline <= now {
//!             transfer.handle_timeout(now);
//!             continue;
//!         }
//!         socket.set_read_timeout(Some(deadline - now))?;
//!         match socket.recv_from(&mut incoming) {
//!             // Any source: the machine answers strangers with ERROR 5 itself.
//!             Ok((n, from)) => {
//!                 transfer.handle_datagram(epoch.elapsed(), from, &incoming[..n], &mut file)
//!             }
//!             Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
//!                 transfer.handle_timeout(epoch.elapsed())
//!             }
//!             Err(e) => return Err(e.into()),
//!         }
//!     }
//!     let stats = result.ok_or("the transfer ended without a result")??;
//!     println!("{} bytes in {:?}", stats.bytes, stats.duration);
//!     assert_eq!(file.len() as u64, stats.bytes);
//!     Ok(())
//! }
//! ```
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

extern crate alloc;

pub mod frame;
#[cfg(feature = "std")]
pub mod net;
pub mod tftp;

/// The README's code examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
