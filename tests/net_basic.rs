//! Our client against our server on loopback sockets, in both port modes.

mod common;

use std::fs;
use std::net::SocketAddr;
use std::time::Duration;

use common::files::{TempDir, random_bytes};
use common::in_both_port_modes;
use common::server::{OurServer, config, fast_config, uploads_to};
use wirekit::net::{ClientOptions, DirConfig, get, get_into, put};
use wirekit::tftp::server::PortMode;
use wirekit::tftp::{Blksize, Windowsize};

in_both_port_modes!(get_and_put_round_trip);

fn get_and_put_round_trip(ports: PortMode) {
    let root = TempDir::new("basic-root");
    let local = TempDir::new("basic-local");
    let data = random_bytes(300_000, 0x1234_5678);
    fs::write(root.join("file.bin"), &data).unwrap();
    let mut config = config(ports);
    // Short timers, so that stopping the server does not wait out the dally of the last
    // upload for long.
    config.limits.config = fast_config(100, 400, 5);
    let server = OurServer::start(config, uploads_to(&root));
    let addr = server.addr;

    for (blksize, windowsize) in [(None, None), (Some(1468), Some(16)), (Some(65464), Some(4))] {
        let mut opts = ClientOptions::default();
        opts.blksize = blksize.map(|b| Blksize::new(b).unwrap());
        opts.windowsize = windowsize.map(|w| Windowsize::new(w).unwrap());
        opts.tsize = true;
        let target = local.join("got.bin");
        let stats = get(addr, "file.bin", &target, &opts, &mut |_, _| {}).unwrap();
        assert_eq!(stats.bytes, data.len() as u64);
        assert_eq!(fs::read(&target).unwrap(), data);

        let name = format!("up-{blksize:?}.bin");
        put(addr, &target, &name, &opts, &mut |_, _| {}).unwrap();
        assert_eq!(fs::read(root.join(&name)).unwrap(), data);
    }
    let err = get(
        addr,
        "missing",
        &local.join("x"),
        &ClientOptions::default(),
        &mut |_, _| {},
    )
    .unwrap_err();
    assert!(err.to_string().contains("File not found"), "{err}");
    assert!(!local.join("x").exists());
    server.stop().unwrap();
}

/// A client told its local address sends from it: the server sees that peer.
#[test]
fn the_client_sends_from_the_local_address_it_is_given() {
    let root = TempDir::new("basic-local-addr");
    fs::write(root.join("f"), b"hello").unwrap();
    let server = OurServer::start(config(PortMode::PerTransfer), DirConfig::new(root.path()));
    let local: SocketAddr = "127.0.0.7:0".parse().unwrap();
    let mut opts = ClientOptions::default();
    opts.local_addr = Some(local);
    let mut got = Vec::new();
    get_into(server.addr, "f", &mut got, &opts, &mut |_, _| {}).unwrap();
    assert_eq!(got, b"hello");
    let reports = server.wait_for_reports(1, Duration::from_secs(5));
    assert_eq!(reports[0].info.peer.ip(), local.ip());
}

/// `wirekit get host file /dev/null` once renamed its partial file over `/dev/null`, which
/// left a regular file there. A FIFO stands in for the device: it must still be a FIFO
/// afterwards, and its reader must have had the whole file through it.
#[cfg(unix)]
#[test]
fn a_download_to_a_fifo_goes_through_it_and_leaves_it_in_place() {
    use std::os::unix::fs::FileTypeExt;

    let root = TempDir::new("fifo-root");
    let local = TempDir::new("fifo-local");
    let data = random_bytes(200_000, 0x0f1f_0f1f);
    fs::write(root.join("file.bin"), &data).unwrap();
    let server = OurServer::start(config(PortMode::PerTransfer), DirConfig::new(root.path()));
    let fifo = local.join("pipe");
    rustix::fs::mknodat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || fs::read(fifo).unwrap())
    };
    let stats = get(
        server.addr,
        "file.bin",
        &fifo,
        &ClientOptions::default(),
        &mut |_, _| {},
    )
    .unwrap();
    assert!(
        fs::metadata(&fifo).unwrap().file_type().is_fifo(),
        "still a FIFO, not a file renamed over it"
    );
    assert_eq!(stats.bytes, data.len() as u64);
    assert_eq!(
        reader.join().unwrap(),
        data,
        "the reader got the whole file"
    );
    let names: Vec<_> = fs::read_dir(&*local)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["pipe"], "no partial file left beside it");
}
