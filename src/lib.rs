//! wirekit: sans-IO TFTP and length-prefixed framing.
//!
//! The crate has three layers, and data flows one way through them:
//!
//! 1. **wire**: pure parsers and encoders over byte slices ([`tftp::Packet`]).
//! 2. **machine**: pure state machines that take events and emit actions.
//! 3. **driver**: thin `std::net` code that runs the machines on sockets (feature `std`).
//!
//! The core (wire and machines) is `#![no_std]` + `alloc`; build it with
//! `--no-default-features`.
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
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
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
