//! Running as a service: `wirekit serve --user` giving up root once bound, socket
//! activation (sockets passed as descriptor 3 on, `LISTEN_PID`, `LISTEN_FDS`,
//! `LISTEN_FDNAMES`) and readiness notification (`NOTIFY_SOCKET`), with the built program;
//! and `Server::from_sockets`, the library side of activation.
//!
//! The `--user` tests need root (CI runs as root) and say "skipping" without it.
#![cfg(all(feature = "cli", target_os = "linux"))]

mod common;

use std::fs;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::fd::OwnedFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::cli::{BIN, Serving, signal};
use common::files::{TempDir, random_bytes};
use common::peers::run_quietly;
use common::wait::wait_until;
use wirekit::net::{self, ClientOptions, DirConfig, Server, ServerConfig, User};
use wirekit::tftp::server::PortMode;

/// How long anything here may take before the test fails.
const LIMIT: Duration = Duration::from_secs(20);

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn serve(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .args(args)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_FDNAMES");
    cmd
}

/// `wirekit serve ARGS` started as a service manager starts it: `socket` as descriptor 3,
/// `LISTEN_FDS=1`, and `LISTEN_PID` the program's own process ID. The socket goes in as the
/// shell's standard input, which only this child inherits; the shell moves it to
/// descriptor 3, sets `LISTEN_PID` to its own ID (`$$`) and execs the program, which keeps
/// that ID.
fn activated(socket: impl Into<OwnedFd>, args: &[&str]) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"exec 3<&0 0</dev/null; LISTEN_PID=$$; export LISTEN_PID; exec "$0" serve "$@""#)
        .arg(BIN)
        .args(args)
        .stdin(Stdio::from(socket.into()))
        .env("LISTEN_FDS", "1")
        .env_remove("LISTEN_FDNAMES")
        .env_remove("NOTIFY_SOCKET");
    cmd
}

/// Downloads `name` from `server` into `dir` and returns its bytes.
fn download(server: SocketAddr, name: &str, dir: &Path) -> Vec<u8> {
    let local = dir.join(format!("got-{name}"));
    net::get(
        server,
        name,
        &local,
        &ClientOptions::default(),
        &mut |_, _| {},
    )
    .unwrap_or_else(|e| panic!("get {name} from {server}: {e}"));
    fs::read(local).unwrap()
}

/// The numbers of a `/proc/PID/status` line, e.g. `Uid:` (real, effective, saved, fs).
fn status_ids(status: &str, field: &str) -> Vec<u32> {
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .unwrap_or_else(|| panic!("no {field} line in {status}"));
    line.split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect()
}

/// Asserts every thread of process `pid` runs as `user`: all four user and group IDs
/// its, and its group the only one.
fn assert_runs_as(pid: u32, user: &User) {
    let tasks: Vec<_> = fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .map(|t| t.unwrap().path())
        .collect();
    assert!(!tasks.is_empty());
    for task in tasks {
        let status = fs::read_to_string(task.join("status")).unwrap();
        assert_eq!(status_ids(&status, "Uid"), [user.uid(); 4], "{status}");
        assert_eq!(status_ids(&status, "Gid"), [user.gid(); 4], "{status}");
        assert_eq!(status_ids(&status, "Groups"), [user.gid()], "{status}");
    }
}

/// A root directory `nobody` may write to, holding `boot.bin`.
fn root_for(user: &User, name: &str) -> (TempDir, Vec<u8>) {
    let root = TempDir::new(name);
    let data = random_bytes(150_000, 12);
    fs::write(root.join("boot.bin"), &data).unwrap();
    fs::set_permissions(root.join("boot.bin"), fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::chown(&root, Some(user.uid()), Some(user.gid())).unwrap();
    fs::set_permissions(&root, fs::Permissions::from_mode(0o755)).unwrap();
    (root, data)
}

#[test]
fn user_flag_gives_up_root_once_bound_and_uploads_belong_to_the_user() {
    if !is_root() {
        eprintln!("skipping: --user needs the test to run as root");
        return;
    }
    let nobody = User::lookup("nobody").expect("a nobody user");
    assert_ne!(nobody.uid(), 0);
    let (root, data) = root_for(&nobody, "user");
    let root_arg = root.to_str().unwrap();
    let serving = Serving::spawn_with_stdin(serve(&[
        root_arg,
        "--listen",
        "127.0.0.1:0",
        "--user",
        "nobody",
        "--allow-create",
        "--threads",
        "2",
    ]));
    serving.wait_for_log(&["running as user nobody", &format!("uid {}", nobody.uid())]);
    assert_runs_as(serving.child.id(), &nobody);

    let client = TempDir::new("user-client");
    let addr = serving.addr();
    assert_eq!(download(addr, "boot.bin", &client), data);

    let upload = random_bytes(70_000, 99);
    fs::write(client.join("up.bin"), &upload).unwrap();
    net::put(
        addr,
        &client.join("up.bin"),
        "up.bin",
        &ClientOptions::default(),
        &mut |_, _| {},
    )
    .expect("upload");
    let meta = fs::metadata(root.join("up.bin")).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid()),
        (nobody.uid(), nobody.gid()),
        "the upload belongs to the user served as"
    );
    assert_eq!(fs::read(root.join("up.bin")).unwrap(), upload);
    // The loop threads and the Ctrl-C thread started after the switch, and still are nobody.
    assert_runs_as(serving.child.id(), &nobody);
}

#[test]
fn root_without_user_is_warned_about() {
    if !is_root() {
        eprintln!("skipping: the warning is for a server started as root");
        return;
    }
    let root = TempDir::new("root-warning");
    let serving =
        Serving::spawn_with_stdin(serve(&[root.to_str().unwrap(), "--listen", "127.0.0.1:0"]));
    assert!(
        serving.banner.contains(" INFO serving "),
        "{}",
        serving.banner
    );
    serving.wait_for_log(&[" WARN ", "running as root", "--user"]);
}

#[test]
fn an_unknown_user_fails_before_serving() {
    let root = TempDir::new("no-user");
    let (ok, out) = run_quietly(
        &mut serve(&[
            root.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--user",
            "wirekit-no-such-user",
        ]),
        LIMIT,
    );
    assert!(!ok, "{out}");
    assert!(out.contains("no such user: wirekit-no-such-user"), "{out}");
    assert!(!out.contains("serving"), "{out}");
}

#[test]
fn a_passed_socket_is_served_with_systemd_flag() {
    let root = TempDir::new("activated");
    let data = random_bytes(40_000, 3);
    fs::write(root.join("boot.bin"), &data).unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let mut cmd = activated(socket, &["--systemd", root.to_str().unwrap()]);
    cmd.env("LISTEN_FDNAMES", "tftp");
    let serving = Serving::spawn_with_stdin(cmd);
    assert_eq!(serving.addr(), addr, "{}", serving.banner);
    assert!(
        serving
            .banner
            .contains("sockets from the service manager: tftp"),
        "{}",
        serving.banner
    );
    // Our copy went to the child: the server's is the only one left on that port.
    assert_eq!(
        download(addr, "boot.bin", &TempDir::new("activated-client")),
        data
    );
}

#[test]
fn a_passed_socket_is_served_without_flag_when_no_address_is_given() {
    let root = TempDir::new("activated-auto");
    fs::write(root.join("a.txt"), b"passed\n").unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let serving = Serving::spawn_with_stdin(activated(socket, &[root.to_str().unwrap()]));
    assert_eq!(serving.addr(), addr, "{}", serving.banner);
    assert!(
        serving
            .banner
            .contains("(sockets from the service manager)"),
        "{}",
        serving.banner
    );
    assert_eq!(
        download(addr, "a.txt", &TempDir::new("activated-auto-client")),
        b"passed\n"
    );
}

#[test]
fn systemd_flag_without_sockets_for_this_process_fails() {
    let root = TempDir::new("activated-none");
    // Variables meant for another process (pid 1) pass nothing to this one.
    let mut cmd = serve(&["--systemd", root.to_str().unwrap()]);
    cmd.env("LISTEN_PID", "1").env("LISTEN_FDS", "1");
    let (ok, out) = run_quietly(&mut cmd, LIMIT);
    assert!(!ok, "{out}");
    assert!(out.contains("no sockets were passed"), "{out}");
}

#[test]
fn a_passed_stream_socket_is_refused_by_its_descriptor_and_name() {
    let root = TempDir::new("activated-stream");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut cmd = activated(listener, &["--systemd", root.to_str().unwrap()]);
    cmd.env("LISTEN_FDNAMES", "wrong.socket");
    let (ok, out) = run_keeping_stdin(cmd, &root);
    assert!(!ok, "{out}");
    assert!(
        out.contains("descriptor 3 (wrong.socket)") && out.contains("not a datagram socket"),
        "{out}"
    );
}

/// Runs `cmd` to its end (bounded) with the standard input it was given (`run_limited`
/// sets its own); returns whether it succeeded, and what it wrote to stderr.
fn run_keeping_stdin(mut cmd: Command, dir: &Path) -> (bool, String) {
    let log = dir.join("stderr.log");
    let mut child = cmd
        .stdout(Stdio::null())
        .stderr(fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    // The Command holds the parent's copy of the passed descriptor until dropped.
    drop(cmd);
    let mut status = None;
    wait_until(LIMIT, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let out = fs::read_to_string(&log).unwrap();
    (status.is_some_and(|s| s.success()), out)
}

/// Receives one notification (bounded).
fn notification(socket: &UnixDatagram) -> String {
    socket.set_read_timeout(Some(LIMIT)).unwrap();
    let mut buf = [0; 4096];
    let n = socket.recv(&mut buf).expect("a notification in time");
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

#[test]
fn ready_is_notified_once_serving_and_stopping_on_sigterm() {
    let root = TempDir::new("notify");
    fs::write(root.join("a.txt"), b"ready\n").unwrap();
    let path = root.join("notify.sock");
    let manager = UnixDatagram::bind(&path).unwrap();
    // A server that gave up root must still reach it, as it reaches systemd's.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o777)).unwrap();
    let nobody = is_root().then(|| User::lookup("nobody").expect("a nobody user"));
    let mut args = vec![root.to_str().unwrap(), "--listen", "127.0.0.1:0"];
    if nobody.is_some() {
        args.extend(["--user", "nobody"]);
    }
    let mut cmd = serve(&args);
    cmd.env("NOTIFY_SOCKET", &path);
    let mut serving = Serving::spawn_with_stdin(cmd);

    let ready = notification(&manager);
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    let addr = serving.addr();
    assert!(
        ready
            .lines()
            .any(|l| l.starts_with("STATUS=serving ") && l.contains(&addr.to_string())),
        "{ready:?}"
    );
    // Ready means: bound, and already the user it serves as.
    if let Some(nobody) = &nobody {
        assert_runs_as(serving.child.id(), nobody);
    }
    assert_eq!(
        download(addr, "a.txt", &TempDir::new("notify-client")),
        b"ready\n"
    );

    signal(&serving.child, "TERM");
    assert_eq!(notification(&manager), "STOPPING=1");
    assert!(serving.wait_for_exit(), "a clean stop");
}

#[test]
fn ready_reaches_an_abstract_notify_socket() {
    let root = TempDir::new("notify-abstract");
    let name = format!(
        "wirekit-test-notify-{}-{}",
        std::process::id(),
        root.file_name().unwrap().to_string_lossy()
    );
    let address = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let manager = UnixDatagram::bind_addr(&address).unwrap();
    let mut cmd = serve(&[root.to_str().unwrap(), "--listen", "127.0.0.1:0"]);
    cmd.env("NOTIFY_SOCKET", format!("@{name}"));
    let _serving = Serving::spawn_with_stdin(cmd);
    let ready = notification(&manager);
    assert!(ready.starts_with("READY=1\n"), "{ready:?}");
}

#[test]
fn from_sockets_serves_a_socket_bound_elsewhere() {
    let root = TempDir::new("from-sockets");
    fs::write(root.join("a.txt"), b"bound elsewhere\n").unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let server = Server::from_sockets(
        ServerConfig::default(),
        DirConfig::new(root.path()),
        vec![socket],
    )
    .expect("a server on the socket");
    assert_eq!(server.local_addrs(), [addr]);
    let running = server.spawn().unwrap();
    assert_eq!(
        download(addr, "a.txt", &TempDir::new("from-sockets-client")),
        b"bound elsewhere\n"
    );
    running.stop().unwrap();
}

#[test]
fn from_sockets_takes_a_dual_stack_ipv6_socket_in_single_port_mode_only() {
    let root = TempDir::new("from-sockets-v6");
    let refused = Server::from_sockets(
        ServerConfig::default(),
        DirConfig::new(root.path()),
        Vec::new(),
    );
    assert!(refused.is_err());

    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    socket.set_only_v6(false).unwrap();
    // The kernel makes a socket bound to a plain IPv6 address IPv6-only by itself; one
    // bound to IPv4 loopback's mapped address stays dual-stack, as `[::]:69` does.
    let mapped_loopback: SocketAddr = "[::ffff:127.0.0.1]:0".parse().unwrap();
    if socket.bind(&mapped_loopback.into()).is_err() {
        eprintln!("skipping the dual-stack case: no IPv6");
        return;
    }
    let port = socket.local_addr().unwrap().as_socket().unwrap().port();
    let err = Server::from_sockets(
        ServerConfig::default(),
        DirConfig::new(root.path()),
        vec![socket.try_clone().unwrap().into()],
    )
    .expect_err("a dual-stack socket is refused");
    assert!(err.to_string().contains("BindIPv6Only=ipv6-only"), "{err}");

    // In single-port mode the request socket answers IPv4 clients itself.
    fs::write(root.join("a.txt"), b"dual\n").unwrap();
    let mut config = ServerConfig::default();
    config.port_mode = PortMode::Single;
    let running = Server::from_sockets(config, DirConfig::new(root.path()), vec![socket.into()])
        .expect("single-port mode takes a dual-stack socket")
        .spawn()
        .unwrap();
    let v4 = SocketAddr::from(([127, 0, 0, 1], port));
    assert_eq!(
        download(v4, "a.txt", &TempDir::new("dual-client")),
        b"dual\n"
    );
    running.stop().unwrap();
}

/// The program each `ExecStart=` of `unit` runs (its first word, without the prefixes
/// `-@:+!` that change how systemd runs it).
fn exec_start_programs(unit: &str) -> Vec<String> {
    unit.lines()
        .filter_map(|l| l.trim().strip_prefix("ExecStart="))
        .filter_map(|cmd| cmd.split_whitespace().next())
        .map(|p| p.trim_start_matches(['-', '@', ':', '+', '!']).to_string())
        .collect()
}

/// Where the README's install commands put the program: `install ... wirekit DIR/` or
/// `cargo install ... --root ROOT` (ROOT/bin/wirekit).
fn readme_install_paths(readme: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for line in readme.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        let after = |flag: &str| {
            words
                .iter()
                .position(|w| *w == flag)
                .and_then(|i| words.get(i + 1))
        };
        if words.windows(2).any(|w| w == ["cargo", "install"]) {
            if let Some(root) = after("--root") {
                paths.push(format!("{}/bin/wirekit", root.trim_end_matches('/')));
            }
        } else if let Some(i) = words.iter().position(|w| *w == "install")
            && words[i + 1..]
                .iter()
                .any(|w| w.ends_with("target/release/wirekit"))
            && let Some(dir) = words.last()
        {
            paths.push(format!("{}/wirekit", dir.trim_end_matches('/')));
        }
    }
    paths
}

/// Every unit in contrib/systemd passes `systemd-analyze verify`, and runs the program
/// where the README installs it. verify wants `ExecStart=`'s program to exist, and a
/// fresh machine (CI) has none at /usr/local/bin: the units are verified from a copy with
/// this build's program in its place, after the test has checked that place is the one
/// the README's install step writes (and not in a home directory, which the unit's
/// `ProtectHome=yes` hides).
#[test]
fn unit_files_pass_systemd_analyze_verify() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = fs::read_to_string(manifest.join("README.md")).unwrap();
    let installed = readme_install_paths(&readme);
    assert!(
        !installed.is_empty(),
        "the README says nowhere where to install wirekit"
    );
    let units_dir = manifest.join("contrib/systemd");
    let mut units: Vec<_> = fs::read_dir(&units_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let ext = p.extension().and_then(|e| e.to_str()).unwrap_or_default();
            ["service", "socket", "timer", "path", "target"].contains(&ext)
        })
        .collect();
    units.sort();
    assert!(units.len() >= 2, "{units:?}");

    let dir = TempDir::new("units");
    let mut programs = Vec::new();
    for unit in &units {
        let name = unit.file_name().unwrap();
        let mut text = fs::read_to_string(unit).unwrap();
        for program in exec_start_programs(&text) {
            assert!(
                installed.contains(&program),
                "{}: ExecStart runs {program}, but the README installs wirekit at {installed:?}",
                name.display()
            );
            assert!(
                !program.starts_with("/home/") && !program.starts_with("/root/"),
                "{program}: ProtectHome=yes hides it from the service"
            );
            text = text.replace(&program, BIN);
            programs.push(program);
        }
        fs::write(dir.join(name), text).unwrap();
    }
    assert!(!programs.is_empty(), "no unit runs the program");
    let service = fs::read_to_string(dir.join("wirekit.service")).unwrap();
    assert!(service.contains("Type=notify") && service.contains("serve --systemd"));

    if common::peers::peer("systemd-analyze").is_none() {
        return;
    }
    let mut cmd = Command::new("systemd-analyze");
    cmd.arg("verify");
    for unit in &units {
        cmd.arg(dir.join(unit.file_name().unwrap()));
    }
    let (ok, out) = run_quietly(&mut cmd, LIMIT);
    assert!(ok, "{out}");
    assert!(
        !out.contains("wirekit."),
        "a complaint about our units: {out}"
    );
}
