//! The systemd journal as the log's sink: each event becomes one journal entry with its
//! fields as journal fields (`FILE=pxelinux.0`, `PEER=192.0.2.7:2070`, `OUTCOME=ok`, ...),
//! so that `journalctl FILE=pxelinux.0` finds every transfer of a file.
//!
//! Entries are built on the thread that logs, in the journal's native protocol, and sent by
//! the log queue's writer thread as one datagram each (see `log_output`). The
//! `tracing-journald` crate sends from the thread that logs, on a blocking socket it keeps
//! to itself: a journal that stalls (it does, flushing to a slow disk) would stall the
//! event loop on a log line, which this server never does. The protocol itself is a few
//! lines, so it is written here, and the queue decides what a stall costs.

use std::fmt::{self, Write as _};
use std::io;
use std::os::unix::net::UnixDatagram;
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

use super::log_output::LogQueue;

/// Where journald takes native entries.
pub const SOCKET: &str = "/run/systemd/journal/socket";

/// The program's name in the journal (`journalctl -t wirekit`).
const IDENTIFIER: &str = "wirekit";

/// A socket to send entries to the journal with [`send`], checked to be listened to. A
/// send waits at most a second, so that even the writer thread is not held for good by a
/// journal that stopped reading (it then retries, and the queue in front of it counts
/// what it cannot hold).
pub fn connect() -> io::Result<UnixDatagram> {
    let socket = UnixDatagram::unbound()?;
    socket.set_write_timeout(Some(Duration::from_secs(1)))?;
    // An empty datagram, which the journal ignores: fails if nobody listens.
    send(&socket, &[])?;
    Ok(socket)
}

/// Sends one entry. Addressed each time rather than connected once: a journal that
/// restarts listens on a new socket under the same name.
pub fn send(socket: &UnixDatagram, entry: &[u8]) -> io::Result<usize> {
    socket.send_to(entry, SOCKET)
}

/// True when standard error is the journal's stream for this process: `JOURNAL_STREAM`
/// names the device and inode of the stream systemd connected, and a process whose stderr
/// was redirected since (a shell script's `2>file`) inherits the variable all the same.
pub fn stderr_is_journal() -> bool {
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    let Ok(stat) = rustix::fs::fstat(std::io::stderr()) else {
        return false;
    };
    dev.parse::<u64>().is_ok_and(|d| d == stat.st_dev)
        && ino.parse::<u64>().is_ok_and(|i| i == stat.st_ino)
}

/// The journal's priority for a level: syslog's, as systemd reads it.
fn priority(level: Level) -> &'static str {
    match level {
        Level::ERROR => "3",
        Level::WARN => "4",
        Level::INFO => "6",
        Level::DEBUG | Level::TRACE => "7",
    }
}

/// One journal entry in the native protocol: `NAME=value` lines, and for a value with a
/// line end in it, the name, a line end, the value's length (64 bits, little-endian) and
/// the value.
#[derive(Default)]
pub struct Entry(Vec<u8>);

impl Entry {
    /// An entry with the fields every one of this program's entries has.
    pub fn new(level: Level) -> Entry {
        let mut entry = Entry::default();
        entry.field("PRIORITY", priority(level).as_bytes());
        entry.field("SYSLOG_IDENTIFIER", IDENTIFIER.as_bytes());
        entry
    }

    /// A notice of the program itself (not an event of the log): what the log queue says
    /// about lines it lost.
    pub fn notice(text: &str) -> Vec<u8> {
        let mut entry = Entry::new(Level::WARN);
        entry.field("MESSAGE", text.as_bytes());
        entry.0
    }

    /// Adds `name=value`; `name` must be a journal field name (upper-case letters, digits
    /// and `_`, not first).
    pub fn field(&mut self, name: &str, value: &[u8]) {
        self.0.extend_from_slice(name.as_bytes());
        if value.contains(&b'\n') {
            self.0.push(b'\n');
            self.0
                .extend_from_slice(&(value.len() as u64).to_le_bytes());
        } else {
            self.0.push(b'=');
        }
        self.0.extend_from_slice(value);
        self.0.push(b'\n');
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }
}

/// A tracing field's name as a journal field's: upper case, anything but letters, digits
/// and `_` as `_`, and never starting with `_` (fields the journal itself vouches for) or
/// a digit.
pub fn field_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if !out.starts_with(|c: char| c.is_ascii_uppercase()) {
        out.insert(0, 'F');
    }
    out
}

/// Sends each event to the journal queue as an entry.
pub struct JournalLayer {
    queue: LogQueue,
}

impl JournalLayer {
    pub fn new(queue: LogQueue) -> JournalLayer {
        JournalLayer { queue }
    }
}

impl<S: Subscriber> Layer<S> for JournalLayer {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut entry = Entry::new(*event.metadata().level());
        event.record(&mut Fields(&mut entry));
        self.queue.push(entry.into_bytes());
    }
}

/// Writes an event's fields into an entry.
struct Fields<'a>(&'a mut Entry);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.field(&field_name(field.name()), value.as_bytes());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // Display values (`%x`) and the message's format arguments come here too, and
        // print as Display does.
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        self.record_str(field, &text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    /// Splits an entry into its fields.
    fn parse(mut bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
        let mut fields = Vec::new();
        while !bytes.is_empty() {
            let end = bytes.iter().position(|&b| b == b'\n').unwrap();
            let line = &bytes[..end];
            if let Some(eq) = line.iter().position(|&b| b == b'=') {
                let name = String::from_utf8(line[..eq].to_vec()).unwrap();
                fields.push((name, line[eq + 1..].to_vec()));
                bytes = &bytes[end + 1..];
            } else {
                let name = String::from_utf8(line.to_vec()).unwrap();
                let rest = &bytes[end + 1..];
                let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
                fields.push((name, rest[8..8 + len].to_vec()));
                assert_eq!(rest[8 + len], b'\n');
                bytes = &rest[8 + len + 1..];
            }
        }
        fields
    }

    fn get<'a>(fields: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a str> {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| std::str::from_utf8(v).unwrap())
    }

    #[test]
    fn fields_become_journal_fields() {
        let captured = Arc::new(Mutex::new(Vec::new()));
        let queue = LogQueue::capture(captured.clone());
        let subscriber = tracing_subscriber::registry().with(JournalLayer::new(queue.clone()));
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(
                event = "transfer",
                file = "pxelinux.0",
                served = Some("efi/boot x64.efi"),
                bytes = 42u64,
                duration_s = 0.5,
                "{} read \"{}\": failed",
                "192.0.2.7:2070",
                "pxelinux.0"
            );
            tracing::info!(error = "two\nlines", "plain");
        });
        assert!(queue.flush(Duration::from_secs(10)));
        let entries = captured.lock().unwrap();
        let first = parse(&entries[0]);
        assert_eq!(get(&first, "PRIORITY"), Some("4"));
        assert_eq!(get(&first, "SYSLOG_IDENTIFIER"), Some("wirekit"));
        assert_eq!(
            get(&first, "MESSAGE"),
            Some("192.0.2.7:2070 read \"pxelinux.0\": failed")
        );
        assert_eq!(get(&first, "EVENT"), Some("transfer"));
        assert_eq!(get(&first, "FILE"), Some("pxelinux.0"));
        assert_eq!(get(&first, "SERVED"), Some("efi/boot x64.efi"));
        assert_eq!(get(&first, "BYTES"), Some("42"));
        assert_eq!(get(&first, "DURATION_S"), Some("0.5"));
        let second = parse(&entries[1]);
        assert_eq!(get(&second, "PRIORITY"), Some("6"));
        // A value with a line end goes in the binary form, whole.
        assert_eq!(get(&second, "ERROR"), Some("two\nlines"));
    }

    #[test]
    fn field_names_are_what_the_journal_takes() {
        assert_eq!(field_name("asked_blksize"), "ASKED_BLKSIZE");
        assert_eq!(field_name("log.target"), "LOG_TARGET");
        assert_eq!(field_name("_private"), "F_PRIVATE");
        assert_eq!(field_name("9lives"), "F9LIVES");
    }
}
