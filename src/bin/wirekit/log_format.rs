//! How the server's log looks: lines for a person (`text`), one JSON object a line for a
//! program (`json`), or entries with fields in the systemd journal (`journal`).
//!
//! The library's events carry their facts as fields and the line a person reads as their
//! message: text shows the message, JSON and the journal show both.

use std::fmt::{self, Write as _};
use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use super::log_output::LogQueue;

/// The log's format (`--log-format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// A line per event: time, level, what happened.
    Text,
    /// One JSON object per line: timestamp, level, message and the event's fields.
    Json,
    /// Entries in the systemd journal, with the event's fields as journal fields
    /// (`journalctl FILE=pxelinux.0`).
    #[cfg(unix)]
    Journal,
}

/// Sets up the log in `format` (`None`: the journal when stderr is connected to it, else
/// text) at the level `-v`/`-q` asked for, and returns its queue.
pub fn init(format: Option<LogFormat>, verbose: bool, quiet: bool) -> Result<LogQueue, String> {
    let level = match (verbose, quiet) {
        (true, _) => Level::DEBUG,
        (_, true) => Level::WARN,
        _ => Level::INFO,
    };
    #[cfg(unix)]
    let journal_stream = super::journal::stderr_is_journal();
    #[cfg(not(unix))]
    let journal_stream = false;
    #[cfg(unix)]
    {
        let journal = match format {
            Some(LogFormat::Journal) => Some(LogQueue::on_journal().map_err(|e| {
                format!(
                    "--log-format journal: cannot reach the journal at {}: {e}",
                    super::journal::SOCKET
                )
            })?),
            // Its stream (stderr) is the fallback if the journal does not take entries.
            None if journal_stream => LogQueue::on_journal().ok(),
            _ => None,
        };
        if let Some(queue) = journal {
            use tracing_subscriber::Layer as _;
            use tracing_subscriber::layer::SubscriberExt as _;
            use tracing_subscriber::util::SubscriberInitExt as _;
            let filter = tracing_subscriber::filter::LevelFilter::from_level(level);
            tracing_subscriber::registry()
                .with(super::journal::JournalLayer::new(queue.clone()).with_filter(filter))
                .init();
            return Ok(queue);
        }
    }
    let queue = LogQueue::on_stderr().map_err(|e| format!("cannot start the log: {e}"))?;
    let log = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(queue.clone());
    if format == Some(LogFormat::Json) {
        log.with_ansi(false)
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_target(false)
            .init();
    } else {
        log.with_ansi(std::io::stderr().is_terminal())
            .event_format(TextFormat {
                // The journal stamps each line itself.
                time: !journal_stream,
            })
            .init();
    }
    Ok(queue)
}

/// `2026-11-26T15:33:41.325680Z  INFO 192.0.2.7:2070 read "pxelinux.0": ...`: the time
/// (unless left out), the level, and the event's message; fields other than the message
/// are printed only for an event that has none.
pub struct TextFormat {
    pub time: bool,
}

impl<S, N> FormatEvent<S, N> for TextFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let ansi = w.has_ansi_escapes();
        let level = *event.metadata().level();
        if self.time {
            if ansi {
                w.write_str("\x1b[2m")?;
            }
            SystemTime.format_time(&mut w)?;
            if ansi {
                w.write_str("\x1b[0m")?;
            }
            w.write_char(' ')?;
        }
        if ansi {
            write!(w, "{}", level_color(level))?;
        }
        // Padded to line up after a time; at the start of a line, no padding.
        if self.time {
            write!(w, "{level:>5}")?;
        } else {
            write!(w, "{level}")?;
        }
        if ansi {
            w.write_str("\x1b[0m")?;
        }
        let mut text = Text::default();
        event.record(&mut text);
        let body = text.message.unwrap_or(text.fields);
        writeln!(w, " {body}")
    }
}

fn level_color(level: Level) -> &'static str {
    match level {
        Level::ERROR => "\x1b[31m",
        Level::WARN => "\x1b[33m",
        Level::INFO => "\x1b[32m",
        Level::DEBUG => "\x1b[34m",
        Level::TRACE => "\x1b[35m",
    }
}

/// An event's message, and its other fields as `name=value` in case it has none.
#[derive(Default)]
struct Text {
    message: Option<String>,
    fields: String,
}

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.message = Some(format!("{value:?}"));
        } else {
            let sep = if self.fields.is_empty() { "" } else { " " };
            let _ = write!(self.fields, "{sep}{}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        // A string's Debug would quote and escape it.
        self.record_debug(field, &format_args!("{value}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Formats the events `emit` logs with `format`, as lines.
    fn lines(format: TextFormat, emit: impl FnOnce()) -> Vec<String> {
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buf = Buf::default();
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .event_format(format)
            .finish();
        tracing::subscriber::with_default(subscriber, emit);
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        text.lines().map(String::from).collect()
    }

    #[test]
    fn text_shows_the_message_not_the_fields() {
        let got = lines(TextFormat { time: false }, || {
            tracing::info!(file = "a\\b", bytes = 3u64, "192.0.2.7:9 read \"a\\b\": ok");
            tracing::warn!(code = 1u64, "refused");
            tracing::info!(only = "fields", n = 2u64);
        });
        assert_eq!(
            got,
            [
                r#"INFO 192.0.2.7:9 read "a\b": ok"#,
                "WARN refused",
                "INFO only=fields n=2",
            ]
        );
    }

    #[test]
    fn a_time_comes_first_with_the_level_lined_up_after_it() {
        let got = lines(TextFormat { time: true }, || tracing::info!("hello"));
        let (stamp, rest) = got[0].split_once(' ').unwrap();
        assert!(stamp.ends_with('Z') && stamp.contains('T'), "{stamp}");
        assert_eq!(rest, " INFO hello");
    }
}
