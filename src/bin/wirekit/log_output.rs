//! Where the program's log lines go: a writer thread behind a bounded queue, so that no
//! event loop and no signal handler ever waits on stderr, or dies with it.
//!
//! A line is handed over whole (one event, one message) and never waited for: when the
//! queue is full because the sink stalls (a paused terminal, a collector that stopped
//! reading), the line is dropped and counted, and once lines get through again the count
//! is said where they went missing (`wirekit: 12 log lines dropped (log output stalled)`).
//! A sink that fails (a full disk) costs the lines it refuses, counted the same way. A
//! sink that is gone for good (a pipe whose reader exited) ends the writer: later lines
//! are discarded by the queue at once.
//!
//! `tracing-appender`'s lossy non-blocking writer does the first half of this, but it
//! never tells the log that lines are missing, and it reports a failed write on stderr
//! each time (the very sink that failed).
//!
//! The sink is a stream (stderr: text or JSON lines) or the systemd journal, where each
//! message is one entry, sent as one datagram (see `journal`): there the queue's own
//! notices are entries too, and never share a datagram with a line.

use std::fs::File;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::thread;
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

#[cfg(unix)]
use super::journal;

/// Lines held while the sink is slow: at `-v`, a burst of a few thousand packets; a
/// megabyte or so of memory at most.
pub const QUEUE_LINES: usize = 4096;

enum Message {
    Line(Vec<u8>),
    /// Answered once every line queued before it was written (or given up on).
    Flush(mpsc::Sender<()>),
}

/// How messages are framed for the sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    /// Lines of text, each ending in a newline: the queue's notices are lines too.
    Lines,
    /// One journal entry per message (see `journal`).
    #[cfg(unix)]
    Journal,
}

impl Framing {
    /// A notice of the program itself, framed for the sink.
    fn notice(self, text: &str) -> Vec<u8> {
        match self {
            Framing::Lines => format!("{text}\n").into_bytes(),
            #[cfg(unix)]
            Framing::Journal => journal::Entry::notice(text),
        }
    }
}

/// The sending side, shared by every thread that logs. Cloning it is cheap.
#[derive(Clone)]
pub struct LogQueue {
    queue: SyncSender<Message>,
    /// Lines the queue had no room for, not yet reported.
    dropped: Arc<AtomicU64>,
    framing: Framing,
}

impl LogQueue {
    /// Starts the writer thread on a copy of stderr of its own, so that its writes take
    /// no lock that std's stderr handle holds.
    pub fn on_stderr() -> io::Result<LogQueue> {
        LogQueue::start_with(stderr_copy()?, QUEUE_LINES, Framing::Lines)
    }

    /// Starts the writer thread on a socket to the systemd journal (see
    /// `journal::connect`): each message is one entry.
    #[cfg(unix)]
    pub fn on_journal() -> io::Result<LogQueue> {
        let socket = journal::connect()?;
        LogQueue::start_with(Datagrams(socket), QUEUE_LINES, Framing::Journal)
    }

    /// A queue whose messages land in `into`, one element each, framed as for the journal.
    #[cfg(all(test, unix))]
    pub fn capture(into: Arc<std::sync::Mutex<Vec<Vec<u8>>>>) -> LogQueue {
        struct Capture(Arc<std::sync::Mutex<Vec<Vec<u8>>>>);
        impl Write for Capture {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.0.lock().unwrap().push(buf.to_vec());
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        LogQueue::start_with(Capture(into), QUEUE_LINES, Framing::Journal).unwrap()
    }

    fn start_with<W: Write + Send + 'static>(
        sink: W,
        lines: usize,
        framing: Framing,
    ) -> io::Result<LogQueue> {
        let (queue, received) = mpsc::sync_channel(lines);
        let dropped = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            sink,
            dropped: dropped.clone(),
            failed: 0,
            failure: None,
            framing,
        };
        thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || writer.run(received))?;
        Ok(LogQueue {
            queue,
            dropped,
            framing,
        })
    }

    /// Queues a message of the program's own (not a tracing event), framed for the sink.
    pub fn push_text(&self, text: &str) {
        self.push(self.framing.notice(text));
    }

    /// Queues `line` (which ends in a newline) if there is room, else counts it dropped.
    /// Never blocks.
    pub fn push(&self, mut line: Vec<u8>) {
        if line.is_empty() {
            return;
        }
        // Lines went missing just before this one: say so here, where the gap is.
        let missed = match self.dropped.load(Ordering::Relaxed) {
            0 => 0,
            _ => self.dropped.swap(0, Ordering::Relaxed),
        };
        if missed > 0 {
            let notice = self
                .framing
                .notice(&dropped_notice(missed, "log output stalled"));
            match self.framing {
                Framing::Lines => {
                    let mut with_notice = notice;
                    with_notice.append(&mut line);
                    line = with_notice;
                }
                // An entry of its own, just before: one datagram is one entry.
                #[cfg(unix)]
                Framing::Journal => {
                    if self.queue.try_send(Message::Line(notice)).is_err() {
                        self.dropped.fetch_add(missed + 1, Ordering::Relaxed);
                        return;
                    }
                }
            }
        }
        match self.queue.try_send(Message::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.dropped.fetch_add(missed + 1, Ordering::Relaxed);
            }
            // The writer gave up on a sink that is gone: nothing to count for.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Waits, at most `limit`, until every line queued so far is written. False when the
    /// sink did not take them in time (it stalls): they are then left behind.
    pub fn flush(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let (done, flushed) = mpsc::channel();
        let mut message = Message::Flush(done);
        loop {
            match self.queue.try_send(message) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return true,
                Err(TrySendError::Full(m)) => {
                    if Instant::now() >= deadline {
                        return false;
                    }
                    // A full queue moves as fast as the sink; a blocking send could
                    // wait forever on one that stalls.
                    thread::sleep(Duration::from_millis(5));
                    message = m;
                }
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        // A writer that ended (its sink is gone) drops the answer: nothing is left to wait for.
        !matches!(
            flushed.recv_timeout(left),
            Err(mpsc::RecvTimeoutError::Timeout)
        )
    }
}

impl<'a> MakeWriter<'a> for LogQueue {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line {
            queue: self,
            bytes: Vec::new(),
        }
    }
}

/// One event's line, collected as the formatter writes it and queued whole when dropped.
/// Writing to it never fails: a failure would make the formatter print to stderr itself.
pub struct Line<'a> {
    queue: &'a LogQueue,
    bytes: Vec<u8>,
}

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Line<'_> {
    fn drop(&mut self) {
        self.queue.push(std::mem::take(&mut self.bytes));
    }
}

#[cfg(unix)]
fn stderr_copy() -> io::Result<File> {
    use std::os::fd::AsFd;
    Ok(File::from(io::stderr().as_fd().try_clone_to_owned()?))
}

#[cfg(windows)]
fn stderr_copy() -> io::Result<File> {
    use std::os::windows::io::AsHandle;
    Ok(File::from(io::stderr().as_handle().try_clone_to_owned()?))
}

/// A socket whose every write is one datagram: a message to the journal.
#[cfg(unix)]
struct Datagrams(std::os::unix::net::UnixDatagram);

#[cfg(unix)]
impl Write for Datagrams {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        journal::send(&self.0, buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `wirekit: 12 log lines dropped (WHY)`, without a line end.
fn dropped_notice(lines: u64, why: &str) -> String {
    let s = if lines == 1 { "" } else { "s" };
    format!("wirekit: {lines} log line{s} dropped ({why})")
}

/// The writer thread's side: writes each line, counts what the sink refuses.
struct Writer<W> {
    sink: W,
    dropped: Arc<AtomicU64>,
    /// Lines the sink refused since it last took one.
    failed: u64,
    /// Why, for the notice.
    failure: Option<io::Error>,
    framing: Framing,
}

/// What became of a write.
enum Outcome {
    Written,
    Refused(io::Error),
    /// The sink is gone and will not come back: a pipe or socket whose reader closed it.
    Closed,
}

impl<W: Write> Writer<W> {
    fn run(mut self, received: Receiver<Message>) {
        loop {
            let message = match received.try_recv() {
                Ok(m) => m,
                Err(TryRecvError::Empty) => {
                    // Caught up: what was dropped in the meantime goes last.
                    if !self.report_dropped() {
                        return;
                    }
                    match received.recv() {
                        Ok(m) => m,
                        Err(_) => return,
                    }
                }
                Err(TryRecvError::Disconnected) => return,
            };
            match message {
                Message::Line(line) => {
                    if !self.deliver(&line) {
                        return;
                    }
                }
                Message::Flush(done) => {
                    if !self.report_dropped() {
                        return;
                    }
                    let _ = done.send(());
                }
            }
        }
    }

    /// Writes `line`, after saying how many lines the sink refused before it if it now
    /// takes them. False once the sink is gone.
    fn deliver(&mut self, line: &[u8]) -> bool {
        if self.failed > 0 {
            let why = match &self.failure {
                Some(e) => format!("log output failed: {e}"),
                None => "log output failed".to_string(),
            };
            let notice = self.framing.notice(&dropped_notice(self.failed, &why));
            match self.write(&notice) {
                Outcome::Written => {
                    self.failed = 0;
                    self.failure = None;
                }
                Outcome::Refused(_) => {}
                Outcome::Closed => return false,
            }
        }
        match self.write(line) {
            Outcome::Written => true,
            Outcome::Refused(e) => {
                self.failed += 1;
                self.failure = Some(e);
                true
            }
            Outcome::Closed => false,
        }
    }

    /// Writes the notice for lines the queue had no room for, if any. False once the sink
    /// is gone.
    fn report_dropped(&mut self) -> bool {
        match self.dropped.swap(0, Ordering::Relaxed) {
            0 => true,
            n => {
                let notice = self
                    .framing
                    .notice(&dropped_notice(n, "log output stalled"));
                self.deliver(&notice)
            }
        }
    }

    fn write(&mut self, mut bytes: &[u8]) -> Outcome {
        while !bytes.is_empty() {
            match self.sink.write(bytes) {
                Ok(0) => return Outcome::Refused(io::ErrorKind::WriteZero.into()),
                Ok(n) => bytes = &bytes[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A non-blocking descriptor (shared with a parent that made it so) that is
                // full: a stall like any other, which the queue absorbs. Finishing the
                // line keeps it whole.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    thread::sleep(Duration::from_millis(1));
                }
                Err(e) if gone(&e) => {
                    // Said once, where it can still be read (rarely: the sink is gone).
                    let notice = self.framing.notice(&format!(
                        "wirekit: log output closed ({e}); discarding the log"
                    ));
                    let _ = self.sink.write(&notice);
                    return Outcome::Closed;
                }
                Err(e) => return Outcome::Refused(e),
            }
        }
        let _ = self.sink.flush();
        Outcome::Written
    }
}

/// Errors after which no write to the sink can succeed again.
fn gone(e: &io::Error) -> bool {
    use io::ErrorKind::*;
    #[cfg(unix)]
    if e.raw_os_error() == Some(libc::EBADF) {
        return true;
    }
    matches!(e.kind(), BrokenPipe | ConnectionReset | NotConnected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::sync::mpsc::Sender;

    /// A sink that takes lines only when told to, refuses them while `refuse` is set, or
    /// is gone after `close`.
    #[derive(Clone, Default)]
    struct Sink {
        written: Arc<Mutex<Vec<u8>>>,
        gate: Arc<Mutex<Option<Receiver<()>>>>,
        refuse: Arc<std::sync::atomic::AtomicBool>,
        closed: Arc<std::sync::atomic::AtomicBool>,
    }

    impl Sink {
        /// A sink whose writes each wait for a token from the returned sender.
        fn gated() -> (Sink, Sender<()>) {
            let (open, gate) = mpsc::channel();
            let sink = Sink::default();
            *sink.gate.lock().unwrap() = Some(gate);
            (sink, open)
        }

        fn text(&self) -> String {
            String::from_utf8(self.written.lock().unwrap().clone()).unwrap()
        }
    }

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if let Some(gate) = &*self.gate.lock().unwrap() {
                let _ = gate.recv();
            }
            if self.closed.load(Ordering::SeqCst) {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            if self.refuse.load(Ordering::SeqCst) {
                return Err(io::ErrorKind::StorageFull.into());
            }
            self.written.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn line(queue: &LogQueue, text: &str) {
        let mut w = queue.make_writer();
        w.write_all(text.as_bytes()).unwrap();
    }

    #[test]
    fn lines_arrive_whole_and_in_order() {
        let sink = Sink::default();
        let queue = LogQueue::start_with(sink.clone(), 8, Framing::Lines).unwrap();
        for i in 0..5 {
            let mut w = queue.make_writer();
            // The formatter may write a line in pieces; it is queued as one.
            write!(w, "line ").unwrap();
            writeln!(w, "{i}").unwrap();
        }
        assert!(queue.flush(Duration::from_secs(10)));
        assert_eq!(sink.text(), "line 0\nline 1\nline 2\nline 3\nline 4\n");
    }

    #[test]
    fn a_stalled_sink_costs_lines_counted_once_it_moves_again() {
        let (sink, open) = Sink::gated();
        let queue = LogQueue::start_with(sink.clone(), 2, Framing::Lines).unwrap();
        // The writer takes the first line and waits in the sink; empty lines (which it
        // writes without asking the sink) fill the queue to the brim.
        line(&queue, "a\n");
        while queue.queue.try_send(Message::Line(Vec::new())).is_ok() {}
        for _ in 0..5 {
            line(&queue, "lost\n");
        }
        assert_eq!(queue.dropped.load(Ordering::Relaxed), 5);
        drop(open);
        assert!(queue.flush(Duration::from_secs(10)));
        assert_eq!(
            sink.text(),
            "a\nwirekit: 5 log lines dropped (log output stalled)\n"
        );
    }

    #[test]
    fn the_next_line_after_a_gap_says_how_many_went_missing() {
        let sink = Sink::default();
        let queue = LogQueue::start_with(sink.clone(), 8, Framing::Lines).unwrap();
        queue.dropped.store(1, Ordering::Relaxed);
        line(&queue, "b\n");
        assert!(queue.flush(Duration::from_secs(10)));
        assert_eq!(
            sink.text(),
            "wirekit: 1 log line dropped (log output stalled)\nb\n"
        );
    }

    /// In the journal a notice is an entry of its own: one datagram holds one entry.
    #[cfg(unix)]
    #[test]
    fn a_gap_in_the_journal_is_an_entry_before_the_next_one() {
        let entries = Arc::new(Mutex::new(Vec::new()));
        let queue = LogQueue::capture(entries.clone());
        queue.dropped.store(3, Ordering::Relaxed);
        queue.push(b"MESSAGE=next\n".to_vec());
        queue.push_text("said");
        assert!(queue.flush(Duration::from_secs(10)));
        let entries = entries.lock().unwrap();
        assert_eq!(entries.len(), 3, "{entries:?}");
        let notice = String::from_utf8(entries[0].clone()).unwrap();
        assert!(notice.contains("PRIORITY=4\n"), "{notice}");
        assert!(
            notice.contains("MESSAGE=wirekit: 3 log lines dropped (log output stalled)\n"),
            "{notice}"
        );
        assert_eq!(entries[1], b"MESSAGE=next\n");
        let said = String::from_utf8(entries[2].clone()).unwrap();
        assert!(said.contains("MESSAGE=said\n"), "{said}");
    }

    #[test]
    fn a_refusing_sink_is_counted_and_said_once_it_takes_lines_again() {
        let sink = Sink::default();
        sink.refuse.store(true, Ordering::SeqCst);
        let queue = LogQueue::start_with(sink.clone(), 8, Framing::Lines).unwrap();
        line(&queue, "x\n");
        line(&queue, "y\n");
        assert!(queue.flush(Duration::from_secs(10)));
        sink.refuse.store(false, Ordering::SeqCst);
        line(&queue, "z\n");
        assert!(queue.flush(Duration::from_secs(10)));
        let text = sink.text();
        assert!(
            text.starts_with("wirekit: 2 log lines dropped (log output failed: "),
            "{text}"
        );
        assert!(text.ends_with(")\nz\n"), "{text}");
    }

    #[test]
    fn a_closed_sink_ends_the_writer_and_later_lines_cost_nothing() {
        let sink = Sink::default();
        sink.closed.store(true, Ordering::SeqCst);
        let queue = LogQueue::start_with(sink.clone(), 2, Framing::Lines).unwrap();
        line(&queue, "x\n");
        // The writer ends: flushing does not wait, and no line is counted as dropped.
        assert!(queue.flush(Duration::from_secs(10)));
        for _ in 0..100 {
            line(&queue, "y\n");
        }
        assert!(queue.flush(Duration::from_secs(10)));
        assert_eq!(sink.text(), "");
    }

    #[test]
    fn a_flush_gives_up_on_a_sink_that_never_moves() {
        let (sink, _open) = Sink::gated();
        let queue = LogQueue::start_with(sink, 2, Framing::Lines).unwrap();
        for _ in 0..10 {
            line(&queue, "x\n");
        }
        assert!(!queue.flush(Duration::from_millis(50)));
    }
}
