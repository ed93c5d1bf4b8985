//! Our client sending from an address of the test's choosing: a test that stands for many
//! client machines gives each its own 127.x.y.z source address.

use std::net::{IpAddr, SocketAddr};

use wirekit::net::{ClientOptions, get_into};
use wirekit::tftp::Stats;

/// Downloads `remote` from `server` with `opts`, from a port 0 socket bound to `local`.
pub fn get_from(
    local: IpAddr,
    server: SocketAddr,
    remote: &str,
    opts: &ClientOptions,
) -> Result<(Vec<u8>, Stats), String> {
    let mut opts = opts.clone();
    opts.local_addr = Some(SocketAddr::new(local, 0));
    let mut file = Vec::new();
    let stats =
        get_into(server, remote, &mut file, &opts, &mut |_, _| {}).map_err(|e| e.to_string())?;
    Ok((file, stats))
}
