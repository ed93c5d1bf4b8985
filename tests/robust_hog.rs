//! The cheap attack on a TFTP server, over real sockets: one source port sends 1000 read
//! requests (each for a file that exists, each asking `timeout 255`) and never answers
//! one. What it may hold is capped, it does not keep a client from another address out,
//! and whatever it held is reclaimed after `unanswered_timeout`, not after the 255 s
//! timeouts it asked for (and, here, was granted).

mod common;

use std::fs;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use common::client::get_from;
use common::files::{TempDir, random_bytes};
use common::in_both_port_modes;
use common::packets::{RawClient, client_ip, rrq};
use common::server::{OurServer, config};
use common::wait::wait_for;
use wirekit::net::{ClientOptions, DirConfig};
use wirekit::tftp::server::{Limits, PortMode};
use wirekit::tftp::{ErrorCode, Packet, Timeout, TransferError};

const REQUESTS: usize = 1000;
const UNANSWERED_TIMEOUT: Duration = Duration::from_secs(2);

/// What the hog heard, answer by answer.
#[derive(Debug, Default)]
struct Heard {
    /// OACKs, by the port they came from.
    oacks: Vec<SocketAddr>,
    /// ERRORs: code and message.
    errors: Vec<(ErrorCode, String)>,
    /// Anything else.
    other: Vec<Vec<u8>>,
}

impl Heard {
    fn count(&self) -> usize {
        self.oacks.len() + self.errors.len() + self.other.len()
    }
}

in_both_port_modes!(
    a_hog_is_capped_and_reclaimed_and_keeps_no_one_out,
    junk_from_a_forged_requester_does_not_make_its_transfer_answered,
);

/// Forged requests fill every slot of the server, each followed by one junk datagram from
/// the requester's address and port (all an off-path attacker can add). Junk is not the
/// answer a transfer waits for: each is reclaimed as unanswered, and a real client is
/// served right after, not when the forged transfers run out their retries.
fn junk_from_a_forged_requester_does_not_make_its_transfer_answered(ports: PortMode) {
    let root = TempDir::new("hog-junk");
    fs::write(root.join("f"), random_bytes(100_000, 1)).unwrap();
    let mut config = config(ports);
    config.limits.max_transfers = 8;
    config.limits.unanswered_timeout = UNANSWERED_TIMEOUT;
    // Retries that would hold a transfer taken for answered for half a minute.
    config.limits.config = wirekit::tftp::Config::default();
    let server = OurServer::start(config, DirConfig::new(root.path()));
    let addr = server.addr;
    for i in 0..8 {
        let forger = RawClient::on(client_ip(10 + i));
        let (answer, tid) = forger.ask(&rrq("f", &[]), addr);
        assert!(matches!(
            Packet::parse(&answer),
            Ok(Packet::Data { block: 1, .. })
        ));
        forger.send(b"\0\x09junk", tid);
    }
    server.wait_for_log(
        UNANSWERED_TIMEOUT * 4,
        "the forged transfers reclaimed",
        |log| {
            log.reports
                .iter()
                .filter(|r| r.result == Err(TransferError::Unanswered))
                .count()
                == 8
        },
    );
    let (got, _) = get_from(client_ip(1), addr, "f", &ClientOptions::default())
        .unwrap_or_else(|e| panic!("the real client was kept out: {e}"));
    assert_eq!(got, random_bytes(100_000, 1));
}

fn a_hog_is_capped_and_reclaimed_and_keeps_no_one_out(ports: PortMode) {
    let root = TempDir::new("hog");
    for i in 0..REQUESTS {
        fs::write(root.join(format!("f{i}")), random_bytes(600, i as u64)).unwrap();
    }
    let mut config = config(ports);
    config.limits.unanswered_timeout = UNANSWERED_TIMEOUT;
    // Grant the 255 s the hog asks for: only the reclaim can end its transfers in time.
    config.limits.max_timeout = Timeout::new(255).unwrap();
    let limits: Limits = config.limits;
    let server = OurServer::start(config, DirConfig::new(root.path()));
    let addr = server.addr;

    let hog = RawClient::on(client_ip(0));
    let hog_addr = hog.addr();
    hog.patience(Duration::from_millis(50));
    let heard = Mutex::new(Heard::default());
    let done = AtomicBool::new(false);
    /// Stops the hog's reader when dropped, also when the test fails inside the scope.
    struct Done<'a>(&'a AtomicBool);
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    thread::scope(|sc| {
        let _done = Done(&done);
        sc.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                let Ok((answer, from)) = hog.try_recv() else {
                    continue;
                };
                let mut heard = heard.lock().unwrap();
                match Packet::parse(&answer) {
                    Ok(Packet::Oack(o)) => {
                        assert_eq!(o.timeout, Some(Ok(Timeout::new(255).unwrap())), "{o:?}");
                        heard.oacks.push(from);
                    }
                    Ok(Packet::Error { code, message }) => heard
                        .errors
                        .push((code, message.to_str().unwrap_or("?").to_string())),
                    _ => heard.other.push(answer),
                }
            }
        });
        // Requests sent before the hog waits for their answers, so that neither side's
        // socket buffer overflows and every request reaches the server. In single-port
        // mode a request replaces the one before from the same port: one at a time, so
        // that each is answered before the next replaces it (a burst is read in one go,
        // and only its last request is answered).
        let batch = match ports {
            PortMode::Single => 1,
            _ => 100,
        };
        for b in 0..REQUESTS / batch {
            for i in b * batch..(b + 1) * batch {
                hog.send(&rrq(&format!("f{i}"), &[("timeout", "255")]), addr);
            }
            let sent = (b + 1) * batch;
            // Answered, or dropped without an answer (the server's log says which).
            let taken = || heard.lock().unwrap().count() + server.log().ignored.len();
            wait_for(
                Duration::from_secs(10),
                || taken() >= sent,
                || format!("{} of {sent} requests answered or dropped", taken()),
            );
        }
        // Right away, while the hog holds what it could: a client from another address
        // gets its file at once (a refusal would fail the get).
        let (got, _) = get_from(client_ip(1), addr, "f7", &ClientOptions::default())
            .unwrap_or_else(|e| panic!("the other client was kept out: {e}"));
        assert_eq!(got, random_bytes(600, 7));
    });
    let heard = heard.into_inner().unwrap();

    // Every request was taken once: answered with an OACK (a transfer started), or
    // dropped without a word. Nothing was refused with an ERROR, which a forged request
    // would have reflected to its victim.
    let ignored = server.log().ignored.len();
    assert_eq!(heard.count() + ignored, REQUESTS, "{heard:?}");
    assert!(
        heard.other.is_empty() && heard.errors.is_empty(),
        "{heard:?}"
    );
    assert!(server.log().ignored.iter().all(|p| *p == hog_addr));
    let started = heard.oacks.len();
    match ports {
        // A port per transfer: the hog holds as many transfers as one address may hold
        // unanswered, whichever event loop took each request, and the rest is dropped.
        PortMode::PerTransfer => {
            assert_eq!(started, limits.max_unanswered_per_address, "{heard:?}");
            assert!(heard.oacks.iter().all(|from| *from != addr));
        }
        // One port for everything: a client port has one transfer, and each new request
        // from it replaces the one before; nothing is refused.
        _ => {
            assert_eq!(started, REQUESTS, "{heard:?}");
            assert!(heard.oacks.iter().all(|from| *from == addr));
        }
    }

    // The hog's transfers end, each reported, within the unanswered timeout (plus the
    // event loop's lateness; the 255 s they were granted would be far beyond).
    server.wait_for_log(
        UNANSWERED_TIMEOUT * 10,
        "every transfer of the hog ended",
        |log| {
            log.reports
                .iter()
                .filter(|r| r.info.peer == hog_addr)
                .count()
                == started
        },
    );
    let reports: Vec<_> = server
        .reports()
        .into_iter()
        .filter(|r| r.info.peer == hog_addr)
        .collect();
    let unanswered: Vec<_> = reports
        .iter()
        .filter(|r| r.result == Err(TransferError::Unanswered))
        .collect();
    for r in &unanswered {
        assert!(
            r.stats.duration >= UNANSWERED_TIMEOUT
                && r.stats.duration < UNANSWERED_TIMEOUT + Duration::from_secs(1),
            "{r}: held for {:?}",
            r.stats.duration
        );
        assert!(r.to_string().contains("never answered"), "{r}");
    }
    match ports {
        PortMode::PerTransfer => assert_eq!(unanswered.len(), started, "{reports:?}"),
        _ => {
            // Each transfer but the last was abandoned when the next request came.
            assert_eq!(unanswered.len(), 1, "{reports:?}");
            let abandoned = reports
                .iter()
                .filter(|r| r.result == Err(TransferError::Abandoned))
                .count();
            assert_eq!(abandoned, REQUESTS - 1);
        }
    }
    // The other client's transfer is the only other one; nothing is left running.
    assert_eq!(server.reports().len(), started + 1);
    server.stop().unwrap();
}
