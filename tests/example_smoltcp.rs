//! `examples/smoltcp_client.rs` and `examples/smoltcp_server.rs`, run for real: smoltcp on a
//! TAP device, the kernel's network stack on the other side of it, all inside a network
//! namespace this test makes (and removes, also when it fails):
//!
//! ```text
//!   test's namespace wirekit-smol-PID-N
//!   ┌──────────────────────────────────────────────────────────────────────────┐
//!   │ the example (smoltcp, 192.168.69.1)  ══ TAP ══  kernel (192.168.69.100)   │
//!   │ a thread of this test, in the          wkPID-N    wirekit serve, curl,    │
//!   │ namespace, with the TAP open                      tftp-hpa                │
//!   └──────────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! - the smoltcp client downloads a 4 MiB file from `wirekit serve` with blksize 1468 and
//!   windowsize 16, byte for byte, then again with smoltcp's `FaultInjector` dropping 5 %
//!   of frames each way, and uploads a 3 MB file;
//! - curl and tftp-hpa download from the smoltcp server, in octet and netascii, and
//!   tftp-hpa uploads to it.
//!
//! The examples are included as modules and run on threads of this test (as
//! tests/examples.rs runs the others): a thread enters the namespace (`setns`), and
//! smoltcp's `TunTapInterface` opens the TAP there. It needs root (a namespace, a TAP
//! device). Without it it says `skipping: ...` and passes, unless `WIREKIT_REQUIRE_PEERS=1`,
//! where that fails.
#![cfg(all(feature = "cli", target_os = "linux"))]
// Both examples include examples/smoltcp_utils; each uses some of it.
#![allow(dead_code, clippy::duplicate_mod)]

mod common;

#[path = "../examples/smoltcp_client.rs"]
mod smoltcp_client;
#[path = "../examples/smoltcp_server.rs"]
mod smoltcp_server;

use std::fs;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread;
use std::time::Duration;

use common::cli::{BIN, Serving};
use common::files::{TempDir, assert_same, random_bytes, read, text_lf};
use common::netns::{
    delete_namespace, enter_namespace, in_ns, ip_cmd, sweep_namespaces_of_dead_runs,
};
use common::peers::{curl, missing, peer, root_for, run};
use common::wait::wait_for;
use wirekit::tftp::Stats;

/// The kernel's side of the TAP, where `wirekit serve` and the clients run.
const HOST: Ipv4Addr = Ipv4Addr::new(192, 168, 69, 100);
/// smoltcp's side (the examples' default address).
const STACK: Ipv4Addr = Ipv4Addr::new(192, 168, 69, 1);
/// How long one run of an example may take before the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(120);

// ------------------------------------------------------------------------------- the lab

/// Prefix of every namespace this test makes; a run's own add its pid, so that runs at once
/// do not collide and a later run can tell what a killed one left behind.
const NS_PREFIX: &str = "wirekit-smol-";

/// A network namespace with a TAP device in it, the kernel's side of the TAP at
/// [`HOST`]/24. Removed with the TAP when dropped, also when the test panics: nothing is
/// made outside it.
struct Lab {
    ns: String,
    tap: String,
    /// One lab at a time in this process: smoltcp opens the TAP without `O_CLOEXEC`, so a
    /// program the other test started meanwhile would inherit the TAP and keep it (and
    /// its namespace) after the test that made it ended.
    _alone: MutexGuard<'static, ()>,
}

impl Lab {
    /// The lab, or `None` (after saying why) where it cannot be made.
    fn new() -> Option<Lab> {
        if !root_for("to make a network namespace and a TAP device") {
            return None;
        }
        peer("ip")?;
        if !Path::new("/dev/net/tun").exists() {
            missing("/dev/net/tun", "is absent: the kernel has no TUN/TAP");
            return None;
        }
        static ALONE: Mutex<()> = Mutex::new(());
        // A test that failed holding it poisons it; the next one still runs.
        let alone = ALONE.lock().unwrap_or_else(|e| e.into_inner());
        sweep_namespaces_of_dead_runs(NS_PREFIX);
        static RUN: AtomicUsize = AtomicUsize::new(0);
        let (pid, n) = (std::process::id(), RUN.fetch_add(1, Ordering::Relaxed));
        let ns = format!("{NS_PREFIX}{pid}-{n}");
        // Root without the capabilities (a container's) cannot: a privilege missing.
        let made = run(ip_cmd().args(["netns", "add", &ns]));
        if !made.status.success() {
            missing("ip netns add", &format!("fails: {}", made.stderr.trim()));
            return None;
        }
        // From here on the guard removes what was made, whatever fails next.
        let lab = Lab {
            ns,
            // An interface name has at most 15 bytes.
            tap: format!("wk{}-{n}", pid % 1_000_000),
            _alone: alone,
        };
        lab.ip("link set lo up");
        let tap = run(ip_cmd().args([
            "-n", &lab.ns, "tuntap", "add", "name", &lab.tap, "mode", "tap",
        ]));
        if !tap.status.success() {
            missing("ip tuntap add", &format!("fails: {}", tap.stderr.trim()));
            return None;
        }
        lab.ip(&format!("link set {} up", lab.tap));
        lab.ip(&format!("addr add {HOST}/24 dev {}", lab.tap));
        Some(lab)
    }

    /// Runs `ip -n NS COMMAND` (its words split at blanks), failing the test when it fails.
    fn ip(&self, command: &str) {
        let mut cmd = ip_cmd();
        cmd.args(["-n", &self.ns]).args(command.split_whitespace());
        run(&mut cmd).success(&format!("ip -n {} {command}", self.ns));
    }

    /// `program`, to run in the namespace.
    fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        in_ns(&self.ns, program)
    }

    /// The smoltcp options of the examples: this lab's TAP, faults seeded by `seed`.
    fn net_args(&self, seed: u32) -> Vec<String> {
        ["--tap", &self.tap, "--seed", &seed.to_string()]
            .map(String::from)
            .to_vec()
    }

    /// Runs `f` on a thread inside the namespace, bounded by [`RUN_LIMIT`].
    fn run_inside<T: Send + 'static>(
        &self,
        what: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        let ns = self.ns.clone();
        let (done, result) = mpsc::channel();
        thread::spawn(move || {
            enter_namespace(&ns);
            let _ = done.send(f());
        });
        result
            .recv_timeout(RUN_LIMIT)
            .unwrap_or_else(|e| panic!("{what}: no result within {RUN_LIMIT:?} ({e})"))
    }

    /// `wirekit serve DIR` on [`HOST`], a free port, uploads allowed.
    fn wirekit_serve(&self, dir: &Path) -> Serving {
        let mut cmd = self.command(BIN);
        cmd.arg("serve").arg(dir).args([
            "--listen",
            &format!("{HOST}:0"),
            "--threads",
            "1",
            "--allow-create",
        ]);
        Serving::spawn(cmd)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // A persistent TAP outlives its users; deleting the namespace would delete it too,
        // but only once the last descriptor of the namespace is closed.
        let mut del = ip_cmd();
        del.args([
            "-n", &self.ns, "tuntap", "del", "name", &self.tap, "mode", "tap",
        ]);
        let _ = del.status();
        delete_namespace(&self.ns);
    }
}

// ---------------------------------------------------------------------------- the client

/// Runs the smoltcp client with these command-line arguments, in the lab.
fn smoltcp_client(lab: &Lab, args: &[String]) -> Result<Stats, String> {
    let args = smoltcp_client::parse_args(args.iter().cloned()).expect("the client's arguments");
    lab.run_inside("smoltcp_client", move || {
        smoltcp_client::run(&args).map_err(|e| e.to_string())
    })
}

/// The number before ` resent` in a `wirekit serve` log line.
fn resent(line: &str) -> u64 {
    line.split_once(" resent")
        .and_then(|(before, _)| before.rsplit(' ').next()?.parse().ok())
        .unwrap_or_else(|| panic!("no resent count in {line:?}"))
}

#[test]
fn the_smoltcp_client_downloads_and_uploads_through_a_tap_device() {
    let Some(lab) = Lab::new() else { return };
    let served = TempDir::new("smol-served");
    let local = TempDir::new("smol-local");
    let image = random_bytes(4 << 20, 21);
    fs::write(served.join("image.bin"), &image).unwrap();
    // The same bytes under another name, to tell the two downloads apart in the log.
    fs::write(served.join("lossy.bin"), &image).unwrap();
    let server = lab.wirekit_serve(&served);
    let at = server.addr().to_string();

    // Clean: blksize 1468 and windowsize 16 are the client's defaults.
    let got = local.join("image.bin");
    let mut args = lab.net_args(1);
    args.extend([&at, "get", "image.bin"].map(String::from));
    args.push(got.display().to_string());
    let stats = smoltcp_client(&lab, &args).expect("the download");
    assert_same(&read(&got), &image, "the download through the TAP");
    assert_eq!(stats.bytes, image.len() as u64);
    let line = server.wait_for_log(&["read \"image.bin\"", "ok", "blksize 1468", "windowsize 16"]);
    eprintln!("clean: {line}");

    // 5 % of frames dropped each way, by smoltcp's fault injector.
    fs::remove_file(&got).unwrap();
    let mut args = lab.net_args(5);
    args.extend(["--drop-chance", "5", &at, "get", "lossy.bin"].map(String::from));
    args.push(got.display().to_string());
    smoltcp_client(&lab, &args).expect("the download with 5 % of frames lost");
    assert_same(&read(&got), &image, "the download through the lossy TAP");
    let lossy = server.wait_for_log(&["read \"lossy.bin\"", "ok"]);
    eprintln!("lossy: {lossy}");
    assert!(resent(&lossy) > 0, "nothing was lost: {lossy}");

    // An upload.
    let dump = random_bytes(3_000_000, 22);
    let source = local.join("dump.bin");
    fs::write(&source, &dump).unwrap();
    let mut args = lab.net_args(3);
    args.extend([&at, "put"].map(String::from));
    args.push(source.display().to_string());
    args.push("dump.bin".into());
    let stats = smoltcp_client(&lab, &args).expect("the upload");
    assert_eq!(stats.bytes, dump.len() as u64);
    server.wait_for_log(&["write \"dump.bin\"", "ok"]);
    assert_same(
        &read(&served.join("dump.bin")),
        &dump,
        "the upload through the TAP",
    );
}

// ---------------------------------------------------------------------------- the server

/// The smoltcp server, running on a thread in the lab until dropped.
struct SmoltcpServer {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<Result<(), String>>>,
    log: Arc<Mutex<Vec<String>>>,
}

impl SmoltcpServer {
    fn start(lab: &Lab, files: &[PathBuf]) -> SmoltcpServer {
        let mut args = lab.net_args(7);
        args.extend(files.iter().map(|f| f.display().to_string()));
        let args = smoltcp_server::parse_args(args).expect("the server's arguments");
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (ns, stopped, lines) = (lab.ns.clone(), stop.clone(), log.clone());
        let thread = thread::spawn(move || {
            enter_namespace(&ns);
            smoltcp_server::run(
                &args,
                || stopped.load(Ordering::Relaxed),
                |line| lines.lock().unwrap().push(line),
            )
            .map_err(|e| e.to_string())
        });
        let server = SmoltcpServer {
            stop,
            thread: Some(thread),
            log,
        };
        server.wait_for_log("serving ");
        server
    }

    /// Waits (bounded) for a line containing `part`, and returns it.
    fn wait_for_log(&self, part: &str) -> String {
        let find = || {
            self.log
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(part))
                .cloned()
        };
        wait_for(
            Duration::from_secs(10),
            || find().is_some() || self.thread.as_ref().is_some_and(|t| t.is_finished()),
            || format!("no {part:?} in {:?}", self.log.lock().unwrap()),
        );
        find().unwrap_or_else(|| panic!("the server ended: {:?}", self.log.lock().unwrap()))
    }
}

impl Drop for SmoltcpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let ended = thread.join();
            if !thread::panicking() {
                ended.expect("the server's thread").expect("the server");
            }
        }
    }
}

#[test]
fn curl_and_tftp_hpa_fetch_from_the_smoltcp_server() {
    let Some(lab) = Lab::new() else { return };
    let (Some(curl), Some(tftp)) = (curl(), peer("tftp")) else {
        return;
    };
    let files = TempDir::new("smol-files");
    let local = TempDir::new("smol-fetched");
    let image = random_bytes(1 << 20, 31);
    // Text with LF line ends and a lone CR, sized so CR LF pairs straddle block ends.
    let mut text = text_lf(60_000);
    text.extend_from_slice(b"a lone\rCR, then the end\n");
    fs::write(files.join("image.bin"), &image).unwrap();
    fs::write(files.join("notes.txt"), &text).unwrap();
    let server = SmoltcpServer::start(&lab, &[files.join("image.bin"), files.join("notes.txt")]);
    let url = |name: &str| format!("tftp://{STACK}/{name}");

    // curl, octet, with the Ethernet-sized block and with the default one.
    for blksize in ["1468", "512"] {
        let got = local.join(format!("curl-{blksize}.bin"));
        let mut cmd = lab.command(&curl);
        cmd.args(["-sS", "--tftp-blksize", blksize, "-o"])
            .arg(&got)
            .arg(url("image.bin"));
        run(&mut cmd).success("curl get");
        assert_same(&read(&got), &image, &format!("curl, blksize {blksize}"));
    }
    // curl in netascii: it asks for netascii and writes what arrives as it arrives, CR LF
    // line ends (and CR NUL for the lone CR), which is the server's encoding to check.
    let got = local.join("curl-notes.txt");
    let mut cmd = lab.command(&curl);
    cmd.args(["-sS", "-o"])
        .arg(&got)
        .arg(format!("{};mode=netascii", url("notes.txt")));
    run(&mut cmd).success("curl get, netascii");
    let mut wire = Vec::new();
    for &b in &text {
        match b {
            b'\n' => wire.extend_from_slice(b"\r\n"),
            b'\r' => wire.extend_from_slice(b"\r\0"),
            b => wire.push(b),
        }
    }
    assert_same(&read(&got), &wire, "curl, netascii (the wire form)");

    // tftp-hpa, octet and netascii (which it converts back to LF line ends).
    let hpa = |mode: &str, command: &[&str]| {
        let mut cmd = lab.command(&tftp);
        cmd.current_dir(local.path())
            .args(["-m", mode, &STACK.to_string(), "69", "-c"])
            .args(command);
        run(&mut cmd).success(&format!("tftp -m {mode} -c {}", command.join(" ")));
    };
    hpa("binary", &["get", "image.bin", "hpa.bin"]);
    assert_same(&read(&local.join("hpa.bin")), &image, "tftp-hpa, octet");
    hpa("netascii", &["get", "notes.txt", "hpa-notes.txt"]);
    assert_same(
        &read(&local.join("hpa-notes.txt")),
        &text,
        "tftp-hpa, netascii",
    );

    // An upload into the server's memory, and back.
    hpa("binary", &["put", "hpa.bin", "uploaded.bin"]);
    server.wait_for_log("stored \"uploaded.bin\" (1048576 bytes)");
    hpa("binary", &["get", "uploaded.bin", "again.bin"]);
    assert_same(
        &read(&local.join("again.bin")),
        &image,
        "an upload, fetched back",
    );

    for name in [
        "read \"image.bin\"",
        "read \"notes.txt\"",
        "write \"uploaded.bin\"",
    ] {
        let line = server.wait_for_log(name);
        assert!(line.contains(" ok"), "{line}");
    }
}
