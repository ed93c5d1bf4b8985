//! `std::net` drivers: thin loops that run the [`crate::tftp`] machines on real sockets,
//! files and clocks. No protocol decision lives here.
//!
//! - [`Server`]: event loops that drive a [`tftp::Endpoint`](crate::tftp::Endpoint) over
//!   every socket, serving a directory ([`DirPolicy`]) or any other
//!   [`Policy`](crate::tftp::server::Policy).
//! - [`get`], [`put`], [`get_into`], [`put_from`]: the client.

mod client;
mod commit;
mod descriptors;
mod dir;
mod drive;
mod event_loop;
mod fs;
mod log;
mod read_ahead;
mod remap;
mod server;
mod socket;
mod udp;

pub use client::{Cancel, ClientError, ClientOptions, ProgressFn, get, get_into, put, put_from};
pub use dir::{DirFile, DirPolicy, UploadRules};
pub use fs::{Root, RootOptions, Upload};
pub use log::LogEvent;
pub use remap::{Remap, RemapError};
pub use server::{RunningServer, Server, ServerConfig, Stopper};
