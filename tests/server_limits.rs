//! Server settings that shape how requests are answered: the transfer cap, the port
//! range, several listen addresses.

use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

use wirekit::net::{ClientOptions, Server, ServerConfig, get_into};
use wirekit::tftp::{ErrorCode, Packet};

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wirekit-limits-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

fn rrq(name: &str) -> Vec<u8> {
    let mut v = b"\0\x01".to_vec();
    v.extend_from_slice(name.as_bytes());
    v.extend_from_slice(b"\0octet\0");
    v
}

/// Sends an RRQ from a fresh socket and returns the first answer and where it came from.
fn first_answer(server: SocketAddr, name: &str) -> (UdpSocket, Vec<u8>, SocketAddr) {
    let any = if server.is_ipv4() {
        "127.0.0.1:0"
    } else {
        "[::1]:0"
    };
    let s = UdpSocket::bind(any).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.send_to(&rrq(name), server).unwrap();
    let mut buf = vec![0u8; 1024];
    let (n, from) = s.recv_from(&mut buf).unwrap();
    buf.truncate(n);
    (s, buf, from)
}

#[test]
fn requests_beyond_the_transfer_cap_get_an_error() {
    let root = tempdir("cap");
    fs::write(root.join("f"), vec![1u8; 4096]).unwrap();
    let mut config = ServerConfig::new(&root, vec!["127.0.0.1:0".parse().unwrap()]);
    config.max_transfers = 2;
    // The unanswered transfers are cut when the test ends instead of running out their retries.
    config.grace = Duration::from_millis(100);
    let server = Server::bind(config).unwrap().spawn().unwrap();
    let addr = server.local_addrs()[0];
    // Two transfers that we never acknowledge hold both slots.
    let (_a, first, _) = first_answer(addr, "f");
    let (_b, second, _) = first_answer(addr, "f");
    assert!(matches!(
        Packet::parse(&first),
        Ok(Packet::Data { block: 1, .. })
    ));
    assert!(matches!(
        Packet::parse(&second),
        Ok(Packet::Data { block: 1, .. })
    ));
    let (_c, third, _) = first_answer(addr, "f");
    match Packet::parse(&third) {
        Ok(Packet::Error { code, message }) => {
            assert_eq!(code, ErrorCode::NotDefined);
            assert!(message.to_str().unwrap().contains("busy"));
        }
        other => panic!("expected ERROR, got {other:?}"),
    }
}

#[test]
fn transfer_ports_come_from_the_configured_range() {
    let root = tempdir("range");
    fs::write(root.join("f"), b"x").unwrap();
    // A range above an ephemeral port the kernel just handed out, so it is likely free.
    let base = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .clamp(20_000, 60_000);
    let range = base..=base + 20;
    let mut config = ServerConfig::new(&root, vec!["127.0.0.1:0".parse().unwrap()]);
    config.port_range = Some(range.clone());
    config.grace = Duration::from_millis(100);
    let server = Server::bind(config).unwrap().spawn().unwrap();
    for _ in 0..5 {
        let (_s, answer, from) = first_answer(server.local_addrs()[0], "f");
        assert_eq!(
            Packet::parse(&answer).unwrap(),
            Packet::Data {
                block: 1,
                data: b"x"
            }
        );
        assert!(range.contains(&from.port()), "{from} outside {range:?}");
    }
}

#[test]
fn ipv4_and_ipv6_listeners_side_by_side() {
    if UdpSocket::bind("[::1]:0").is_err() {
        println!("skipping: no IPv6 loopback here");
        return;
    }
    let root = tempdir("dual");
    let data = vec![9u8; 3000];
    fs::write(root.join("f"), &data).unwrap();
    // The same port on both families works because the IPv6 socket is IPv6-only.
    let port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = vec![
        format!("127.0.0.1:{port}").parse().unwrap(),
        format!("[::1]:{port}").parse().unwrap(),
    ];
    let mut config = ServerConfig::new(&root, listen);
    config.grace = Duration::from_millis(100);
    let server = Server::bind(config).unwrap().spawn().unwrap();
    for addr in server.local_addrs() {
        let mut got = Vec::new();
        get_into(
            *addr,
            "f",
            &mut got,
            &ClientOptions::default(),
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!(got, data, "via {addr}");
        let (_s, _, from) = first_answer(*addr, "f");
        assert_eq!(
            from.ip(),
            addr.ip(),
            "answered from the request's address family and address"
        );
    }
}
