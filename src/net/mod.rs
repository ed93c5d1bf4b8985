//! The drivers: thin code that runs the sans-IO [`crate::tftp`] machines and [`crate::frame`]
//! codec on real sockets, streams, files and clocks. No protocol decision lives here.
//!
//! - [`Server`]: event loops that drive a [`tftp::server::Endpoint`](crate::tftp::server::Endpoint) over
//!   every socket, as a [`ServerConfig`] says, serving a directory ([`DirConfig`] makes
//!   its [`DirPolicy`]) or any other [`Policy`](crate::tftp::server::Policy).
//! - [`get`], [`put`], [`get_into`], [`put_from`], [`put_reader`]: the client.
//! - [`metrics::Metrics`]: what a server did, in numbers, for an application to read or (feature
//!   `prometheus`) to serve to Prometheus; [`LogEvent`]: what it reports as it runs,
//!   through `tracing` with structured fields.
//! - [`Framed`], [`FramedReader`], [`FramedWriter`]: length-prefixed frames over any
//!   `Read`/`Write` (a `TcpStream`, a `UnixStream`); with the `tokio` feature, [`FrameCodec`]
//!   is the same framing as a tokio-util `Decoder` and `Encoder`.
//! - [`Storage`](crate::tftp::Storage) for the std types a transfer reads from or writes to:
//!   a `File` (one `preadv` per window on Unix), a `BufWriter`, and (feature `tokio`) shared
//!   `bytes::Bytes`.
//! - Running as a service (Unix): [`User`] and [`Server::drop_privileges`] to give up root
//!   after binding; [`systemd`] for socket activation and readiness notification, with
//!   [`Server::from_sockets`].

mod client;
mod commit;
mod descriptors;
mod dir;
mod drive;
mod event_loop;
#[cfg(feature = "tokio")]
mod frame_codec;
mod framed;
mod fs;
mod log;
pub mod metrics;
mod precise_poll;
#[cfg(unix)]
mod privileges;
mod read_ahead;
mod remap;
mod server;
mod socket;
mod storage;
#[cfg(unix)]
pub mod systemd;
mod udp;
mod write_batch;

pub use client::{
    Cancel, ClientError, ClientOptions, ProgressFn, get, get_into, put, put_from, put_reader,
};
pub use descriptors::raise_descriptor_limit;
pub use dir::{DirConfig, DirFile, DirPolicy, UploadRules};
#[cfg(feature = "tokio")]
pub use frame_codec::FrameCodec;
pub use framed::{Framed, FramedReader, FramedWriter};
pub use fs::{Root, RootOptions, Upload};
pub use log::LogEvent;
#[cfg(unix)]
pub use privileges::User;
pub use remap::{Remap, RemapAction, RemapError, RemapStep, RemapTrace};
pub use server::{RunningServer, Server, ServerConfig, Stopper};
