//! Filename remapping rules in tftp-hpa's `-m` format: the rule engine on the rules people
//! write for PXE, Windows boot and U-Boot, each flag and escape, the parse errors; then
//! `wirekit serve --remap FILE` end to end with curl, tftp-hpa and wirekit's client.

use std::borrow::Cow;
use std::net::IpAddr;

use wirekit::net::{Remap, RemapAction, RemapError};
use wirekit::tftp::{Direction, ErrorCode};

const READ: Direction = Direction::Read;
const WRITE: Direction = Direction::Write;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn rules(text: &str) -> Remap {
    Remap::parse(text).unwrap_or_else(|e| panic!("{e}"))
}

/// The name `rules` give for `name` from `peer`, as text.
fn map(rules: &Remap, name: &str, peer: &str, direction: Direction) -> String {
    match rules.apply(name.as_bytes(), ip(peer), direction) {
        Ok(n) => String::from_utf8(n.into_owned()).unwrap(),
        Err(r) => panic!("{name:?} refused: {r:?}"),
    }
}

/// The refusal's message, for a name the rules refuse.
fn refused(rules: &Remap, name: &str, peer: &str, direction: Direction) -> String {
    match rules.apply(name.as_bytes(), ip(peer), direction) {
        Ok(n) => panic!("{name:?} not refused: {:?}", String::from_utf8_lossy(&n)),
        Err(r) => {
            assert_eq!(r.code, ErrorCode::AccessViolation);
            r.message.into_owned()
        }
    }
}

/// The rule file of a PXE server that also boots Windows and UEFI clients.
const PXE: &str = r"
# Windows boot clients send backslashes.
rg \\ /
# filename /pxelinux.0 in dhcpd.conf: a leading slash is the root.
r ^/
# Per-client configuration directories.
r ^(pxelinux\.cfg/)(.*) \1\i/\2
# Firmware that shouts.
ri ^BOOTX64\.EFI$ efi/bootx64.efi
";

#[test]
fn pxe_rules() {
    let r = rules(PXE);
    assert_eq!(r.len(), 4);
    let peer = "192.0.2.7";
    assert_eq!(map(&r, "/pxelinux.0", peer, READ), "pxelinux.0");
    assert_eq!(
        map(&r, r"\Boot\x64\wdsnbp.com", peer, READ),
        "Boot/x64/wdsnbp.com"
    );
    assert_eq!(
        map(&r, "pxelinux.cfg/default", peer, READ),
        "pxelinux.cfg/192.0.2.7/default"
    );
    assert_eq!(
        map(&r, r"\pxelinux.cfg\01-52-54-00-12-34-56", "10.1.2.3", READ),
        "pxelinux.cfg/10.1.2.3/01-52-54-00-12-34-56"
    );
    assert_eq!(map(&r, "BootX64.EFI", peer, READ), "efi/bootx64.efi");
    assert_eq!(
        map(&r, "/EFI/BOOT/BOOTX64.EFI", peer, READ),
        "EFI/BOOT/BOOTX64.EFI"
    );
    assert_eq!(map(&r, "bootx64.efi.bak", peer, READ), "bootx64.efi.bak");
    // A name no rule touches comes back borrowed, not copied.
    assert!(matches!(
        r.apply(b"ldlinux.c32", ip(peer), READ),
        Ok(Cow::Borrowed(b"ldlinux.c32"))
    ));
}

#[test]
fn per_client_roots() {
    // `r ^ \i/`: every client its own directory, by dotted address or (U-Boot's naming)
    // by hexadecimal address.
    let r = rules(r"r ^ \i/");
    assert_eq!(map(&r, "uImage", "192.0.2.7", READ), "192.0.2.7/uImage");
    assert_eq!(map(&r, "uImage", "2001:db8::1", READ), "2001:db8::1/uImage");
    let r = rules(r"r ^uImage$ \x/uImage");
    assert_eq!(map(&r, "uImage", "192.0.2.7", READ), "C0000207/uImage");
    assert_eq!(
        map(&r, "uImage", "2001:db8::1", READ),
        "20010DB8000000000000000000000001/uImage"
    );
    // An IPv4 client seen on an IPv6 socket is an IPv4 client.
    assert_eq!(
        map(&r, "uImage", "::ffff:192.0.2.7", READ),
        "C0000207/uImage"
    );
}

#[test]
fn u_boot_rules() {
    // U-Boot asks for pxelinux.cfg/<HEXIP>, then shorter prefixes of it, then default;
    // a lab keeps one file for a whole subnet under its own name.
    let r = rules(
        r"
        re ^pxelinux\.cfg/C0A80[0-9A-F]+$ pxelinux.cfg/lab-net
        r  ^pxelinux\.cfg/(.*)$ u-boot/\L\1
        ",
    );
    assert_eq!(
        map(&r, "pxelinux.cfg/C0A8010A", "192.168.1.10", READ),
        "pxelinux.cfg/lab-net"
    );
    assert_eq!(
        map(&r, "pxelinux.cfg/AC10", "172.16.0.9", READ),
        "u-boot/ac10"
    );
}

#[test]
fn global_replaces_every_match() {
    let r = rules(r"rg \\ /");
    assert_eq!(map(&r, r"a\b\c\d", "192.0.2.1", READ), "a/b/c/d");
    let once = rules(r"r \\ /");
    assert_eq!(map(&once, r"a\b\c", "192.0.2.1", READ), r"a/b\c");
    // Searching from the start each time: a replacement that makes a new match is
    // matched again.
    let r = rules("rg aa a");
    assert_eq!(map(&r, "aaaaaaaa", "192.0.2.1", READ), "a");
}

#[test]
fn end_stops_and_start_restarts() {
    let r = rules("re ^a b\nr ^b c\n");
    assert_eq!(map(&r, "a", "192.0.2.1", READ), "b");
    assert_eq!(map(&r, "b", "192.0.2.1", READ), "c");
    // `s`: strip one prefix, start over, until none is left.
    let r = rules("rs ^(old|tmp)/ \nr ^ new/");
    assert_eq!(map(&r, "old/tmp/old/f", "192.0.2.1", READ), "new/f");
    // `e` on a rule that did not match changes nothing.
    let r = rules("e ^x\nr ^ y/");
    assert_eq!(map(&r, "a", "192.0.2.1", READ), "y/a");
    assert_eq!(map(&r, "xa", "192.0.2.1", READ), "xa");
}

#[test]
fn abort_refuses_with_its_message() {
    let r = rules(
        r"
        a ^private/
        a ^secret/ no\ secrets\ for\ \i
        a~ \.(efi|0|c32|cfg)$|/
        ",
    );
    assert_eq!(
        refused(&r, "private/key", "192.0.2.7", READ),
        "refused by remap rule (line 2)"
    );
    assert_eq!(
        refused(&r, "secret/x", "192.0.2.7", READ),
        "no secrets for 192.0.2.7"
    );
    // `~`: refuse what does NOT match.
    refused(&r, "vmlinuz", "192.0.2.7", READ);
    assert_eq!(map(&r, "pxelinux.0", "192.0.2.7", READ), "pxelinux.0");
    assert_eq!(map(&r, "boot/vmlinuz", "192.0.2.7", READ), "boot/vmlinuz");
}

#[test]
fn inverse_rules_stop_or_refuse_when_the_regex_does_not_match() {
    let r = rules("e~ ^dev/\nr ^dev/ prod/\n");
    assert_eq!(map(&r, "dev/x", "192.0.2.1", READ), "prod/x");
    assert_eq!(map(&r, "other", "192.0.2.1", READ), "other");
}

#[test]
fn case_insensitive_and_case_changes() {
    let r = rules(r"ri ^pxelinux\.CFG/(.*)$ pxelinux.cfg/\L\1");
    assert_eq!(
        map(&r, "PXELINUX.cfg/DEFAULT", "192.0.2.1", READ),
        "pxelinux.cfg/default"
    );
    let r = rules(r"r ^(.*)\.(.*)$ \U\1\E.\2");
    assert_eq!(map(&r, "kernel.img", "192.0.2.1", READ), "KERNEL.img");
    // Case sensitive by default.
    let r = rules(r"r ^BOOT x");
    assert_eq!(map(&r, "boot", "192.0.2.1", READ), "boot");
}

#[test]
fn get_put_and_address_family_flags() {
    let r = rules(
        r"
        rP ^ incoming/
        rG ^ public/
        r4 ^ v4/
        r6 ^ v6/
        ",
    );
    assert_eq!(map(&r, "f", "192.0.2.1", READ), "v4/public/f");
    assert_eq!(map(&r, "f", "192.0.2.1", WRITE), "v4/incoming/f");
    assert_eq!(map(&r, "f", "2001:db8::5", READ), "v6/public/f");
    assert_eq!(map(&r, "f", "::ffff:192.0.2.1", WRITE), "v4/incoming/f");
    // Writes only: refuse uploads outside incoming/.
    let r = rules("aP~ ^incoming/");
    refused(&r, "pxelinux.0", "192.0.2.1", WRITE);
    assert_eq!(map(&r, "pxelinux.0", "192.0.2.1", READ), "pxelinux.0");
    assert_eq!(map(&r, "incoming/x", "192.0.2.1", WRITE), "incoming/x");
}

#[test]
fn escapes_in_regex_and_replacement() {
    // `\ ` and `\#` in both fields, `\\` a backslash, groups that did not take part are
    // empty.
    let r = rules(r"r ^my\ file\#(1)?(x)?$ your\ file\#\1\2\\");
    assert_eq!(map(&r, "my file#1", "192.0.2.1", READ), r"your file#1\");
    assert_eq!(map(&r, "my file#x", "192.0.2.1", READ), r"your file#x\");
    // `\0` is the whole match; the rest of the name stays.
    let r = rules(r"r [0-9]+ <\0>");
    assert_eq!(map(&r, "ab12cd34", "192.0.2.1", READ), "ab<12>cd34");
    // POSIX classes and word boundaries.
    let r = rules(r"rg [[:upper:]] _");
    assert_eq!(map(&r, "aBcD", "192.0.2.1", READ), "a_c_");
    let r = rules(r"rg \<b x");
    assert_eq!(map(&r, "b ab b.b", "192.0.2.1", READ), "x ab x.x");
    // Names are bytes: non-ASCII literals match their UTF-8, other bytes pass through.
    let r = rules("r é e");
    assert_eq!(map(&r, "café", "192.0.2.1", READ), "cafe");
    let r = rules(r"rg \\ /");
    let latin1 = r.apply(b"d\\\xe9j\xe0", ip("192.0.2.1"), READ).unwrap();
    assert_eq!(&latin1[..], b"d/\xe9j\xe0");
    // A backslash in brackets, escaped.
    let r = rules(r"rg [\\] /");
    assert_eq!(map(&r, r"a\b", "192.0.2.1", READ), "a/b");
}

#[test]
fn comments_blank_lines_and_crlf() {
    let r = rules("# header\r\n\r\n   \t\r\nr ^a b # trailing comment\r\n  # indented\r\n");
    assert_eq!(r.len(), 1);
    assert_eq!(map(&r, "a", "192.0.2.1", READ), "b");
    assert!(rules("").is_empty());
}

#[test]
fn runaway_rules_are_stopped() {
    // Restarting forever, and growing forever: both refuse the request.
    let r = rules("rs ^(.*)$ \\1");
    assert_eq!(
        refused(&r, "f", "192.0.2.1", READ),
        "remap rules ran too long"
    );
    let r = rules(r"rg a aa");
    refused(&r, "a", "192.0.2.1", READ);
    let r = rules(r"rg ^(.+)$ \0\0");
    assert_eq!(
        refused(&r, "ab", "192.0.2.1", READ),
        "remapped filename too long"
    );
}

/// `trace` tells which rules did what, by line, and ends where `apply` ends: one engine.
#[test]
fn trace_names_the_rules_that_did_it() {
    let r = rules(PXE);
    let peer = ip("192.0.2.7");
    let trace = r.trace(br"\pxelinux.cfg\default", peer, READ);
    assert_eq!(
        trace
            .steps
            .iter()
            .map(|s| (s.line, s.action.clone()))
            .collect::<Vec<_>>(),
        [
            (3, RemapAction::Rewrote(b"/pxelinux.cfg/default".to_vec())),
            (5, RemapAction::Rewrote(b"pxelinux.cfg/default".to_vec())),
            (
                7,
                RemapAction::Rewrote(b"pxelinux.cfg/192.0.2.7/default".to_vec())
            ),
        ]
    );
    assert_eq!(
        trace.result.as_deref(),
        Ok(&b"pxelinux.cfg/192.0.2.7/default"[..])
    );
    // Rules that did not match are left out; a name nothing touches has no step.
    assert!(r.trace(b"ldlinux.c32", peer, READ).steps.is_empty());

    let r = rules("rs ^old/ \nre ^a b\nr ^b c\na ^secret/ keep\\ out\n");
    let steps = |name: &str| {
        let t = r.trace(name.as_bytes(), peer, READ);
        (
            t.steps
                .into_iter()
                .map(|s| (s.line, s.action))
                .collect::<Vec<_>>(),
            t.result,
        )
    };
    let (seen, result) = steps("old/a");
    assert_eq!(
        seen,
        [
            (1, RemapAction::Rewrote(b"a".to_vec())),
            (1, RemapAction::Restarted),
            (2, RemapAction::Rewrote(b"b".to_vec())),
            (2, RemapAction::Ended),
        ]
    );
    assert_eq!(result.as_deref(), Ok(&b"b"[..]));
    let (seen, result) = steps("secret/key");
    assert_eq!(seen, [(4, RemapAction::Refused)]);
    assert_eq!(result.unwrap_err().message, "keep out");

    // Whatever the rules, `apply` and `trace` agree.
    for text in [
        PXE,
        "rs ^(.*)$ \\1",
        "rg ^(.+)$ \\0\\0",
        "a~ \\.efi$\nrG ^ r/\nrP ^ w/",
    ] {
        let r = rules(text);
        for name in ["/pxelinux.0", r"\a\b", "x.efi", "f", ""] {
            for direction in [READ, WRITE] {
                let applied = r.apply(name.as_bytes(), peer, direction);
                let traced = r.trace(name.as_bytes(), peer, direction).result;
                assert_eq!(
                    applied.map(|n| n.into_owned()),
                    traced,
                    "{text:?} on {name:?}"
                );
            }
        }
    }
}

#[test]
fn bad_rule_files_name_their_line() {
    for (text, line, reason) in [
        ("r ^a b\nq ^a b", 2, "invalid flag"),
        ("r~ ^a b", 1, "r and ~"),
        ("ra ^a", 1, "r and a"),
        ("as ^a", 1, "a and s"),
        ("ae ^a", 1, "a and e"),
        ("es ^a", 1, "e and s"),
        ("\n\nr", 3, "no regex"),
        ("r (unclosed", 1, "bad regex \"(unclosed\": unclosed group"),
        (":label", 1, "labels"),
        ("j ^a label", 1, "'j'"),
        ("rE ^a b", 1, "'E'"),
        ("rgg ^a b", 1, "'gg'"),
    ] {
        match Remap::parse(text) {
            Err(e @ RemapError::Rule { line: l, .. }) => {
                assert_eq!(l, line, "{text:?}: {e}");
                assert!(e.to_string().contains(reason), "{text:?}: {e}");
                assert!(e.to_string().starts_with(&format!("line {line}: ")));
                assert!(!e.to_string().contains('\n'), "one line: {e}");
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
    assert!(matches!(
        Remap::load("/nonexistent/wirekit-remap"),
        Err(RemapError::Read(_))
    ));
}

/// The library's directory server takes the rules in its config.
#[test]
fn dir_config_runs_the_rules() {
    use wirekit::net::{ClientOptions, DirConfig, Server, ServerConfig, get_into};

    let root = std::env::temp_dir().join(format!("wirekit-remap-lib-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("127.0.0.1")).unwrap();
    std::fs::write(root.join("127.0.0.1/boot.img"), b"per client").unwrap();
    let mut dir = DirConfig::new(&root);
    dir.remap = Some(rules(r"r ^/?(.*)$ \i/\1"));
    dir.root_options.strict_names = true;
    let mut config = ServerConfig::new(vec!["127.0.0.1:0".parse().unwrap()]);
    config.threads = 1;
    let server = Server::bind(config, dir).unwrap().spawn().unwrap();
    let mut got = Vec::new();
    get_into(
        server.local_addrs()[0],
        "/boot.img",
        &mut got,
        &ClientOptions::default(),
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(got, b"per client");
    server.stop().unwrap();
    let _ = std::fs::remove_dir_all(&root);
}

#[cfg(feature = "cli")]
mod common;

/// `wirekit serve --remap FILE`, with real clients.
#[cfg(feature = "cli")]
mod served {
    use std::fs;
    use std::net::SocketAddr;
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::time::Duration;

    use super::common::cli::{BIN, Serving};
    use super::common::files::TempDir;
    use super::common::peers::{peer, run_for, run_quietly};
    use wirekit::net::{ClientError, ClientOptions, get_into, put_from};
    use wirekit::tftp::{ErrorCode, TransferError};

    const LIMIT: Duration = Duration::from_secs(20);

    const RULES: &str = r"
# PXE and Windows boot clients
rg \\ /
r ^/
r ^(pxelinux\.cfg/)(.*) \1\i/\2
ri ^BOOTX64\.EFI$ efi/bootx64.efi
# uploads go to incoming/, nothing else is written
rP ^ incoming/
a ^secret/ keep\ out
# a rewrite cannot lead out of the root
r ^up/ ../
";

    /// A served tree and the rule file beside it (outside the root).
    fn setup(name: &str) -> (PathBuf, PathBuf) {
        let top = TempDir::new(name).keep();
        let root = top.join("root");
        for d in [
            "pxelinux.cfg/127.0.0.1",
            "efi",
            "Boot/x64",
            "secret",
            "incoming",
        ] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        fs::write(top.join("escaped"), b"outside").unwrap();
        fs::write(root.join("pxelinux.0"), b"pxelinux").unwrap();
        fs::write(root.join("pxelinux.cfg/default"), b"shared default").unwrap();
        fs::write(root.join("pxelinux.cfg/127.0.0.1/default"), b"mine").unwrap();
        fs::write(root.join("efi/bootx64.efi"), b"efi loader").unwrap();
        fs::write(root.join("Boot/x64/wdsnbp.com"), b"wdsnbp").unwrap();
        fs::write(root.join("secret/key"), b"key").unwrap();
        let rules = top.join("remap.rules");
        fs::write(&rules, RULES).unwrap();
        (root, rules)
    }

    fn serve(name: &str, extra: &[&str]) -> (Serving, PathBuf) {
        let (root, rules) = setup(name);
        let mut args = vec!["--remap", rules.to_str().unwrap()];
        args.extend_from_slice(extra);
        (Serving::loopback(&root, &args), root)
    }

    fn fetch(addr: SocketAddr, name: &str) -> Result<Vec<u8>, ClientError> {
        let mut got = Vec::new();
        get_into(
            addr,
            name,
            &mut got,
            &ClientOptions::default(),
            &mut |_, _| {},
        )
        .map(|_| got)
    }

    fn assert_file(path: &Path, want: &[u8]) {
        match fs::read(path) {
            Ok(got) => assert_eq!(got, want, "{}", path.display()),
            Err(e) => panic!("{}: {e}", path.display()),
        }
    }

    #[test]
    fn remapped_names_are_served() {
        // --strict-names too: the rules turn firmware names into plain ones before the
        // name checks, as tftp-hpa users' rule files do.
        let (server, _root) = serve("remap-serve", &["--strict-names"]);
        for (name, want) in [
            ("/pxelinux.0", &b"pxelinux"[..]),
            ("\\Boot\\x64\\wdsnbp.com", b"wdsnbp"),
            ("pxelinux.cfg/default", b"mine"),
            ("BOOTX64.EFI", b"efi loader"),
        ] {
            assert_eq!(fetch(server.addr(), name).unwrap(), want, "{name:?}");
        }
    }

    #[test]
    fn refusals_by_rules_and_by_confinement() {
        let (server, root) = serve("remap-refuse", &[]);
        let refusal = |name: &str| match fetch(server.addr(), name) {
            Err(ClientError::Transfer(TransferError::Peer { code, message })) => (code, message),
            other => panic!("{name:?}: {other:?}"),
        };
        assert_eq!(
            refusal("secret/key"),
            (ErrorCode::AccessViolation, "keep out".into())
        );
        // The rewritten name is checked like a requested one: `..` is refused.
        assert_eq!(
            refusal("up/escaped"),
            (ErrorCode::AccessViolation, "'..' in filename".into())
        );
        server.wait_for_log(&["refused \"secret/key\"", "keep out"]);
        assert!(root.join("secret/key").exists());
    }

    /// Names are checked for length and control characters before any rule runs: a rule
    /// costs nothing on a name no file could have, and a rule whose message echoes the name
    /// cannot put a raw line end into the log or the ERROR.
    #[test]
    fn names_are_checked_before_any_rule_and_logged_escaped() {
        use super::common::packets::{RawClient, request};
        use wirekit::tftp::Packet;

        let top = TempDir::new("remap-first").keep();
        let rules = top.join("echo.rules");
        fs::write(&rules, "a ^(.*)$ no\\ \\1\n").unwrap();
        let server = Serving::loopback(&top, &["--remap", rules.to_str().unwrap()]);
        let refusal = |name: &[u8]| {
            let c = RawClient::new(server.addr());
            let (answer, _) = c.ask(&request(1, name, "octet", &[]), server.addr());
            match Packet::parse(&answer) {
                Ok(Packet::Error { code, message }) => (code, message.to_string()),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(
            refusal(b"plain"),
            (ErrorCode::AccessViolation, "no plain".into()),
            "the rule runs on a name that may be a file's"
        );
        let forged = b"x\r\n2026-01-01T00:00:00Z  INFO 10.9.9.9:1 read \"boot\": ok";
        assert_eq!(
            refusal(forged),
            (
                ErrorCode::AccessViolation,
                "control character in filename".into()
            )
        );
        assert_eq!(
            refusal(&[b'a'; 1500]),
            (ErrorCode::AccessViolation, "filename too long".into())
        );
        let line = server.wait_for_log(&["control character in filename"]);
        assert!(line.contains(r"x\x0d\x0a2026"), "{line}");
        assert!(
            !server.lines().iter().any(|l| l.starts_with("2026-01-01")),
            "{:?}",
            server.lines()
        );
    }

    #[test]
    fn uploads_are_remapped() {
        let (server, root) = serve("remap-put", &["--allow-create"]);
        let mut data = b"log line\n".to_vec();
        put_from(
            server.addr(),
            "/boot.log",
            &mut data,
            Some(9),
            &ClientOptions::default(),
            &mut |_, _| {},
        )
        .unwrap();
        assert_file(&root.join("incoming/boot.log"), b"log line\n");
        assert!(!root.join("boot.log").exists());
    }

    #[test]
    fn curl_and_tftp_hpa_through_the_rules() {
        let (server, _root) = serve("remap-peers", &[]);
        let local = TempDir::new("remap-peers-local").keep();
        let port = server.addr().port().to_string();
        if peer("curl").is_some() {
            for (url_path, out, want) in [
                ("pxelinux.cfg/default", "curl-default", &b"mine"[..]),
                ("BOOTX64.EFI", "curl-efi", b"efi loader"),
                ("%5CBoot%5Cx64%5Cwdsnbp.com", "curl-wds", b"wdsnbp"),
            ] {
                let (ok, log) = run_quietly(
                    Command::new("curl")
                        .args(["-sS", "--tftp-blksize", "1024", "-o"])
                        .arg(local.join(out))
                        .arg(format!("tftp://127.0.0.1:{port}/{url_path}")),
                    LIMIT,
                );
                assert!(ok, "curl {url_path}: {log}");
                assert_file(&local.join(out), want);
            }
        }
        if peer("tftp").is_some() {
            for (name, out, want) in [
                ("/pxelinux.0", "hpa-pxelinux.0", &b"pxelinux"[..]),
                ("\\pxelinux.cfg\\default", "hpa-default", b"mine"),
            ] {
                let (ok, log) = run_quietly(
                    Command::new("tftp").current_dir(&local).args([
                        "-m",
                        "binary",
                        "127.0.0.1",
                        &port,
                        "-c",
                        "get",
                        name,
                        out,
                    ]),
                    LIMIT,
                );
                assert!(ok, "tftp-hpa {name}: {log}");
                assert_file(&local.join(out), want);
            }
        }
    }

    /// `wirekit remap` says what the server would make of a name, and which rules did it,
    /// without a client; `--check` reads the file only.
    #[test]
    fn the_remap_command_traces_names_as_the_server_maps_them() {
        let (server, root) = serve("remap-command", &[]);
        let rules = root.parent().unwrap().join("remap.rules");
        let remap = |args: &[&str]| {
            let mut cmd = Command::new(BIN);
            cmd.arg("remap").arg(&rules).args(args);
            run_for(&mut cmd, &[], LIMIT)
        };
        let out = remap(&["\\pxelinux.cfg\\default", "--client", "192.0.2.7"]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let lines: Vec<&str> = out.stdout.lines().collect();
        assert_eq!(
            lines,
            [
                r#""\pxelinux.cfg\default" read by 192.0.2.7:"#,
                r"  line 3: rg \\ /",
                r#"    -> "/pxelinux.cfg/default""#,
                "  line 4: r ^/",
                r#"    -> "pxelinux.cfg/default""#,
                r"  line 5: r ^(pxelinux\.cfg/)(.*) \1\i/\2",
                r#"    -> "pxelinux.cfg/192.0.2.7/default""#,
                r#"served as "pxelinux.cfg/192.0.2.7/default""#,
            ]
        );
        // The server, whose client is 127.0.0.1, serves what the command says it would.
        let out = remap(&["pxelinux.cfg/default"]);
        assert!(
            out.stdout
                .ends_with("served as \"pxelinux.cfg/127.0.0.1/default\"\n"),
            "{out:?}"
        );
        assert_eq!(
            fetch(server.addr(), "pxelinux.cfg/default").unwrap(),
            b"mine"
        );

        // A refusal names its rule and message, and is exit status 1, as the server
        // refuses it.
        let out = remap(&["/secret/key"]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(
            out.stdout
                .contains("  line 9: a ^secret/ keep\\ out\n    refused\n"),
            "{out:?}"
        );
        assert!(
            out.stdout
                .ends_with("refused (Access violation (2)): keep out\n"),
            "{out:?}"
        );
        assert!(out.stderr.contains("is refused by the rules"), "{out:?}");
        match fetch(server.addr(), "/secret/key") {
            Err(ClientError::Transfer(TransferError::Peer { message, .. })) => {
                assert_eq!(message, "keep out")
            }
            other => panic!("{other:?}"),
        }

        // Uploads only with --put; no rule at all is said as such.
        let out = remap(&["boot.log", "--put"]);
        assert!(
            out.stdout.contains("written by 127.0.0.1") && out.stdout.contains("line 8:"),
            "{out:?}"
        );
        assert!(
            out.stdout.ends_with("served as \"incoming/boot.log\"\n"),
            "{out:?}"
        );
        let out = remap(&["boot.log"]);
        assert!(out.stdout.contains("no rule took effect"), "{out:?}");
        assert!(out.stdout.ends_with("served as \"boot.log\"\n"), "{out:?}");

        let out = remap(&["--check"]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        assert!(out.stdout.contains("remap.rules: 7 rules, ok"), "{out:?}");
    }

    #[test]
    fn remap_check_names_the_bad_line() {
        let top = TempDir::new("remap-check-bad").keep();
        let rules = top.join("bad.rules");
        fs::write(&rules, "r ^a b\n# fine so far\nr ^(a b\n").unwrap();
        let mut cmd = Command::new(BIN);
        cmd.args(["remap", "--check"]).arg(&rules);
        let out = run_for(&mut cmd, &[], LIMIT);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert_eq!(
            out.stderr,
            format!(
                "wirekit: remap file {}: line 3: bad regex \"^(a\": unclosed group\n",
                rules.display()
            )
        );
        // A missing file is said as such; a name without a file is a usage error.
        let mut cmd = Command::new(BIN);
        cmd.args(["remap", "--check"]).arg(top.join("missing"));
        let out = run_for(&mut cmd, &[], LIMIT);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(out.stderr.contains("cannot read the rules"), "{out:?}");
        let mut cmd = Command::new(BIN);
        cmd.arg("remap").arg(&rules);
        assert_eq!(run_for(&mut cmd, &[], LIMIT).status.code(), Some(2));
    }

    #[test]
    fn a_bad_rule_file_stops_the_server_with_its_line() {
        let top = TempDir::new("remap-bad").keep();
        let rules = top.join("bad.rules");
        fs::write(&rules, "r ^a b\nrx ^a b\n").unwrap();
        let (ok, out) = run_quietly(
            Command::new(BIN)
                .arg("serve")
                .arg(&top)
                .args(["--listen", "127.0.0.1:0", "--remap"])
                .arg(&rules),
            LIMIT,
        );
        assert!(!ok, "started: {out}");
        assert!(
            out.contains("remap file") && out.contains("line 2: invalid flag 'x'"),
            "{out}"
        );
    }
}
