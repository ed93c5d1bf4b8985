//! Helpers shared by the socket-level tests, one module per concern. Each test binary uses
//! a subset of them.
//!
//! - [`files`]: temporary directories, file contents, listings;
//! - [`wait`]: waiting on a condition, bounded;
//! - [`datagrams`]: TFTP datagrams built byte by byte (shared with `tests/sim`);
//! - [`packets`]: raw datagrams (re-exported), raw client sockets, distinct client
//!   addresses, ports held for a test;
//! - [`server`]: our server with its log, in either port mode;
//! - [`client`]: our client, sending from a chosen address;
//! - [`cli`]: the built `wirekit` program;
//! - [`peers`]: other TFTP programs, run with a deadline;
//! - [`faults`] and [`relay`]: a lossy network between a client and the server;
//! - [`netns`]: network namespaces a test makes for itself (Linux, root);
//! - [`proc`]: descriptors and threads of this process.
#![allow(dead_code, unused_imports, unused_macros)]

#[cfg(feature = "cli")]
pub mod cli;
pub mod client;
pub mod datagrams;
pub mod faults;
pub mod files;
#[cfg(target_os = "linux")]
pub mod netns;
pub mod packets;
pub mod peers;
pub mod proc;
pub mod relay;
pub mod server;
pub mod wait;

/// For each `name`, a module `name` with two tests, `per_transfer` and `single_port`, that
/// call the function `name(ports: PortMode)` of the same module in each port mode.
macro_rules! in_both_port_modes {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[test]
            fn per_transfer() {
                super::$name(wirekit::tftp::server::PortMode::PerTransfer)
            }

            #[test]
            fn single_port() {
                super::$name(wirekit::tftp::server::PortMode::Single)
            }
        }
    )+};
}
pub(crate) use in_both_port_modes;
