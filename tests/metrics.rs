//! The server's counters: `wirekit serve --metrics ADDR:PORT` answers Prometheus scrapes
//! with what clients did, while transfers run and after; a library user reads the same
//! numbers from `net::metrics::Metrics` without HTTP.

#![cfg(feature = "cli")]

mod common;

use std::collections::HashMap;
use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::cli::Serving;
use common::files::{TempDir, random_bytes};
use common::packets::{RawClient, ack, client_ip, data, rrq, wrq};
use common::wait::wait_for;
use wirekit::net::metrics::Metrics;
use wirekit::net::{ClientOptions, DirConfig, Server, ServerConfig, get_into, put_from};
use wirekit::tftp::server::{Policy, Refusal};
use wirekit::tftp::{Direction, ErrorCode, Packet, Storage, StorageError, Text};

fn get(server: SocketAddr, name: &str) -> Result<Vec<u8>, wirekit::net::ClientError> {
    let mut got = Vec::new();
    get_into(
        server,
        name,
        &mut got,
        &ClientOptions::default(),
        &mut |_, _| {},
    )
    .map(|_| got)
}

/// `GET /metrics`: the response's head and body.
fn scrape(at: SocketAddr, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(at).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {at}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

/// Every sample of a scrape, by series (`name{labels}`).
fn samples(at: SocketAddr) -> HashMap<String, f64> {
    let (head, body) = scrape(at, "/metrics");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    body.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_string(), value.parse().unwrap())
        })
        .collect()
}

fn value(samples: &HashMap<String, f64>, series: &str) -> f64 {
    samples.get(series).copied().unwrap_or(0.0)
}

/// The address of the metrics, from the server's log.
fn metrics_address(server: &Serving) -> SocketAddr {
    let line = server.wait_for_log(&["metrics at http://"]);
    let url = line.split("http://").nth(1).unwrap();
    url.trim_end_matches("/metrics").parse().unwrap()
}

#[test]
fn a_scrape_counts_what_clients_did_while_they_do_it_and_after() {
    let root = TempDir::new("metrics");
    let small = random_bytes(700, 1);
    let big = random_bytes(2500, 2);
    fs::write(root.join("small.bin"), &small).unwrap();
    fs::write(root.join("big.bin"), &big).unwrap();
    let server = Serving::loopback(&root, &["--allow-create", "--metrics", "127.0.0.1:0"]);
    let at = metrics_address(&server);
    let before = samples(at);
    assert_eq!(
        value(
            &before,
            r#"wirekit_transfers_started_total{direction="read"}"#
        ),
        0.0
    );
    assert_eq!(
        value(&before, r#"wirekit_transfers_running{loop="0"}"#),
        0.0
    );

    for _ in 0..3 {
        assert_eq!(get(server.addr(), "small.bin").unwrap(), small);
    }
    let mut upload = b"uploaded".to_vec();
    put_from(
        server.addr(),
        "up.bin",
        &mut upload,
        Some(8),
        &ClientOptions::default(),
        &mut |_, _| {},
    )
    .unwrap();
    assert!(get(server.addr(), "missing.bin").is_err());

    // A client in the middle of a transfer: block 1 acknowledged, block 2 received (so
    // the server has its answer), block 3 not yet asked for.
    let client = RawClient::new(server.addr());
    let (first, port) = client.ask(&rrq("big.bin", &[]), server.addr());
    assert!(matches!(
        Packet::parse(&first),
        Ok(Packet::Data { block: 1, .. })
    ));
    client.send(&ack(1), port);
    let (second, _) = client.recv();
    assert!(matches!(
        Packet::parse(&second),
        Ok(Packet::Data { block: 2, .. })
    ));

    let during = samples(at);
    let read = r#"wirekit_transfers_started_total{direction="read"}"#;
    assert_eq!(value(&during, read), 4.0, "{during:?}");
    assert_eq!(
        value(
            &during,
            r#"wirekit_transfers_started_total{direction="write"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &during,
            r#"wirekit_transfers_ended_total{direction="read",outcome="ok"}"#
        ),
        3.0
    );
    assert_eq!(
        value(
            &during,
            r#"wirekit_transfers_ended_total{direction="write",outcome="ok"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            &during,
            r#"wirekit_requests_refused_total{reason="file_not_found"}"#
        ),
        1.0
    );
    assert_eq!(
        value(&during, r#"wirekit_transfers_running{loop="0"}"#),
        1.0
    );
    assert_eq!(
        value(&during, r#"wirekit_transfers_unanswered{loop="0"}"#),
        0.0
    );
    assert_eq!(value(&during, r#"wirekit_commits_pending{loop="0"}"#), 0.0);
    assert_eq!(
        value(&during, r#"wirekit_transfer_bytes_total{direction="read"}"#),
        3.0 * small.len() as f64
    );
    assert_eq!(
        value(
            &during,
            r#"wirekit_transfer_bytes_total{direction="write"}"#
        ),
        8.0
    );

    // The client finishes: blocks 3 to 5 (the last one short). A block sent again
    // meanwhile (the scrape took the server's timeout, on a loaded machine) is skipped.
    for block in 2..=4u16 {
        client.send(&ack(block), port);
        loop {
            let (data, _) = client.recv();
            match Packet::parse(&data) {
                Ok(Packet::Data { block: b, .. }) if b == block + 1 => break,
                Ok(Packet::Data { block: b, .. }) if b <= block => continue,
                other => panic!("after ACK {block}: {other:?}"),
            }
        }
    }
    client.send(&ack(5), port);
    server.wait_for_log(&[r#"read "big.bin": 2500 bytes"#, "ok"]);
    let after = samples(at);
    assert_eq!(
        value(
            &after,
            r#"wirekit_transfers_ended_total{direction="read",outcome="ok"}"#
        ),
        4.0
    );
    assert_eq!(value(&after, r#"wirekit_transfers_running{loop="0"}"#), 0.0);
    assert_eq!(
        value(&after, r#"wirekit_transfer_bytes_total{direction="read"}"#),
        (3 * small.len() + big.len()) as f64
    );
    assert!(
        after.contains_key("wirekit_resent_packets_total"),
        "{after:?}"
    );

    // A flood from one address: 32 requests wait for an answer that never comes, the
    // 33rd is dropped unanswered.
    let flood: Vec<RawClient> = (0..33).map(|_| RawClient::on(client_ip(7))).collect();
    for c in &flood {
        c.send(&rrq("small.bin", &[]), server.addr());
    }
    let counted = |s: &HashMap<String, f64>| {
        value(s, "wirekit_requests_ignored_total") == 1.0
            && value(s, r#"wirekit_transfers_unanswered{loop="0"}"#) == 32.0
    };
    wait_for(
        Duration::from_secs(10),
        || counted(&samples(at)),
        || format!("the flood is not counted: {:?}", samples(at)),
    );
    let last = samples(at);
    assert_eq!(value(&last, r#"wirekit_transfers_running{loop="0"}"#), 32.0);

    // Anything but /metrics is not found.
    let (head, _) = scrape(at, "/");
    assert!(head.starts_with("HTTP/1.1 404"), "{head}");
}

/// The same numbers without HTTP: an application attaches `Metrics` to its server and
/// reads a snapshot.
#[test]
fn a_library_user_reads_the_same_numbers() {
    let root = TempDir::new("metrics-lib");
    fs::write(root.join("f.bin"), random_bytes(1200, 3)).unwrap();
    let metrics = Metrics::new();
    let mut config = ServerConfig::new(vec!["127.0.0.1:0".parse().unwrap()]);
    config.threads = 2;
    let server = Server::bind(config, DirConfig::new(root.path()))
        .unwrap()
        .with_metrics(&metrics)
        .spawn()
        .unwrap();
    let addr = server.local_addrs()[0];
    get(addr, "f.bin").unwrap();
    get(addr, "f.bin").unwrap();
    assert!(get(addr, "nope").is_err());
    // A loop sends its datagrams before it counts their events: the client may hold the
    // ERROR before the refusal is counted.
    wait_for(
        Duration::from_secs(10),
        || {
            let now = metrics.snapshot();
            now.ended(Direction::Read) == 2 && now.refused_total() == 1
        },
        || format!("{:?}", metrics.snapshot()),
    );
    let now = metrics.snapshot();
    assert_eq!(now.started(Direction::Read), 2);
    assert_eq!(now.ended_with(Direction::Read, "ok"), 2);
    assert_eq!(now.bytes(Direction::Read), 2400);
    assert_eq!(now.refused("file_not_found"), 1);
    assert_eq!(now.refused_total(), 1);
    assert_eq!(now.loops.len(), 2, "one gauge set per event loop");
    assert_eq!(now.running(), 0);
    let text = metrics.encode_prometheus();
    assert!(
        text.contains("wirekit_transfers_started_total{direction=\"read\"} 2\n"),
        "{text}"
    );
    server.stop().unwrap();
}

/// Uploads kept nowhere, each of whose commits waits until the test lets it go.
#[derive(Clone)]
struct SlowCommits {
    started: Sender<()>,
    release: Arc<Mutex<Receiver<()>>>,
}

struct Slow(SlowCommits);

impl Storage for Slow {
    fn read_at(&mut self, _: u64, _: &mut [u8]) -> Result<usize, StorageError> {
        Err(StorageError::write_only())
    }

    fn write(&mut self, _: &[u8]) -> Result<(), StorageError> {
        Ok(())
    }

    fn commit(&mut self) -> Result<(), StorageError> {
        let _ = self.0.started.send(());
        let _ = self
            .0
            .release
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(20));
        Ok(())
    }
}

impl Policy for SlowCommits {
    type Storage = Slow;

    fn read(&mut self, _: SocketAddr, _: Text<'_>) -> Result<(Slow, Option<u64>), Refusal> {
        Err(Refusal::new(ErrorCode::AccessViolation, "uploads only"))
    }

    fn write(&mut self, _: SocketAddr, _: Text<'_>, _: Option<u64>) -> Result<Slow, Refusal> {
        Ok(Slow(self.clone()))
    }
}

/// An upload whose commit takes its time is counted as pending until its client has
/// its final ACK (here under an application's own policy: the counts come from the
/// endpoint's events, whatever the policy).
#[test]
fn a_slow_commit_is_pending_until_it_is_done() {
    let (started, commit_started) = mpsc::channel();
    let (let_go, release) = mpsc::channel();
    let policy = SlowCommits {
        started,
        release: Arc::new(Mutex::new(release)),
    };
    let mut config = ServerConfig::new(vec!["127.0.0.1:0".parse().unwrap()]);
    config.threads = 1;
    let metrics = Metrics::new();
    let server = Server::bind_with_policy(config, policy)
        .unwrap()
        .with_metrics(&metrics)
        .spawn()
        .unwrap();
    let addr = server.local_addrs()[0];

    let client = RawClient::new(addr);
    let (answer, tid) = client.ask(&wrq("up.bin", &[]), addr);
    assert_eq!(Packet::parse(&answer).unwrap(), Packet::Ack { block: 0 });
    client.send(&data(1, b"one block"), tid);
    commit_started
        .recv_timeout(Duration::from_secs(10))
        .expect("the commit started");
    wait_for(
        Duration::from_secs(10),
        || metrics.snapshot().commits_pending() == 1,
        || format!("{:?}", metrics.snapshot()),
    );
    let during = metrics.snapshot();
    assert_eq!(during.running(), 1);
    assert_eq!(during.loops[0].commits_pending, 1);

    let_go.send(()).unwrap();
    let (answer, _) = client.recv();
    assert_eq!(Packet::parse(&answer).unwrap(), Packet::Ack { block: 1 });
    wait_for(
        Duration::from_secs(10),
        || metrics.snapshot().ended_with(Direction::Write, "ok") == 1,
        || format!("{:?}", metrics.snapshot()),
    );
    let after = metrics.snapshot();
    assert_eq!(after.commits_pending(), 0);
    assert_eq!(after.running(), 0);
    assert_eq!(after.bytes(Direction::Write), 9);
    server.stop().unwrap();
}
