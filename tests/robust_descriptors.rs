//! File descriptors run short: `wirekit serve` under `ulimit -n 64`, with 100 clients
//! asking at once. A server out of descriptors would answer with silence; this one lowers
//! its transfer cap to what its descriptors allow, so that every request gets an answer
//! (a transfer, or ERROR 0 "busy"), and it keeps serving once the crowd is gone.
#![cfg(feature = "cli")]

mod common;

use std::fs;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use common::cli::{BIN, Serving, assert_ok, wirekit};
use common::files::{TempDir, random_bytes};
use common::in_both_port_modes;
use common::packets::{RawClient, client_ip, error, rrq};
use common::wait::wait_for;
use wirekit::tftp::server::PortMode;
use wirekit::tftp::{ErrorCode, Packet};

const CLIENTS: u32 = 100;
const DESCRIPTORS: u32 = 64;

/// How a round of requests was answered.
#[derive(Debug, Default, PartialEq, Eq)]
struct Round {
    /// Requests that started a transfer (DATA 1).
    started: usize,
    /// Requests refused with ERROR 0 "... busy ...".
    busy: usize,
}

/// `CLIENTS` clients, each from an address of its own, ask for `f` at once; each waits
/// for its first answer. The transfers started are then ended by their clients (ERROR).
fn crowd(server: SocketAddr, first: u32) -> (Round, Vec<(RawClient, SocketAddr)>) {
    let clients: Vec<RawClient> = (first..first + CLIENTS)
        .map(|i| RawClient::on(client_ip(i)))
        .collect();
    for c in &clients {
        c.send(&rrq("f", &[]), server);
    }
    let mut round = Round::default();
    let mut held = Vec::new();
    for c in clients {
        let (answer, from) = c
            .try_recv()
            .unwrap_or_else(|e| panic!("{}: no answer, silence ({e})", c.addr()));
        match Packet::parse(&answer) {
            Ok(Packet::Data { block: 1, .. }) => {
                round.started += 1;
                held.push((c, from));
            }
            Ok(Packet::Error { code, message })
                if code == ErrorCode::NotDefined
                    && message.to_str().is_some_and(|m| m.contains("busy")) =>
            {
                round.busy += 1
            }
            other => panic!("{}: answered {other:?}", c.addr()),
        }
    }
    (round, held)
}

in_both_port_modes!(every_request_is_answered_at_64_descriptors);

fn every_request_is_answered_at_64_descriptors(ports: PortMode) {
    let dir = TempDir::new("fd64");
    let data = random_bytes(4096, 64);
    fs::write(dir.join("f"), &data).unwrap();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "ulimit -n {DESCRIPTORS} && exec \"$0\" serve \"$1\" --listen 127.0.0.1:0 --threads 2 $2"
        ))
        .arg(BIN)
        .arg(dir.path())
        .arg(match ports {
            PortMode::Single => "--single-port",
            _ => "",
        });
    let server = Serving::spawn(cmd);
    let limits = fs::read_to_string(format!("/proc/{}/limits", server.child.id())).unwrap();
    let open_files = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    assert_eq!(
        open_files.split_whitespace().nth(3),
        Some(DESCRIPTORS.to_string().as_str()),
        "{open_files}"
    );

    let mut rounds = Vec::new();
    for r in 0..2 {
        let (round, held) = crowd(server.addr(), r * CLIENTS);
        eprintln!("{ports:?} round {r}: {round:?}");
        assert_eq!(round.started + round.busy, CLIENTS as usize);
        assert!(round.started > 0 && round.busy > 0, "{round:?}");
        // The clients with a transfer give it up; the server reports each end.
        let ended_before = ended(&server);
        for (c, tid) in &held {
            c.send(&error("enough"), *tid);
        }
        wait_for(
            Duration::from_secs(10),
            || ended(&server) >= ended_before + held.len(),
            || {
                format!(
                    "{} of {} transfers ended",
                    ended(&server) - ended_before,
                    held.len()
                )
            },
        );
        rounds.push(round);
    }
    // Every descriptor of the first crowd came back: the second got as much.
    assert_eq!(rounds[0], rounds[1]);
    // And the server goes on serving.
    let out = wirekit(&dir, &["get", &server.addr().to_string(), "f", "copy"]);
    assert_ok(&out);
    assert_eq!(fs::read(dir.join("copy")).unwrap(), data);
    // It never ran out of descriptors on the way: no I/O error was logged.
    let lines = server.lines();
    assert!(
        !lines.iter().any(|l| l.starts_with("error:")),
        "{:?}",
        lines
            .iter()
            .filter(|l| l.starts_with("error:"))
            .collect::<Vec<_>>()
    );
}

/// Transfers the server has logged as ended (`read "f"`: lines of its transfer log).
fn ended(server: &Serving) -> usize {
    server
        .lines()
        .iter()
        .filter(|l| l.contains(" read \"f\": "))
        .count()
}
