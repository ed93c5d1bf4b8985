//! `std::net` drivers: thin loops that run the [`crate::tftp`] machines on real sockets,
//! files and clocks. No protocol decision lives here.
//!
//! - [`Server`]: event loops that drive a [`tftp::server::Endpoint`](crate::tftp::server::Endpoint) over
//!   every socket, serving a directory ([`DirPolicy`]) or any other
//!   [`Policy`](crate::tftp::server::Policy).
//! - [`get`], [`put`], [`get_into`], [`put_from`], [`put_reader`]: the client.
//! - [`Metrics`]: what a server did, in numbers, for an application to read or (feature
//!   `prometheus`) to serve to Prometheus; [`LogEvent`]: what it reports as it runs,
//!   through `tracing` with structured fields.
//! - Running as a service (Unix): [`User`] and [`Server::drop_privileges`] to give up root
//!   after binding; [`systemd`] for socket activation and readiness notification, with
//!   [`Server::from_sockets`].

mod client;
mod commit;
mod descriptors;
mod dir;
mod drive;
mod event_loop;
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
#[cfg(unix)]
pub mod systemd;
mod udp;
mod write_batch;

pub use client::{
    Cancel, ClientError, ClientOptions, ProgressFn, get, get_into, put, put_from, put_reader,
};
pub use descriptors::raise_descriptor_limit;
pub use dir::{DirFile, DirPolicy, UploadRules};
pub use fs::{Root, RootOptions, Upload};
pub use log::LogEvent;
pub use metrics::{LoopMetrics, Metrics, MetricsSnapshot};
#[cfg(unix)]
pub use privileges::User;
pub use remap::{Remap, RemapAction, RemapError, RemapStep, RemapTrace};
pub use server::{RunningServer, Server, ServerConfig, Stopper};
