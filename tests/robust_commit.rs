//! A server cut while an upload's commit is under way (a second Ctrl-C during an fsync):
//! the commit finishes, and the client and the log hear that the file is in place. Neither
//! may hear "failed" for a file that was linked under its name.

mod common;

use std::fs;
use std::net::SocketAddr;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::files::{TempDir, random_bytes};
use common::packets::{RawClient, data, wrq};
use common::wait::wait_for;
use wirekit::net::{DirFile, DirPolicy, LogEvent, Root, Server, ServerConfig, UploadRules};
use wirekit::tftp::server::{Policy, Refusal};
use wirekit::tftp::{Packet, Segments, Storage, StorageError, Text};

/// The directory's uploads, each of whose commits waits until the test lets it go.
#[derive(Clone)]
struct GatedCommits {
    dir: DirPolicy,
    started: Sender<()>,
    release: Arc<Mutex<Receiver<()>>>,
}

struct Gated {
    file: DirFile,
    started: Sender<()>,
    release: Arc<Mutex<Receiver<()>>>,
}

impl Storage for Gated {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, StorageError> {
        self.file.read_at(offset, buf)
    }
    fn read_segments_at(
        &mut self,
        offset: u64,
        buf: &mut [u8],
        layout: Segments,
    ) -> Result<usize, StorageError> {
        self.file.read_segments_at(offset, buf, layout)
    }
    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        self.file.write(data)
    }
    fn flush(&mut self) -> Result<(), StorageError> {
        self.file.flush()
    }
    fn commit(&mut self) -> Result<(), StorageError> {
        let _ = self.started.send(());
        let _ = self
            .release
            .lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(20));
        self.file.commit()
    }
}

impl Policy for GatedCommits {
    type Storage = Gated;
    fn read(&mut self, _: SocketAddr, _: Text<'_>) -> Result<(Gated, Option<u64>), Refusal> {
        Err(Refusal::new(
            wirekit::tftp::ErrorCode::AccessViolation,
            "uploads only",
        ))
    }
    fn write(
        &mut self,
        peer: SocketAddr,
        filename: Text<'_>,
        tsize: Option<u64>,
    ) -> Result<Gated, Refusal> {
        Ok(Gated {
            file: self.dir.write(peer, filename, tsize)?,
            started: self.started.clone(),
            release: self.release.clone(),
        })
    }
}

#[test]
fn a_cut_during_a_commit_finishes_it_and_tells_the_client_so() {
    let root = TempDir::new("commit-cut");
    let mut rules = UploadRules::default();
    rules.allow_create = true;
    let dir = DirPolicy::new(Root::open(&root).unwrap(), rules);
    let (started, commit_started) = mpsc::channel();
    let (let_go, release) = mpsc::channel();
    let policy = GatedCommits {
        dir,
        started,
        release: Arc::new(Mutex::new(release)),
    };
    let mut config = ServerConfig::new(vec!["127.0.0.1:0".parse().unwrap()]);
    config.threads = 1;
    config.grace = Duration::from_secs(30);
    let reports = Arc::new(Mutex::new(Vec::new()));
    let log = reports.clone();
    let server = Server::bind_with_policy(config, policy)
        .unwrap()
        .with_logger(move |e: &LogEvent<'_>| {
            if let LogEvent::Transfer(r) = e {
                log.lock().unwrap().push(r.to_string());
            }
        });
    let addr = server.local_addrs()[0];
    let stopper = server.stopper();
    let running = server.spawn().unwrap();

    // A one-block upload: its DATA 1 completes it, and its commit starts and waits.
    let client = RawClient::new(addr);
    let (answer, tid) = client.ask(&wrq("up.bin", &[]), addr);
    assert_eq!(Packet::parse(&answer).unwrap(), Packet::Ack { block: 0 });
    let content = random_bytes(100, 1);
    client.send(&data(1, &content), tid);
    commit_started
        .recv_timeout(Duration::from_secs(10))
        .expect("the commit started");

    // Ctrl-C, then Ctrl-C again, while the commit runs.
    stopper.stop();
    stopper.stop_now();
    // The commit ends: the client hears the final ACK, not "server shutting down".
    let_go.send(()).unwrap();
    let (answer, from) = client.recv();
    assert_eq!(from, tid);
    assert_eq!(Packet::parse(&answer).unwrap(), Packet::Ack { block: 1 });
    assert_eq!(fs::read(root.join("up.bin")).unwrap(), content);
    running.stop().unwrap();
    wait_for(
        Duration::from_secs(5),
        || !reports.lock().unwrap().is_empty(),
        || "the upload's report".into(),
    );
    let line = reports.lock().unwrap()[0].clone();
    assert!(line.ends_with(", ok"), "{line}");
}
