//! Empty files, to every client: an OACK never carries `tsize 0` for a read (curl takes it
//! for an error and gives up), so an empty file is answered as if tsize had not been asked.
//! On the machine, byte for byte, and end to end with curl, tftp-hpa, atftp and busybox
//! against the `wirekit` program.

mod sim;

use sim::{ServerSide, client_addr};
use wirekit::tftp::{Blksize, Instant, Options, Packet, Request, Text};

const T0: Instant = Instant::ZERO;

/// An octet RRQ for `f` asking for `blksize` and `tsize 0` when given.
fn rrq(blksize: Option<u64>, tsize: bool) -> Vec<u8> {
    Packet::Rrq(Request {
        filename: Text::from("f"),
        mode: wirekit::tftp::Mode::Octet,
        options: {
            let mut options = Options::default();
            options.blksize = blksize.map(Blksize::new);
            options.tsize = tsize.then_some(0);
            options
        },
    })
    .to_vec()
    .unwrap()
}

/// What the server sends first for a read of `file` requested with `request`.
fn first_answer(file: &[u8], request: &[u8]) -> Vec<Vec<u8>> {
    let mut s = ServerSide::serving(file.to_vec());
    s.request(T0, client_addr(), request);
    assert_eq!(s.len(), 1, "refused: {:?}", s.refused);
    s.drain(T0).into_iter().map(|(_, bytes)| bytes).collect()
}

#[test]
fn empty_file_oack_leaves_tsize_out() {
    let sent = first_answer(b"", &rrq(Some(1024), true));
    assert_eq!(sent, [b"\0\x06blksize\x001024\0".to_vec()]);
}

#[test]
fn empty_file_with_only_tsize_asked_is_answered_without_oack() {
    // Nothing left to answer: plain RFC 1350, the one empty DATA at once.
    let sent = first_answer(b"", &rrq(None, true));
    assert_eq!(sent, [b"\0\x03\0\x01".to_vec()]);
}

#[test]
fn other_files_keep_tsize_in_the_oack() {
    let sent = first_answer(b"x", &rrq(Some(1024), true));
    assert_eq!(sent, [b"\0\x06blksize\x001024\0tsize\x001\0".to_vec()]);
    let sent = first_answer(&[7; 512], &rrq(None, true));
    assert_eq!(sent, [b"\0\x06tsize\x00512\0".to_vec()]);
}

#[test]
fn empty_upload_still_echoes_its_tsize() {
    // Writes are unchanged: the OACK echoes the size the client announced, 0 included.
    let wrq = Packet::Wrq(Request {
        filename: Text::from("f"),
        mode: wirekit::tftp::Mode::Octet,
        options: {
            let mut options = Options::default();
            options.tsize = Some(0);
            options
        },
    })
    .to_vec()
    .unwrap();
    let mut s = ServerSide::serving(Vec::new());
    s.request(T0, client_addr(), &wrq);
    let sent: Vec<_> = s.drain(T0).into_iter().map(|(_, b)| b).collect();
    assert_eq!(sent, [b"\0\x06tsize\x000\0".to_vec()]);
}

#[cfg(feature = "cli")]
mod common;

#[cfg(feature = "cli")]
mod peers {
    use std::fs;
    use std::path::Path;
    use std::process::Command;
    use std::time::Duration;

    use super::common::cli::Serving;
    use super::common::files::TempDir;
    use super::common::peers::{peer, run_quietly};
    use wirekit::net::{ClientOptions, get};
    use wirekit::tftp::Blksize;

    const LIMIT: Duration = Duration::from_secs(20);

    /// A served directory with `empty` (0 bytes) and `one` (1 byte), and the server,
    /// logging every packet.
    fn serve() -> (Serving, std::path::PathBuf) {
        let root = TempDir::new("empty-root").keep();
        fs::write(root.join("empty"), b"").unwrap();
        fs::write(root.join("one"), b"1").unwrap();
        (Serving::loopback(&root, &["-v"]), root)
    }

    /// `path` exists and holds exactly `want`.
    fn assert_file(path: &Path, want: &[u8], what: &str) {
        match fs::read(path) {
            Ok(got) => assert_eq!(got, want, "{what}: wrong content"),
            Err(e) => panic!("{what}: {} not there: {e}", path.display()),
        }
    }

    /// The OACKs the server sent, from its packet log.
    fn oacks(server: &Serving) -> Vec<String> {
        server
            .lines()
            .into_iter()
            .filter(|l| l.contains(" OACK "))
            .collect()
    }

    /// Fetches `one` then `empty` with `fetch(name, local)`, and checks both files and the
    /// OACKs: `tsize=1` for `one` shows the client asks for tsize, and the empty
    /// file's OACK has none.
    fn check(client: &str, fetch: impl Fn(u16, &str, &Path) -> (bool, String)) {
        let (server, _root) = serve();
        let local = TempDir::new(&format!("empty-{client}")).keep();
        let port = server.addr().port();

        let (ok, out) = fetch(port, "one", &local.join("one"));
        assert!(ok, "{client} get one: {out}");
        assert_file(&local.join("one"), b"1", client);
        server.wait_for_log(&["read \"one\"", "ok"]);
        let asked = oacks(&server);
        assert!(
            asked.len() == 1 && asked[0].contains("tsize=1"),
            "{client} did not ask for tsize: {asked:?}"
        );

        let (ok, out) = fetch(port, "empty", &local.join("empty"));
        assert!(ok, "{client} get empty: {out}");
        assert_file(&local.join("empty"), b"", client);
        server.wait_for_log(&["read \"empty\": 0 bytes", "ok"]);
        let answered = oacks(&server);
        assert!(
            answered[1..].iter().all(|l| !l.contains("tsize")),
            "{client}: {answered:?}"
        );
    }

    #[test]
    fn curl_fetches_an_empty_file_with_options() {
        if peer("curl").is_none() {
            return;
        }
        check("curl", |port, name, local| {
            run_quietly(
                Command::new("curl")
                    .args(["-sS", "--tftp-blksize", "1024", "-o"])
                    .arg(local)
                    .arg(format!("tftp://127.0.0.1:{port}/{name}")),
                LIMIT,
            )
        });
    }

    #[test]
    fn atftp_fetches_an_empty_file_with_options() {
        if peer("atftp").is_none() {
            return;
        }
        check("atftp", |port, name, local| {
            run_quietly(
                Command::new("atftp")
                    .args([
                        "--option",
                        "tsize 0",
                        "--option",
                        "blksize 1024",
                        "-g",
                        "-r",
                    ])
                    .arg(name)
                    .arg("-l")
                    .arg(local)
                    .args(["127.0.0.1", &port.to_string()]),
                LIMIT,
            )
        });
    }

    #[test]
    fn busybox_fetches_an_empty_file_with_options() {
        if peer("busybox").is_none() {
            return;
        }
        check("busybox", |port, name, local| {
            run_quietly(
                Command::new("busybox")
                    .args(["tftp", "-g", "-b", "1024", "-r"])
                    .arg(name)
                    .arg("-l")
                    .arg(local)
                    .args(["127.0.0.1", &port.to_string()]),
                LIMIT,
            )
        });
    }

    /// tftp-hpa's client asks for no options: the plain RFC 1350 path.
    #[test]
    fn tftp_hpa_fetches_an_empty_file() {
        if peer("tftp").is_none() {
            return;
        }
        let (server, _root) = serve();
        let local = TempDir::new("empty-tftp-hpa").keep();
        let (ok, out) = run_quietly(
            Command::new("tftp")
                .current_dir(&local)
                .args(["-m", "binary", "127.0.0.1"])
                .arg(server.addr().port().to_string())
                .args(["-c", "get", "empty", "got"]),
            LIMIT,
        );
        assert!(ok, "tftp-hpa: {out}");
        assert_file(&local.join("got"), b"", "tftp-hpa");
        server.wait_for_log(&["read \"empty\": 0 bytes", "ok"]);
    }

    /// wirekit's own client, options set on a default `ClientOptions`.
    #[test]
    fn wirekit_client_fetches_an_empty_file_with_options() {
        let (server, _root) = serve();
        let local = TempDir::new("empty-wirekit").keep();
        let mut opts = ClientOptions::default();
        opts.blksize = Some(Blksize::new(1024).unwrap());
        opts.tsize = true;
        let stats = get(
            server.addr(),
            "empty",
            &local.join("got"),
            &opts,
            &mut |_, _| {},
        )
        .unwrap();
        assert_eq!(stats.bytes, 0);
        assert_file(&local.join("got"), b"", "wirekit get");
    }
}
