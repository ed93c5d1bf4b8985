//! The `wirekit` program, run as a user would.
#![cfg(feature = "cli")]

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_wirekit");

fn tempdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("wirekit-cli-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

/// A free loopback port (bound and released; good enough for a test).
fn free_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running `wirekit serve` and the lines it has logged so far.
struct Serving(Child, Arc<Mutex<Vec<String>>>);

impl Serving {
    /// Waits (bounded) for a log line containing every one of `parts`.
    fn wait_for_log(&self, parts: &[&str]) -> String {
        let start = Instant::now();
        loop {
            let lines = self.1.lock().unwrap();
            if let Some(l) = lines.iter().find(|l| parts.iter().all(|p| l.contains(p))) {
                return l.clone();
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "no log line with {parts:?} in {lines:?}"
            );
            drop(lines);
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `wirekit serve` and waits for its "serving" line.
fn serve(dir: &Path, args: &[&str]) -> (Serving, String) {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve").args(args).current_dir(dir);
    start(cmd)
}

/// Starts `cmd`, a `wirekit serve` however launched, and waits for its "serving" line.
fn start(mut cmd: Command) -> (Serving, String) {
    let mut child = cmd.stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    // Keep reading the log, so the server never blocks on a full pipe and tests can look.
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    (Serving(child, log), first)
}

fn wirekit(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn serve_with_no_arguments_serves_the_current_directory_on_loopback() {
    let dir = tempdir("default");
    fs::write(dir.join("hello.txt"), b"hello\n").unwrap();
    let (_server, banner) = serve(&dir, &[]);
    assert!(banner.contains("127.0.0.1:6969"), "{banner}");
    assert!(banner.contains("read-only"), "{banner}");
    let out = wirekit(&dir, &["get", "127.0.0.1:6969", "hello.txt", "copy.txt"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read(dir.join("copy.txt")).unwrap(), b"hello\n");
    // Quiet in scripts: no progress bar when stderr is not a terminal.
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn get_and_put_with_options_and_clear_errors() {
    let dir = tempdir("opts");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 251) as u8).collect();
    fs::write(dir.join("fw.bin"), &data).unwrap();
    let port = free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let (serving, _) = serve(&dir, &["--listen", &listen, "--allow-create"]);
    let server = format!("127.0.0.1:{port}");

    let out = wirekit(
        &dir,
        &[
            "get",
            &server,
            "fw.bin",
            "a.bin",
            "--blksize",
            "1468",
            "--windowsize",
            "16",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read(dir.join("a.bin")).unwrap(), data);
    // One line per transfer: peer, direction, file, bytes, duration, rate, retransmissions,
    // outcome.
    let line = serving.wait_for_log(&[
        "read",
        "\"fw.bin\"",
        "200000 bytes",
        "MB/s",
        "retransmissions",
        "ok",
    ]);
    assert!(line.starts_with("127.0.0.1:"), "{line}");

    let out = wirekit(
        &dir,
        &[
            "put",
            &server,
            "a.bin",
            "b.bin",
            "--blksize",
            "8192",
            "--timeout",
            "2",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read(dir.join("b.bin")).unwrap(), data);

    // An existing file is not replaced without --allow-overwrite: ERROR 6, one line, exit 1.
    let out = wirekit(&dir, &["put", &server, "a.bin", "b.bin"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("File already exists"), "{err}");

    serving.wait_for_log(&["refused", "\"b.bin\"", "error 6"]);

    let out = wirekit(&dir, &["get", &server, "no-such-file"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("wirekit: ") && err.contains("not found"),
        "{err}"
    );
    assert!(!dir.join("no-such-file").exists());
}

#[test]
fn netascii_get_converts_line_ends() {
    let dir = tempdir("ascii");
    fs::write(dir.join("t.txt"), b"one\ntwo\r\nthree\n").unwrap();
    let port = free_port().to_string();
    let (_server, _) = serve(&dir, &["--listen", &format!("127.0.0.1:{port}")]);
    let out = wirekit(
        &dir,
        &[
            "get",
            &format!("127.0.0.1:{port}"),
            "t.txt",
            "u.txt",
            "--netascii",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(fs::read(dir.join("u.txt")).unwrap(), b"one\ntwo\r\nthree\n");
}

#[test]
fn sigterm_stops_the_server_and_leaves_no_partial_upload() {
    let dir = tempdir("sigterm");
    let port = free_port().to_string();
    let (mut server, _) = serve(
        &dir,
        &[
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--allow-create",
            "--grace",
            "1",
        ],
    );
    // An upload that stalls after its first block: WRQ, DATA 1, then silence.
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    client
        .send_to(b"\0\x02stalled.bin\0octet\0", format!("127.0.0.1:{port}"))
        .unwrap();
    let mut buf = [0u8; 600];
    let (n, tid) = client.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &[0, 4, 0, 0]);
    let mut data = vec![0, 3, 0, 1];
    data.extend_from_slice(&[7u8; 512]);
    client.send_to(&data, tid).unwrap();
    let (n, _) = client.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &[0, 4, 0, 1]);

    let status = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let start = Instant::now();
    let exit = loop {
        if let Some(s) = server.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "server did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit:?}");
    let left: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// The address in a "serving DIR on ADDR (...)" banner.
fn banner_addr(banner: &str) -> String {
    let rest = banner
        .rsplit_once(" on ")
        .map(|(_, r)| r)
        .unwrap_or_default();
    rest.split_once(" (")
        .map(|(a, _)| a)
        .unwrap_or_default()
        .to_string()
}

/// A server killed (SIGKILL) in the middle of an upload leaves nothing behind once it is
/// started again, and the storage flags reach the server.
#[test]
fn killed_mid_upload_leaves_nothing_and_storage_flags_apply() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempdir("sigkill");
    let outside = tempdir("sigkill-outside");
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--allow-create",
        "--create-mode",
        "640",
        "--refuse-linked",
    ];
    let (mut server, banner) = serve(&dir, &args);
    let addr = banner_addr(&banner);
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    client.send_to(b"\0\x02killed.bin\0octet\0", &addr).unwrap();
    let mut buf = [0u8; 600];
    let (n, tid) = client.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &[0, 4, 0, 0]);
    let mut data = vec![0, 3, 0, 1];
    data.extend_from_slice(&[7u8; 512]);
    client.send_to(&data, tid).unwrap();
    let (n, _) = client.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &[0, 4, 0, 1]);
    server.0.kill().unwrap();
    server.0.wait().unwrap();
    drop(server);

    let (_server, banner) = serve(&dir, &args);
    let addr = banner_addr(&banner);
    let left: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");

    // --create-mode: new files get exactly that mode.
    fs::write(outside.join("up.txt"), b"uploaded\n").unwrap();
    let local = outside.join("up.txt");
    let out = wirekit(&dir, &["put", &addr, local.to_str().unwrap(), "up.txt"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = fs::metadata(dir.join("up.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o640);

    // --refuse-linked: a hard link to a file elsewhere is not served.
    fs::write(outside.join("secret"), b"secret\n").unwrap();
    fs::hard_link(outside.join("secret"), dir.join("linked")).unwrap();
    let out = wirekit(&outside, &["get", &addr, "linked", "got"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("more than one hard link"), "{err}");
    assert!(!outside.join("got").exists());
}

/// A server running as an ordinary user cannot give a replaced file back to its owner, so
/// it refuses the upload up front instead of handing the file to itself.
#[test]
fn unprivileged_server_refuses_to_replace_what_it_cannot_keep() {
    let root_user = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n");
    let setpriv = Command::new("setpriv")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !root_user || !setpriv {
        assert!(
            std::env::var("WIREKIT_REQUIRE_PEERS").as_deref() != Ok("1"),
            "needs root and setpriv, and WIREKIT_REQUIRE_PEERS=1"
        );
        eprintln!("skipping: needs root and setpriv");
        return;
    }
    let dir = tempdir("unpriv");
    std::os::unix::fs::chown(&dir, Some(1234), Some(1234)).unwrap();
    fs::write(dir.join("root.cfg"), b"root's\n").unwrap();
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid", "1234", "--regid", "1234", "--clear-groups", BIN])
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--allow-create", "--allow-overwrite"])
        .arg(&dir);
    let (_server, banner) = start(cmd);
    let addr = banner_addr(&banner);
    let local = std::env::temp_dir().join(format!("wirekit-cli-unpriv-{}.txt", std::process::id()));
    fs::write(&local, b"uploaded\n").unwrap();

    let out = wirekit(&dir, &["put", &addr, local.to_str().unwrap(), "root.cfg"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error 2") || err.contains("ERROR 2"), "{err}");
    assert!(err.contains("cannot keep the owner"), "{err}");
    assert_eq!(fs::read(dir.join("root.cfg")).unwrap(), b"root's\n");
    // A new file is the server's own.
    let out = wirekit(&dir, &["put", &addr, local.to_str().unwrap(), "new.cfg"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    use std::os::unix::fs::MetadataExt;
    assert_eq!(fs::metadata(dir.join("new.cfg")).unwrap().uid(), 1234);
    let _ = fs::remove_file(&local);
}

/// Where uploads cannot be anonymous (no `O_TMPFILE`, or here no `/proc` to link one
/// through), an upload in progress has a random hidden name that is refused by name, and
/// what a killed server left under such a name is gone once a server starts again.
#[test]
fn named_fallback_is_refused_by_name_and_swept_after_a_kill() {
    let root_user = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n");
    let unshare = Command::new("unshare")
        .args(["--mount", "true"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !root_user || !unshare {
        assert!(
            std::env::var("WIREKIT_REQUIRE_PEERS").as_deref() != Ok("1"),
            "needs root and unshare, and WIREKIT_REQUIRE_PEERS=1"
        );
        eprintln!("skipping: needs root and unshare");
        return;
    }
    let dir = tempdir("fallback");
    let script = format!(
        "umount -l /proc && exec {BIN} serve --listen 127.0.0.1:0 --allow-create {}",
        dir.display()
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", &script]);
    let (mut server, banner) = start(cmd);
    let addr = banner_addr(&banner);
    let client = UdpSocket::bind("127.0.0.1:0").unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    client.send_to(b"\0\x02up.bin\0octet\0", &addr).unwrap();
    let mut buf = [0u8; 600];
    let (n, tid) = client.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &[0, 4, 0, 0]);
    let mut data = vec![0, 3, 0, 1];
    data.extend_from_slice(&[7u8; 512]);
    client.send_to(&data, tid).unwrap();
    let (n, _) = client.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], &[0, 4, 0, 1]);

    let names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
    let temp = &names[0];
    assert!(
        temp.starts_with('.') && temp.ends_with(".wirekit-part"),
        "{temp}"
    );
    assert_eq!(temp.len(), 1 + 32 + ".wirekit-part".len(), "{temp}");
    let mut rrq = b"\0\x01".to_vec();
    rrq.extend_from_slice(temp.as_bytes());
    rrq.extend_from_slice(b"\0octet\0");
    let probe = UdpSocket::bind("127.0.0.1:0").unwrap();
    probe
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    probe.send_to(&rrq, &addr).unwrap();
    let (n, _) = probe.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..4], &[0, 5, 0, 2], "{:?}", &buf[..n]);

    server.0.kill().unwrap();
    server.0.wait().unwrap();
    assert!(dir.join(temp).exists(), "the kill left nothing to sweep");
    let (_server, _) = serve(&dir, &["--listen", "127.0.0.1:0"]);
    let left: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}
