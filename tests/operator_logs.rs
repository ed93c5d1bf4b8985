//! What an operator reads in `wirekit serve`'s log: where a remapped name went (and, with
//! `-v`, which rule sent it there), names exactly as clients sent them, no false alarms
//! for normal transfers, and the same facts as fields: one JSON object a line with
//! `--log-format json`, journal fields with `--log-format journal`.

#![cfg(all(feature = "cli", unix))]

mod common;

use std::fs;
use std::net::SocketAddr;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::cli::{BIN, Serving, bound_addresses, serve_on_loopback};
use common::files::TempDir;
use common::peers::{find_program, is_root};
use common::wait::{wait_for, wait_until};
use serde_json::Value;
use wirekit::net::{ClientOptions, get_into, put_from};

/// PXE clients' configs per address, uploads into incoming/, one directory refused.
const RULES: &str = r"# line 1
r ^/
r ^(pxelinux\.cfg/)(.*) \1\i/\2
rP ^ incoming/
a ^secret/ keep\ out
";

/// A served tree, and the rule file beside it.
fn setup(tag: &str) -> (PathBuf, PathBuf) {
    let top = TempDir::new(tag).keep();
    let root = top.join("root");
    for d in ["pxelinux.cfg/127.0.0.1", "incoming", "Boot/x64"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    fs::write(root.join("pxelinux.cfg/127.0.0.1/default"), b"mine").unwrap();
    fs::write(root.join("Boot/x64/wdsnbp.com"), b"wdsnbp").unwrap();
    fs::write(root.join("pxelinux.0"), vec![7u8; 3000]).unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    let rules = top.join("remap.rules");
    fs::write(&rules, RULES).unwrap();
    (root, rules)
}

fn options() -> ClientOptions {
    let mut o = ClientOptions::default();
    o.tsize = true;
    o
}

fn get(server: SocketAddr, name: &str) -> Vec<u8> {
    let mut got = Vec::new();
    get_into(server, name, &mut got, &options(), &mut |_, _| {})
        .unwrap_or_else(|e| panic!("get {name}: {e}"));
    got
}

fn get_refused(server: SocketAddr, name: &str) {
    let mut got = Vec::new();
    let result = get_into(server, name, &mut got, &options(), &mut |_, _| {});
    assert!(result.is_err(), "get {name} was served");
}

fn put(server: SocketAddr, name: &str, bytes: &[u8]) {
    let mut data = bytes.to_vec();
    put_from(
        server,
        name,
        &mut data,
        Some(bytes.len() as u64),
        &options(),
        &mut |_, _| {},
    )
    .unwrap_or_else(|e| panic!("put {name}: {e}"));
}

fn serve(root: &Path, rules: &Path, extra: &[&str]) -> Serving {
    let mut args = vec!["--remap", rules.to_str().unwrap(), "--allow-create"];
    args.extend_from_slice(extra);
    Serving::loopback(root, &args)
}

#[test]
fn a_remapped_name_is_logged_with_the_file_served() {
    let (root, rules) = setup("oplog-remap");
    let server = serve(&root, &rules, &[]);
    assert_eq!(get(server.addr(), "/pxelinux.cfg/default"), b"mine");
    put(server.addr(), "up.txt", b"uploaded");
    assert_eq!(fs::read(root.join("incoming/up.txt")).unwrap(), b"uploaded");
    let read = server.wait_for_log(&[
        r#" read "/pxelinux.cfg/default" -> "pxelinux.cfg/127.0.0.1/default": 4 bytes"#,
        "ok",
    ]);
    let write = server.wait_for_log(&[r#" write "up.txt" -> "incoming/up.txt": 8 bytes"#, "ok"]);
    // Which rule did it is for -v.
    for line in [read, write] {
        assert!(!line.contains("remap rule"), "{line}");
    }
    // A name the rules leave alone is logged alone.
    get(server.addr(), "pxelinux.0");
    let plain = server.wait_for_log(&[r#" read "pxelinux.0": 3000 bytes"#]);
    assert!(!plain.contains("->"), "{plain}");
}

#[test]
fn verbose_names_the_rules_that_rewrote_or_refused() {
    let (root, rules) = setup("oplog-remap-v");
    let server = serve(&root, &rules, &["-v"]);
    get(server.addr(), "/pxelinux.cfg/default");
    put(server.addr(), "up.txt", b"x");
    get_refused(server.addr(), "secret/key");
    server.wait_for_log(&[
        r#" read "/pxelinux.cfg/default" -> "pxelinux.cfg/127.0.0.1/default" by remap rules (lines 2, 3): "#,
    ]);
    server.wait_for_log(&[r#" write "up.txt" -> "incoming/up.txt" by remap rule (line 4): "#]);
    server.wait_for_log(&[r#" refused "secret/key" by remap rule (line 5): ERROR 2 keep out"#]);
}

#[test]
fn names_are_logged_as_sent() {
    let (root, rules) = setup("oplog-backslash");
    let server = Serving::loopback(&root, &["-v"]);
    let name = r"\Boot\x64\wdsnbp.com";
    assert_eq!(get(server.addr(), name), b"wdsnbp");
    get_refused(server.addr(), r"\Boot\x64\missing.com");
    let line = server.wait_for_log(&[" read ", "6 bytes"]);
    assert!(line.contains(r#" read "\Boot\x64\wdsnbp.com": "#), "{line}");
    let request = server.wait_for_log(&["<-", "RRQ", "wdsnbp"]);
    assert!(
        request.contains(r#"RRQ "\Boot\x64\wdsnbp.com" octet"#),
        "{request}"
    );
    let refused = server.wait_for_log(&["refused", "missing"]);
    assert!(
        refused.contains(r#" refused "\Boot\x64\missing.com": ERROR 1 File not found"#),
        "{refused}"
    );
    // Not Rust's escaping anywhere: no doubled backslash, no quoted Debug string.
    for l in server.lines() {
        assert!(!l.contains(r"\\"), "{l}");
    }
    drop(rules);
}

#[test]
fn an_empty_file_is_no_refusal() {
    let (root, _) = setup("oplog-empty");
    let server = Serving::loopback(&root, &[]);
    assert_eq!(get(server.addr(), "empty"), b"");
    let line = server.wait_for_log(&[r#" read "empty": 0 bytes"#]);
    assert!(line.contains(", ok;"), "{line}");
    assert!(
        line.contains("tsize 0 (not announced: empty file)"),
        "{line}"
    );
    assert!(!line.contains("refused"), "{line}");
    assert!(line.contains(" INFO "), "{line}");
}

/// Every line of a JSON log, parsed (each must parse).
fn json_lines(server: &Serving) -> Vec<Value> {
    std::iter::once(server.banner.clone())
        .chain(server.lines())
        .map(|l| serde_json::from_str(&l).unwrap_or_else(|e| panic!("{l:?} is no JSON: {e}")))
        .collect()
}

/// Waits for the JSON line whose `event` is `event` and whose `file` is `file`.
fn json_event(server: &Serving, event: &str, file: &str) -> Value {
    let find = || {
        json_lines(server)
            .into_iter()
            .find(|v| v["event"] == event && v["file"] == file)
    };
    wait_for(
        Duration::from_secs(10),
        || find().is_some(),
        || format!("no {event} of {file} in {:?}", server.lines()),
    );
    find().unwrap()
}

#[test]
fn json_lines_carry_the_report_fields() {
    let (root, rules) = setup("oplog-json");
    let server = serve(&root, &rules, &["--log-format", "json"]);
    let banner: Value = serde_json::from_str(&server.banner).unwrap();
    assert_eq!(banner["level"], "INFO");
    assert!(banner["message"].as_str().unwrap().starts_with("serving "));

    get(server.addr(), "/pxelinux.cfg/default");
    put(server.addr(), "up.txt", b"uploaded");
    get_refused(server.addr(), "missing.bin");

    let read = json_event(&server, "transfer", "/pxelinux.cfg/default");
    assert_eq!(read["level"], "INFO");
    assert_eq!(read["direction"], "read");
    assert_eq!(read["served"], "pxelinux.cfg/127.0.0.1/default");
    assert_eq!(read["via"], "remap rules (lines 2, 3)");
    assert_eq!(read["local"], "127.0.0.1");
    assert!(read["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert_eq!(read["mode"], "octet");
    assert_eq!(read["bytes"], 4);
    assert_eq!(read["size"], 4);
    assert_eq!(read["outcome"], "ok");
    assert!(read.get("error").is_none(), "{read}");
    assert!(read["duration_s"].as_f64().unwrap() >= 0.0);
    for kind in ["resent", "early_timeouts", "retries", "spurious"] {
        assert_eq!(read[kind], 0, "{kind} in {read}");
    }
    assert_eq!(read["asked_tsize"], 0);
    assert_eq!(read["tsize"], 4);
    assert!(read["blksize"].as_u64().is_some(), "{read}");
    // The line a person reads comes along.
    let message = read["message"].as_str().unwrap();
    assert!(
        message.contains(r#"read "/pxelinux.cfg/default" -> "pxelinux.cfg/127.0.0.1/default""#),
        "{message}"
    );

    let write = json_event(&server, "transfer", "up.txt");
    assert_eq!(write["direction"], "write");
    assert_eq!(write["served"], "incoming/up.txt");
    assert_eq!(write["bytes"], 8);
    assert_eq!(write["asked_tsize"], 8);
    assert_eq!(write["tsize"], 8);
    assert_eq!(write["outcome"], "ok");

    let refused = json_event(&server, "refused", "missing.bin");
    assert_eq!(refused["code"], 1);
    assert_eq!(refused["refusal"], "File not found");
    assert_eq!(refused["reason"], "file_not_found");
    assert!(
        refused["detail"].as_str().unwrap().contains("os error 2"),
        "{refused}"
    );
    assert!(refused.get("served").is_none(), "{refused}");
}

/// The journal's native socket.
const JOURNAL: &str = "/run/systemd/journal/socket";

/// Splits a native journal entry into its fields.
fn entry_fields(mut bytes: &[u8]) -> Vec<(String, String)> {
    let mut fields = Vec::new();
    while let Some(end) = bytes.iter().position(|&b| b == b'\n') {
        let line = &bytes[..end];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            let name = String::from_utf8_lossy(&line[..eq]).into_owned();
            fields.push((name, String::from_utf8_lossy(&line[eq + 1..]).into_owned()));
            bytes = &bytes[end + 1..];
        } else {
            let rest = &bytes[end + 1..];
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            let name = String::from_utf8_lossy(line).into_owned();
            fields.push((
                name,
                String::from_utf8_lossy(&rest[8..8 + len]).into_owned(),
            ));
            bytes = &rest[8 + len + 1..];
        }
    }
    fields
}

fn field<'a>(entry: &'a [(String, String)], name: &str) -> Option<&'a str> {
    entry
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A journal of our own at the journal's address, where there is none and this process
/// may make one (root in a container): the program is run against the real path, and
/// what it sends is read back here. Removed when dropped.
struct FakeJournal {
    socket: UnixDatagram,
    made_dir: bool,
}

impl FakeJournal {
    fn take_place() -> Option<FakeJournal> {
        let dir = Path::new(JOURNAL).parent().unwrap();
        if Path::new(JOURNAL).exists() || !is_root() {
            return None;
        }
        let made_dir = !dir.exists();
        fs::create_dir_all(dir).ok()?;
        let socket = UnixDatagram::bind(JOURNAL).ok()?;
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Some(FakeJournal { socket, made_dir })
    }

    /// The next entry sent (empty probes skipped).
    fn next(&self) -> Vec<(String, String)> {
        let mut buf = vec![0u8; 65536];
        loop {
            let n = self.socket.recv(&mut buf).expect("an entry within 10 s");
            if n > 0 {
                return entry_fields(&buf[..n]);
            }
        }
    }
}

impl Drop for FakeJournal {
    fn drop(&mut self) {
        let _ = fs::remove_file(JOURNAL);
        if self.made_dir {
            let _ = fs::remove_dir(Path::new(JOURNAL).parent().unwrap());
        }
    }
}

#[test]
fn journal_entries_carry_the_fields() {
    let (root, rules) = setup("oplog-journal");
    if let Some(journal) = FakeJournal::take_place() {
        let mut cmd = serve_on_loopback(
            &root,
            &[
                "--log-format",
                "journal",
                "--remap",
                rules.to_str().unwrap(),
            ],
        );
        let mut child = cmd
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let banner = journal.next();
        let message = field(&banner, "MESSAGE").unwrap().to_string();
        assert!(message.starts_with("serving "), "{banner:?}");
        assert_eq!(field(&banner, "PRIORITY"), Some("6"));
        assert_eq!(field(&banner, "SYSLOG_IDENTIFIER"), Some("wirekit"));
        let addr = bound_addresses(&message)[0];
        get(addr, "/pxelinux.cfg/default");
        let transfer = loop {
            let e = journal.next();
            if field(&e, "EVENT") == Some("transfer") {
                break e;
            }
        };
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(field(&transfer, "FILE"), Some("/pxelinux.cfg/default"));
        assert_eq!(
            field(&transfer, "SERVED"),
            Some("pxelinux.cfg/127.0.0.1/default")
        );
        assert_eq!(field(&transfer, "DIRECTION"), Some("read"));
        assert_eq!(field(&transfer, "BYTES"), Some("4"));
        assert_eq!(field(&transfer, "OUTCOME"), Some("ok"));
        assert_eq!(field(&transfer, "PRIORITY"), Some("6"));
        assert!(
            field(&transfer, "MESSAGE")
                .unwrap()
                .contains(r#"read "/pxelinux.cfg/default" -> "pxelinux.cfg/127.0.0.1/default""#),
            "{transfer:?}"
        );
        return;
    }
    if !Path::new(JOURNAL).exists() {
        eprintln!("skipping: no journal at {JOURNAL}, and no right to stand in for one");
        return;
    }
    let Some(journalctl) = find_program("journalctl") else {
        eprintln!(
            "skipping: a journal listens at {JOURNAL}, but there is no journalctl to read it"
        );
        return;
    };
    live_journal(&root, &rules, &journalctl);
}

/// Against the machine's own journal: the entry is found by its fields, as an operator
/// would look for it.
fn live_journal(root: &Path, rules: &Path, journalctl: &Path) {
    // A name no earlier run logged.
    let unique = format!("pxelinux.cfg/oplog-{}", std::process::id());
    fs::write(
        root.join("pxelinux.cfg/127.0.0.1").join(&unique[13..]),
        b"mine",
    )
    .unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .arg(root)
        .args(["--listen", "127.0.0.1:0", "--threads", "1"])
        .args(["--log-format", "journal", "--remap"])
        .arg(rules);
    let server = Serving::spawn_on(cmd, Stdio::null());
    let addr = server.addr();
    get(addr, &unique);
    let mut found = String::new();
    let logged = wait_until(Duration::from_secs(20), || {
        let out = Command::new(journalctl)
            .args(["--no-pager", "-o", "json", &format!("FILE={unique}")])
            .output()
            .unwrap();
        found = String::from_utf8_lossy(&out.stdout).into_owned();
        found.lines().any(|l| l.contains("\"EVENT\":\"transfer\""))
    });
    drop(server);
    if !logged {
        // A journal that does not keep this process's entries (no persistent storage
        // readable here, say) is not this program's failure; say so.
        eprintln!("skipping: journalctl FILE={unique} found nothing: {found}");
        return;
    }
    let entry: Value = serde_json::from_str(
        found
            .lines()
            .find(|l| l.contains("\"EVENT\":\"transfer\""))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        entry["SERVED"],
        format!("pxelinux.cfg/127.0.0.1/{}", &unique[13..])
    );
    assert_eq!(entry["OUTCOME"], "ok");
    assert_eq!(entry["SYSLOG_IDENTIFIER"], "wirekit");
}
