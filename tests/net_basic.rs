//! Our client against our server on loopback sockets.

mod common;

use std::fs;
use std::path::Path;

use common::{content, no_progress, tempdir};
use wirekit::net::{ClientOptions, Server, ServerConfig, get, put};
use wirekit::tftp::{Blksize, Windowsize};

#[test]
fn get_and_put_round_trip() {
    let root = tempdir("root");
    let local = tempdir("local");
    let data = content(300_000, 0x1234_5678);
    fs::write(root.join("file.bin"), &data).unwrap();
    let mut config = ServerConfig::new(&root, vec!["127.0.0.1:0".parse().unwrap()]);
    config.allow_create = true;
    let server = Server::bind(config).unwrap().spawn().unwrap();
    let addr = server.local_addrs()[0];

    for (blksize, windowsize) in [(None, None), (Some(1468), Some(16)), (Some(65464), Some(4))] {
        let mut opts = ClientOptions::default();
        opts.blksize = blksize.map(|b| Blksize::new(b).unwrap());
        opts.windowsize = windowsize.map(|w| Windowsize::new(w).unwrap());
        opts.tsize = true;
        let target = local.join("got.bin");
        let stats = get(addr, "file.bin", &target, &opts, &mut no_progress()).unwrap();
        assert_eq!(stats.bytes, data.len() as u64);
        assert_eq!(fs::read(&target).unwrap(), data);

        let name = format!("up-{blksize:?}.bin");
        put(addr, &target, &name, &opts, &mut no_progress()).unwrap();
        assert_eq!(fs::read(root.join(&name)).unwrap(), data);
    }
    let err = get(
        addr,
        "missing",
        &local.join("x"),
        &ClientOptions::default(),
        &mut no_progress(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("File not found"), "{err}");
    assert!(!Path::new(&local.join("x")).exists());
    server.stop().unwrap();
}
