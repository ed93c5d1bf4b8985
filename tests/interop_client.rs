//! Our client (`wirekit::net::get`/`put`) against `in.tftpd` from tftp-hpa, started by each
//! test on a loopback socket of port 0 (handed to it as inetd would) and killed at its end
//! (also on panic). Every file is compared byte for byte.
//!
//! tftp-hpa 5.2 knows blksize, tsize and timeout but not windowsize: a windowsize ask is
//! left out of its OACK, and our client must fall back to one block per window.
//!
//! A missing `in.tftpd` skips these tests (`skipping: in.tftpd not installed`) unless
//! `WIREKIT_REQUIRE_PEERS=1`.

mod common;

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::files::{TempDir, WRAP_SIZE, assert_same, random_bytes, read, sized_files, text_lf};
use common::peers::{in_tftpd, ipv6_loopback};
use wirekit::net::{ClientError, ClientOptions, get, put};
use wirekit::tftp::{Blksize, ErrorCode, Timeout, TransferError, Windowsize};

const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// Client options: a plain request (no options, 512-byte blocks in lock-step), changed by
/// `set`.
fn options(set: impl FnOnce(&mut ClientOptions)) -> ClientOptions {
    let mut o = ClientOptions::plain();
    set(&mut o);
    o
}

/// The option sets tried in both directions.
fn option_sets() -> Vec<(&'static str, ClientOptions)> {
    let blk = |n| Some(Blksize::new(n).unwrap());
    vec![
        ("no options", ClientOptions::plain()),
        ("the defaults", ClientOptions::default()),
        ("tsize", options(|o| o.tsize = true)),
        ("blksize 1468", options(|o| o.blksize = blk(1468))),
        (
            "blksize 1468 + windowsize 16 + tsize + timeout 2",
            options(|o| {
                o.blksize = blk(1468);
                o.windowsize = Some(Windowsize::new(16).unwrap());
                o.tsize = true;
                o.timeout = Some(Timeout::new(2).unwrap());
            }),
        ),
        (
            "blksize 65464 + windowsize 4",
            options(|o| {
                o.blksize = blk(65464);
                o.windowsize = Some(Windowsize::new(4).unwrap());
            }),
        ),
    ]
}

/// Gets every size with every option set. With tsize asked, the size tftpd-hpa announces
/// reaches the progress callback.
#[test]
fn client_get_sizes_and_options() {
    let root = TempDir::new("cget-root");
    let local = TempDir::new("cget-local");
    let files = sized_files(root.path(), 11);
    let Some((_tftpd, addr)) = in_tftpd(root.path(), LOOPBACK) else {
        return;
    };
    for (i, (label, opts)) in option_sets().into_iter().enumerate() {
        for (name, data) in &files {
            let what = format!("get {name} from in.tftpd with {label}");
            let out = local.join(format!("{i}-{name}"));
            let mut total = None;
            let stats = get(addr, name, &out, &opts, &mut |_, t| total = t)
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_same(&read(&out), data, &what);
            assert_eq!(stats.bytes, data.len() as u64, "{what}");
            if opts.tsize {
                assert_eq!(total, Some(data.len() as u64), "{what}: tsize");
            }
        }
    }
}

/// Puts every size with every option set (with tsize, the size is announced).
#[test]
fn client_put_sizes_and_options() {
    let root = TempDir::new("cput-root");
    let local = TempDir::new("cput-local");
    let files = sized_files(local.path(), 11);
    let Some((_tftpd, addr)) = in_tftpd(root.path(), LOOPBACK) else {
        return;
    };
    for (i, (label, opts)) in option_sets().into_iter().enumerate() {
        for (name, data) in &files {
            let what = format!("put {name} to in.tftpd with {label}");
            let remote = format!("up-{i}-{name}");
            let stats = put(addr, &local.join(name), &remote, &opts, &mut |_, _| {})
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(stats.bytes, data.len() as u64, "{what}");
            assert_same(&read(&root.join(&remote)), data, &what);
        }
    }
}

/// More than 65535 blocks at blksize 512: the block number wraps to 0 and the client
/// follows it.
#[test]
fn client_get_block_number_wrap() {
    let root = TempDir::new("cwrap-root");
    let local = TempDir::new("cwrap-local");
    let data = random_bytes(WRAP_SIZE, 42);
    fs::write(root.join("big.bin"), &data).unwrap();
    let Some((_tftpd, addr)) = in_tftpd(root.path(), LOOPBACK) else {
        return;
    };
    let opts = options(|o| o.tsize = true);
    let out = local.join("big.bin");
    let stats = get(addr, "big.bin", &out, &opts, &mut |_, _| {}).unwrap();
    assert_same(&read(&out), &data, "get across the block number wrap");
    assert_eq!(stats.blocks, (WRAP_SIZE / 512 + 1) as u64);
    assert!(stats.blocks > 65_535);
}

/// The same the other way: our sender wraps the block number and tftpd-hpa's receiver
/// follows.
#[test]
fn client_put_block_number_wrap() {
    let root = TempDir::new("cwrapput-root");
    let local = TempDir::new("cwrapput-local");
    let data = random_bytes(WRAP_SIZE, 43);
    fs::write(local.join("big.bin"), &data).unwrap();
    let Some((_tftpd, addr)) = in_tftpd(root.path(), LOOPBACK) else {
        return;
    };
    let opts = options(|o| o.tsize = true);
    let stats = put(
        addr,
        &local.join("big.bin"),
        "big.bin",
        &opts,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(stats.blocks, (WRAP_SIZE / 512 + 1) as u64);
    assert_same(
        &read(&root.join("big.bin")),
        &data,
        "put across the block number wrap",
    );
}

/// netascii both ways: tftpd-hpa sends LF files as CR LF and stores CR LF as LF, our
/// client converts the other way; a text with LF line ends comes back equal.
#[test]
fn client_netascii_get_and_put() {
    let root = TempDir::new("cascii-root");
    let local = TempDir::new("cascii-local");
    let Some((_tftpd, addr)) = in_tftpd(root.path(), LOOPBACK) else {
        return;
    };
    for n in [0, 1, 600, 5000, 200_000] {
        let mut text = text_lf(n);
        text.truncate(n);
        let name = format!("t{n}.txt");
        fs::write(root.join(&name), &text).unwrap();
        for (label, blksize) in [("default blksize", None), ("blksize 1468", Some(1468))] {
            let opts = options(|o| {
                o.netascii = true;
                o.tsize = true;
                o.blksize = blksize.map(|b| Blksize::new(b).unwrap());
            });
            let what = format!("netascii {name} with {label}");
            let out = local.join(format!("{label}-{name}"));
            get(addr, &name, &out, &opts, &mut |_, _| {})
                .unwrap_or_else(|e| panic!("get {what}: {e}"));
            assert_same(&read(&out), &text, &format!("get {what}"));
            let remote = format!("up-{}-{name}", blksize.unwrap_or(512));
            put(addr, &out, &remote, &opts, &mut |_, _| {})
                .unwrap_or_else(|e| panic!("put {what}: {e}"));
            assert_same(&read(&root.join(&remote)), &text, &format!("put {what}"));
        }
    }
}

/// tftpd-hpa's refusals reach our client as the server's ERROR, with its code, and leave
/// no local file behind.
#[test]
fn client_sees_tftpd_errors() {
    let root = TempDir::new("cerr-root");
    let local = TempDir::new("cerr-local");
    fs::write(local.join("x.bin"), b"x").unwrap();
    let Some((_tftpd, addr)) = in_tftpd(root.path(), LOOPBACK) else {
        return;
    };
    for opts in [
        ClientOptions::plain(),
        options(|o| {
            o.tsize = true;
            o.blksize = Some(Blksize::new(1468).unwrap());
        }),
    ] {
        let out = local.join("missing.bin");
        let err = get(addr, "no-such-file", &out, &opts, &mut |_, _| {}).unwrap_err();
        assert!(
            matches!(
                &err,
                ClientError::Transfer(TransferError::Peer {
                    code: ErrorCode::FileNotFound,
                    ..
                })
            ),
            "{err:?}"
        );
        assert!(!out.exists());
        // No such directory under the root: tftpd-hpa cannot create the file.
        let err = put(
            addr,
            &local.join("x.bin"),
            "no/such/dir/x.bin",
            &opts,
            &mut |_, _| {},
        )
        .unwrap_err();
        assert!(
            matches!(&err, ClientError::Transfer(TransferError::Peer { .. })),
            "{err:?}"
        );
    }
}

/// Our client and tftpd-hpa over `[::1]`.
#[test]
fn client_ipv6() {
    if !ipv6_loopback() {
        return;
    }
    let root = TempDir::new("cv6-root");
    let local = TempDir::new("cv6-local");
    let data = random_bytes(100_000, 66);
    fs::write(root.join("v6.bin"), &data).unwrap();
    let Some((_tftpd, addr)) = in_tftpd(root.path(), IpAddr::V6(Ipv6Addr::LOCALHOST)) else {
        return;
    };
    let opts = options(|o| {
        o.tsize = true;
        o.blksize = Some(Blksize::new(1468).unwrap());
    });
    let out = local.join("v6.bin");
    get(addr, "v6.bin", &out, &opts, &mut |_, _| {}).unwrap();
    assert_same(&read(&out), &data, "get over IPv6");
    put(addr, &out, "up6.bin", &opts, &mut |_, _| {}).unwrap();
    assert_same(&read(&root.join("up6.bin")), &data, "put over IPv6");
}
