//! Load: a network-boot storm of 500 clients at once against one server.

mod common;

use std::fs;
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use wirekit::net::{ClientOptions, get_into};
use wirekit::tftp::{Blksize, Windowsize};

const CLIENTS: usize = 500;

#[test]
fn boot_storm_500_clients() {
    let root = tempdir("load");
    let data = content(1 << 20, 71);
    fs::write(root.join("boot.img"), &data).unwrap();
    let mut config = server_config(&root, fast_config(200, 1000, 10));
    config.max_transfers = CLIENTS + 10;
    let (server, addr) = spawn(config);
    let threads_before = warm_up_and_count_threads(addr, "boot.img");
    let fds_before = fd_count();
    let barrier = Barrier::new(CLIENTS);
    let start = Instant::now();
    let failures: Vec<String> = thread::scope(|sc| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|_| {
                let barrier = &barrier;
                let data = &data;
                thread::Builder::new()
                    .stack_size(256 * 1024)
                    .spawn_scoped(sc, move || {
                        let mut opts = ClientOptions::default();
                        opts.blksize = Some(Blksize::new(1468).unwrap());
                        opts.windowsize = Some(Windowsize::new(4).unwrap());
                        opts.tsize = true;
                        opts.config = fast_config(200, 1000, 10);
                        barrier.wait();
                        let mut v = Vec::with_capacity(data.len());
                        match get_into(addr, "boot.img", &mut v, &opts, &mut no_progress()) {
                            Ok(_) if v == *data => None,
                            Ok(_) => Some("bytes differ".to_string()),
                            Err(e) => Some(e.to_string()),
                        }
                    })
                    .unwrap()
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .collect()
    });
    let secs = start.elapsed().as_secs_f64();
    assert!(
        failures.is_empty(),
        "{} of {CLIENTS} failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
    let total = (CLIENTS * data.len()) as f64;
    println!(
        "boot storm: {CLIENTS} x 1 MiB in {secs:.1} s = {:.1} MB/s aggregate; VmHWM {} MiB",
        total / secs / 1e6,
        proc_status("VmHWM") / 1024
    );
    eprintln!(
        "boot storm: {CLIENTS} x 1 MiB in {secs:.1} s = {:.1} MB/s aggregate; VmHWM {} MiB",
        total / secs / 1e6,
        proc_status("VmHWM") / 1024
    );
    // Idle again: every transfer thread and socket gone (server transfers dally a while).
    assert!(
        wait_until(Duration::from_secs(20), || proc_status("Threads")
            <= threads_before
            && fd_count() <= fds_before),
        "threads {} (before {threads_before}), fds {} (before {fds_before})",
        proc_status("Threads"),
        fd_count()
    );
    server.stop().unwrap();
}
