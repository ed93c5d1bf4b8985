//! Our client's machine on a socket bound to an address of the test's choosing.
//! `wirekit::net::get` always binds the wildcard address; a test that stands for many
//! client machines gives each its own 127.x.y.z source address instead, and drives the
//! same [`Transfer`] the library's client drives, with the same loop.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Instant;

use wirekit::net::ClientOptions;
use wirekit::tftp::{ClientRequest, Direction, Event, Stats, Transfer, TransferError};

/// Downloads `remote` from `server` with `opts`, from a port 0 socket bound to `local`.
pub fn get_from(
    local: IpAddr,
    server: SocketAddr,
    remote: &str,
    opts: &ClientOptions,
) -> Result<(Vec<u8>, Stats), String> {
    let socket = UdpSocket::bind(SocketAddr::new(local, 0)).map_err(|e| e.to_string())?;
    let mut request = ClientRequest::new(Direction::Read, remote);
    request.blksize = opts.blksize;
    request.windowsize = opts.windowsize;
    request.timeout = opts.timeout;
    request.tsize = opts.tsize.then_some(0);
    let epoch = Instant::now();
    let mut transfer = Transfer::client(epoch.elapsed(), server, &request, opts.config)
        .map_err(|e| e.to_string())?;
    let mut file = Vec::new();
    match drive(&mut transfer, &socket, &mut file, epoch) {
        Ok(Ok(stats)) => Ok((file, stats)),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("socket: {e}")),
    }
}

/// Runs `transfer` until it reports its end (as `wirekit::net`'s client loop does).
fn drive(
    transfer: &mut Transfer,
    socket: &UdpSocket,
    storage: &mut Vec<u8>,
    epoch: Instant,
) -> io::Result<Result<Stats, TransferError>> {
    let mut send_buf = vec![0u8; transfer.max_datagram_len().max(65_536 + 4)];
    let mut recv_buf = vec![0u8; 65_536 + 4];
    loop {
        let now = epoch.elapsed();
        while let Some(t) = transfer.poll_transmit(now, storage, &mut send_buf) {
            // A datagram the kernel refused is lost like any other: retransmission covers it.
            let _ = socket.send_to(&send_buf[..t.len], t.destination);
        }
        while let Some(event) = transfer.poll_event() {
            if let Event::Finished { stats, result } = event {
                return Ok(result.map(|()| stats));
            }
        }
        let deadline = transfer
            .poll_timeout()
            .expect("a client transfer keeps a timer until it reports its end");
        let now = epoch.elapsed();
        if deadline <= now {
            transfer.handle_timeout(now);
            continue;
        }
        socket.set_read_timeout(Some(deadline - now))?;
        match socket.recv_from(&mut recv_buf) {
            Ok((n, source)) => {
                transfer.handle_datagram(epoch.elapsed(), source, &recv_buf[..n], storage)
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                transfer.handle_timeout(epoch.elapsed())
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::Interrupted
                        | io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::ConnectionReset
                ) => {}
            Err(e) => return Err(e),
        }
    }
}
