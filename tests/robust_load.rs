//! Load: a network-boot storm of 500 clients at once against one server, each client from
//! an address of its own (127.100.x.y), as 500 machines would be; in both port modes, one
//! after the other (the test counts the process's server threads and descriptors).

mod common;

use std::fs;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use common::client::get_from;
use common::files::{TempDir, random_bytes};
use common::packets::client_ip;
use common::proc::{ThreadSpan, fd_count, proc_status, wait_for_server_threads};
use common::server::{OurServer, PORT_MODES, config_with, fast_config};
use common::wait::wait_until;
use wirekit::net::{ClientOptions, DirConfig};
use wirekit::tftp::server::PortMode;
use wirekit::tftp::{Blksize, TransferError, Windowsize};

const CLIENTS: usize = 500;
/// Event loops of the server under test; each has a commit thread besides.
const LOOPS: usize = 2;

#[test]
fn boot_storm_500_clients() {
    let root = TempDir::new("load");
    let data = random_bytes(1 << 20, 71);
    fs::write(root.join("boot.img"), &data).unwrap();
    for ports in PORT_MODES {
        boot_storm(&root, &data, ports);
    }
}

fn boot_storm(root: &TempDir, data: &[u8], ports: PortMode) {
    let mut config = config_with(ports, fast_config(200, 1000, 10));
    // The loops count against one cap together, however unevenly the kernel spreads
    // clients over them.
    config.limits.max_transfers = CLIENTS;
    config.threads = LOOPS;
    let server = OurServer::start(config, DirConfig::new(root.path()));
    let addr = server.addr;
    let threads = 2 * LOOPS;
    wait_for_server_threads(threads);
    let fds_before = fd_count();
    let barrier = Barrier::new(CLIENTS);
    let done = AtomicBool::new(false);
    let span = ThreadSpan::new();
    let start = Instant::now();
    let failures: Vec<String> = thread::scope(|sc| {
        sc.spawn(|| {
            while !done.load(Ordering::SeqCst) {
                span.sample();
                thread::sleep(Duration::from_millis(20));
            }
        });
        let handles: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let barrier = &barrier;
                thread::Builder::new()
                    .stack_size(256 * 1024)
                    .spawn_scoped(sc, move || {
                        let mut opts = ClientOptions::default();
                        opts.blksize = Some(Blksize::new(1468).unwrap());
                        opts.windowsize = Some(Windowsize::new(4).unwrap());
                        opts.tsize = true;
                        opts.config = fast_config(200, 1000, 10);
                        barrier.wait();
                        match get_from(client_ip(i as u32), addr, "boot.img", &opts) {
                            Ok((got, _)) if got == data => None,
                            Ok(_) => Some("bytes differ".to_string()),
                            Err(e) => Some(e),
                        }
                    })
                    .unwrap()
            })
            .collect();
        let failures = handles
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .collect();
        done.store(true, Ordering::SeqCst);
        failures
    });
    let secs = start.elapsed().as_secs_f64();
    assert!(
        failures.is_empty(),
        "{ports:?}: {} of {CLIENTS} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    eprintln!(
        "boot storm ({ports:?}): {CLIENTS} x 1 MiB in {secs:.1} s = {:.1} MB/s aggregate; VmHWM {} MiB",
        (CLIENTS * data.len()) as f64 / secs / 1e6,
        proc_status("VmHWM") / 1024
    );
    // 500 transfers at once, and the server ran the same threads throughout.
    assert_eq!(
        span.seen(),
        (threads, threads),
        "{ports:?}: server threads under load"
    );
    // Idle again: every transfer's socket and file closed.
    assert!(
        wait_until(Duration::from_secs(20), || fd_count() <= fds_before),
        "{ports:?}: descriptors {} (before {fds_before})",
        fd_count()
    );
    // One transfer per client. The clients do not dally (as tftp-hpa's and curl's do not),
    // so a final ACK lost under load leaves the server's side to time out, after its
    // client already had the whole file: that is the only other outcome allowed.
    let reports = server.reports();
    assert_eq!(reports.len(), CLIENTS, "{ports:?}");
    let not_ok: Vec<_> = reports.iter().filter(|r| r.result.is_err()).collect();
    assert!(
        not_ok
            .iter()
            .all(|r| matches!(r.result, Err(TransferError::Timeout { .. }))
                && r.stats.bytes == data.len() as u64),
        "{ports:?}: {not_ok:?}"
    );
    if !not_ok.is_empty() {
        eprintln!("{ports:?}: {} final ACKs lost", not_ok.len());
    }
    server.stop().unwrap();
}
