//! `std::net` drivers: thin loops that run the [`crate::tftp`] machines on real sockets,
//! files and clocks. No protocol decision lives here.

mod client;
mod drive;
mod fs;
mod server;
mod udp;

pub use client::{ClientError, ClientOptions, ProgressFn, get, get_into, put, put_from};
pub use fs::{Root, RootOptions, Upload};
pub use server::{LogEvent, RunningServer, Server, ServerConfig, Stopper, TransferLog};
