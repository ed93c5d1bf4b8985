//! atftp's own "high server load" test (its `test/test.sh`): 200 atftp clients fetch a
//! 1 MiB file in 512-byte lock-step blocks from one address at once, on this machine's two
//! cores, and every line any of them prints beyond "timeout: retrying..." is an error. A
//! block the server resent although the client had it shows as "got wrong block"; a
//! request refused for its address's load shows as an error received from the server.
#![cfg(feature = "cli")]

mod common;

use std::fs;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::cli::Serving;
use common::files::{TempDir, random_bytes};
use common::peers::peer;
use common::wait::wait_until;

const CLIENTS: usize = 200;

#[test]
fn atftp_high_server_load_sees_no_block_twice() {
    let Some(atftp) = peer("atftp") else { return };
    let root = TempDir::new("atftp-load");
    fs::write(root.join("READ_1M.bin"), random_bytes(1 << 20, 91)).unwrap();
    // As an operator starts it: one event loop per core.
    let server = Serving::start(&root, &["--listen", "127.0.0.1:0"]);
    let port = server.addr().port().to_string();
    let out = TempDir::new("atftp-load-out");
    let mut clients: Vec<(usize, Child)> = (0..CLIENTS)
        .map(|i| {
            let err = fs::File::create(out.join(format!("out.{i}"))).unwrap();
            let child = Command::new(&atftp)
                .args([
                    "--get",
                    "--remote-file",
                    "READ_1M.bin",
                    "--local-file",
                    "/dev/null",
                ])
                .args(["127.0.0.1", &port])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(err)
                .spawn()
                .expect("run atftp");
            (i, child)
        })
        .collect();
    // test.sh waits 90 s for its clients.
    let mut failed = Vec::new();
    let all_ended = wait_until(Duration::from_secs(90), || {
        clients.retain_mut(|(i, c)| match c.try_wait().unwrap() {
            Some(status) => {
                if !status.success() {
                    failed.push((*i, status));
                }
                false
            }
            None => true,
        });
        clients.is_empty()
    });
    assert!(
        all_ended,
        "{} atftp clients still running after 90 s",
        clients.len()
    );
    let errors: Vec<String> = (0..CLIENTS)
        .flat_map(|i| {
            let text = fs::read_to_string(out.join(format!("out.{i}"))).unwrap();
            text.lines()
                .filter(|l| !l.contains("timeout: retrying"))
                .map(|l| format!("client {i}: {l}"))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        errors.is_empty(),
        "{} lines, as test.sh counts them: {:?}",
        errors.len(),
        &errors[..errors.len().min(10)]
    );
    assert!(failed.is_empty(), "{failed:?}");
}
