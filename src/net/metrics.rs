//! What the server did, in numbers: transfers started and ended, bytes, retransmissions,
//! refusals, and what each event loop holds now. Counted from the endpoint's events, so an
//! application that runs its own loop gets the same numbers by feeding them in.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::tftp::server::{EndpointEvent, RefusalCause};
use crate::tftp::{Direction, ErrorCode, TransferError};

/// The outcomes a transfer's end is counted under: `ok`, each
/// [`TransferError::kind`], and `other` for a kind this list does not know yet.
pub const OUTCOMES: [&str; 13] = [
    "ok",
    "timeout",
    "unanswered",
    "peer_error",
    "options_declined",
    "bad_oack",
    "size_mismatch",
    "too_large",
    "storage",
    "aborted",
    "abandoned",
    "internal",
    "other",
];

/// The reasons a refusal is counted under: for a refusal of the policy, its ERROR code
/// (`file_not_found`, `access_violation`, ...); for one of the endpoint's own, its
/// [`RefusalCause`] (`busy`, `per_address`, ...).
pub const REFUSAL_REASONS: [&str; 16] = [
    "not_defined",
    "file_not_found",
    "access_violation",
    "disk_full",
    "illegal_operation",
    "unknown_transfer_id",
    "file_exists",
    "no_such_user",
    "option_negotiation",
    "other_code",
    "busy",
    "per_address",
    "shutting_down",
    "malformed",
    "unsupported",
    "unanswerable",
];

/// The kinds of timeouts counted: see [`Stats`](crate::tftp::Stats).
pub const TIMEOUT_KINDS: [&str; 3] = ["early", "retry", "spurious"];

/// The outcome a transfer that ended is counted under (one of [`OUTCOMES`]).
pub fn outcome(result: &Result<(), TransferError>) -> &'static str {
    match result {
        Ok(()) => "ok",
        Err(e) => {
            let kind = e.kind();
            OUTCOMES
                .iter()
                .copied()
                .find(|&o| o == kind)
                .unwrap_or("other")
        }
    }
}

/// The reason a refusal is counted under (one of [`REFUSAL_REASONS`]).
pub fn refusal_reason(cause: RefusalCause, code: ErrorCode) -> &'static str {
    match cause {
        RefusalCause::Policy => match code {
            ErrorCode::NotDefined => "not_defined",
            ErrorCode::FileNotFound => "file_not_found",
            ErrorCode::AccessViolation => "access_violation",
            ErrorCode::DiskFull => "disk_full",
            ErrorCode::IllegalOperation => "illegal_operation",
            ErrorCode::UnknownTransferId => "unknown_transfer_id",
            ErrorCode::FileExists => "file_exists",
            ErrorCode::NoSuchUser => "no_such_user",
            ErrorCode::OptionNegotiation => "option_negotiation",
            ErrorCode::Other(_) => "other_code",
        },
        other => other.as_str(),
    }
}

fn index(list: &[&str], name: &str) -> Option<usize> {
    list.iter().position(|&n| n == name)
}

fn direction_index(d: Direction) -> usize {
    match d {
        Direction::Read => 0,
        Direction::Write => 1,
    }
}

/// Counters of one server (or of any endpoints an application feeds in), shared by its
/// event loops and read by whoever asks: a [`snapshot`](Metrics::snapshot), or, with the
/// `prometheus` feature, the Prometheus text format. Cloning it gives another handle to
/// the same counters.
///
/// The loops only add to atomics and read nothing back, so that a scrape never holds up
/// a transfer. Counters count from the start; bytes and retransmissions are counted when
/// a transfer ends.
///
/// ```no_run
/// use wirekit::net::metrics::Metrics;
/// use wirekit::net::{DirConfig, Server, ServerConfig};
/// use wirekit::tftp::Direction;
///
/// let metrics = Metrics::new();
/// let config = ServerConfig::new(vec!["127.0.0.1:6969".parse()?]);
/// let server = Server::bind(config, DirConfig::new("/srv/tftp"))?
///     .with_metrics(&metrics)
///     .spawn()?;
/// // ... later, from any thread:
/// let now = metrics.snapshot();
/// println!("{} reads, {} running", now.started(Direction::Read), now.running());
/// # drop(server);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Default)]
pub struct Metrics(Arc<Counters>);

#[derive(Default)]
struct Counters {
    started: [AtomicU64; 2],
    ended: [[AtomicU64; OUTCOMES.len()]; 2],
    bytes: [AtomicU64; 2],
    resent: AtomicU64,
    timeouts: [AtomicU64; TIMEOUT_KINDS.len()],
    refused: [AtomicU64; REFUSAL_REASONS.len()],
    ignored: AtomicU64,
    /// Each loop's gauges, in the order the loops were attached. Locked only to attach a
    /// loop and to read: a loop holds its own `Arc` and never takes the lock.
    loops: Mutex<Vec<Arc<Gauges>>>,
}

/// What one event loop holds now.
#[derive(Default)]
struct Gauges {
    running: AtomicU64,
    unanswered: AtomicU64,
    commits: AtomicU64,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Metrics").field(&self.snapshot()).finish()
    }
}

fn add(counter: &AtomicU64, n: u64) {
    // Counts only: nothing is ordered by them.
    counter.fetch_add(n, Ordering::Relaxed);
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

impl Metrics {
    /// Counters at zero, with no loop attached.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Attaches one more event loop (numbered from 0 in the order attached), and returns
    /// what that loop feeds its events to. A server does this for each of its loops; an
    /// application that runs its own endpoint does it once per endpoint.
    pub fn event_loop(&self) -> LoopMetrics {
        let gauges = Arc::new(Gauges::default());
        self.0
            .loops
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(gauges.clone());
        LoopMetrics {
            counters: self.0.clone(),
            gauges,
            committing: BTreeSet::new(),
        }
    }

    /// The counters now. Each is read on its own: a snapshot taken while transfers run
    /// may count a transfer as started and not yet as running.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let c = &self.0;
        let loops = c
            .loops
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|g| LoopSnapshot {
                running: get(&g.running),
                unanswered: get(&g.unanswered),
                commits_pending: get(&g.commits),
            })
            .collect();
        MetricsSnapshot {
            started: c.started.each_ref().map(get),
            ended: c.ended.each_ref().map(|d| d.each_ref().map(get)),
            bytes: c.bytes.each_ref().map(get),
            resent: get(&c.resent),
            timeouts: c.timeouts.each_ref().map(get),
            refused: c.refused.each_ref().map(get),
            ignored: get(&c.ignored),
            loops,
        }
    }
}

/// What one event loop feeds its endpoint's events to: see [`Metrics::event_loop`].
#[derive(Debug)]
pub struct LoopMetrics {
    counters: Arc<Counters>,
    gauges: Arc<Gauges>,
    /// Uploads handed out for their commit, not yet ended.
    committing: BTreeSet<crate::tftp::server::TransferId>,
}

impl fmt::Debug for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Counters").finish_non_exhaustive()
    }
}

impl fmt::Debug for Gauges {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gauges")
            .field("running", &get(&self.running))
            .field("unanswered", &get(&self.unanswered))
            .field("commits", &get(&self.commits))
            .finish()
    }
}

impl LoopMetrics {
    /// Counts `event`, as [`Endpoint::poll_event`](crate::tftp::server::Endpoint::poll_event)
    /// gave it: call it for every event, before acting on it.
    pub fn record<S>(&mut self, event: &EndpointEvent<S>) {
        let c = &self.counters;
        match event {
            EndpointEvent::Started { info, .. } => {
                add(&c.started[direction_index(info.direction)], 1);
                add(&self.gauges.running, 1);
            }
            EndpointEvent::Ended { id, report } => {
                let d = direction_index(report.info.direction);
                let o = index(&OUTCOMES, outcome(&report.result)).unwrap_or(OUTCOMES.len() - 1);
                add(&c.ended[d][o], 1);
                add(&c.bytes[d], report.stats.bytes);
                let s = &report.stats;
                add(&c.resent, s.retransmissions);
                for (i, n) in [s.early_timeouts, s.retries, s.spurious]
                    .into_iter()
                    .enumerate()
                {
                    add(&c.timeouts[i], n);
                }
                self.gauges.running.fetch_sub(1, Ordering::Relaxed);
                if self.committing.remove(id) {
                    self.gauges.commits.fetch_sub(1, Ordering::Relaxed);
                }
            }
            EndpointEvent::Commit { id, .. } if self.committing.insert(*id) => {
                add(&self.gauges.commits, 1);
            }
            EndpointEvent::Refused { refusal, cause, .. } => {
                let reason = refusal_reason(*cause, refusal.code);
                if let Some(i) = index(&REFUSAL_REASONS, reason) {
                    add(&c.refused[i], 1);
                }
            }
            EndpointEvent::Ignored { .. } => add(&c.ignored, 1),
            _ => {}
        }
    }

    /// Sets how many transfers of this loop wait for their client's first answer:
    /// [`Endpoint::unanswered`](crate::tftp::server::Endpoint::unanswered), after the events.
    pub fn set_unanswered(&self, transfers: usize) {
        self.gauges
            .unanswered
            .store(transfers as u64, Ordering::Relaxed);
    }
}

/// The counters of [`Metrics`] at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    started: [u64; 2],
    ended: [[u64; OUTCOMES.len()]; 2],
    bytes: [u64; 2],
    resent: u64,
    timeouts: [u64; TIMEOUT_KINDS.len()],
    refused: [u64; REFUSAL_REASONS.len()],
    /// Requests dropped without an answer, their address holding as many unanswered
    /// transfers as [`Limits::max_unanswered_per_address`](crate::tftp::server::Limits::max_unanswered_per_address) allows.
    pub ignored: u64,
    /// What each loop holds now, in the order the loops were attached.
    pub loops: Vec<LoopSnapshot>,
}

/// What one event loop holds at the moment of a [`MetricsSnapshot`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoopSnapshot {
    /// Transfers that started and have not ended.
    pub running: u64,
    /// Transfers whose client has not answered the first packet yet.
    pub unanswered: u64,
    /// Uploads being put in place, their client waiting for the final ACK.
    pub commits_pending: u64,
}

impl MetricsSnapshot {
    /// Transfers started in `direction` (requests admitted).
    pub fn started(&self, direction: Direction) -> u64 {
        self.started[direction_index(direction)]
    }

    /// Transfers in `direction` that ended, however.
    pub fn ended(&self, direction: Direction) -> u64 {
        self.ended[direction_index(direction)].iter().sum()
    }

    /// Transfers in `direction` that ended with `outcome` (one of [`OUTCOMES`]).
    pub fn ended_with(&self, direction: Direction, outcome: &str) -> u64 {
        index(&OUTCOMES, outcome).map_or(0, |o| self.ended[direction_index(direction)][o])
    }

    /// File bytes sent (reads) or received (writes) by transfers that ended.
    pub fn bytes(&self, direction: Direction) -> u64 {
        self.bytes[direction_index(direction)]
    }

    /// Packets sent again, by transfers that ended.
    pub fn resent(&self) -> u64 {
        self.resent
    }

    /// Timeouts of `kind` (one of [`TIMEOUT_KINDS`]: `early`, `retry`, `spurious`), by
    /// transfers that ended.
    pub fn timeouts(&self, kind: &str) -> u64 {
        index(&TIMEOUT_KINDS, kind).map_or(0, |k| self.timeouts[k])
    }

    /// Requests refused for `reason` (one of [`REFUSAL_REASONS`]).
    pub fn refused(&self, reason: &str) -> u64 {
        index(&REFUSAL_REASONS, reason).map_or(0, |r| self.refused[r])
    }

    /// Requests refused, for any reason.
    pub fn refused_total(&self) -> u64 {
        self.refused.iter().sum()
    }

    /// Transfers running, across the loops.
    pub fn running(&self) -> u64 {
        self.loops.iter().map(|l| l.running).sum()
    }

    /// Transfers whose client has not answered yet, across the loops.
    pub fn unanswered(&self) -> u64 {
        self.loops.iter().map(|l| l.unanswered).sum()
    }

    /// Uploads being committed, across the loops.
    pub fn commits_pending(&self) -> u64 {
        self.loops.iter().map(|l| l.commits_pending).sum()
    }
}

#[cfg(feature = "prometheus")]
#[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
mod prometheus {
    //! The counters as Prometheus metrics, built at each scrape from a snapshot.

    use prometheus_client::collector::Collector;
    use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
    use prometheus_client::metrics::MetricType;
    use prometheus_client::metrics::counter::ConstCounter;
    use prometheus_client::metrics::gauge::ConstGauge;
    use prometheus_client::registry::Registry;

    use super::{
        Metrics, MetricsSnapshot, OUTCOMES, REFUSAL_REASONS, TIMEOUT_KINDS, direction_index,
    };
    use crate::tftp::Direction;
    use crate::tftp::server::direction_word;

    const DIRECTIONS: [Direction; 2] = [Direction::Read, Direction::Write];

    /// `Content-Type` of [`Metrics::encode_prometheus`]'s text.
    pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

    #[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
    impl Metrics {
        /// The counters in the Prometheus text format (version 0.0.4), every name
        /// prefixed with `wirekit_`: what `wirekit serve --metrics` serves. To add them to
        /// an application's own registry instead, register the `Metrics` as a
        /// [`Collector`].
        pub fn encode_prometheus(&self) -> String {
            let mut registry = Registry::with_prefix("wirekit");
            registry.register_collector(Box::new(self.clone()));
            let mut text = String::new();
            prometheus_client::encoding::prometheus_text::encode(&mut text, &registry)
                .expect("encoding into a String does not fail");
            text
        }
    }

    fn counter(
        encoder: &mut DescriptorEncoder<'_>,
        name: &str,
        help: &str,
        series: &[(&[(&str, &str)], u64)],
    ) -> Result<(), std::fmt::Error> {
        let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        if let [([], value)] = series {
            return ConstCounter::new(*value).encode(metric);
        }
        for (labels, value) in series {
            ConstCounter::new(*value).encode(metric.encode_family(labels)?)?;
        }
        Ok(())
    }

    fn gauge(
        encoder: &mut DescriptorEncoder<'_>,
        name: &str,
        help: &str,
        per_loop: impl Iterator<Item = (String, u64)>,
    ) -> Result<(), std::fmt::Error> {
        let mut metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
        for (event_loop, value) in per_loop {
            let labels = [("loop", event_loop.as_str())];
            ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX))
                .encode(metric.encode_family(&labels)?)?;
        }
        Ok(())
    }

    impl Collector for Metrics {
        fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
            let s: MetricsSnapshot = self.snapshot();
            let dirs = DIRECTIONS.map(|d| [("direction", direction_word(d))]);
            let by_direction = |values: [u64; 2]| -> Vec<(&[(&str, &str)], u64)> {
                DIRECTIONS
                    .iter()
                    .map(|&d| {
                        let i = direction_index(d);
                        (&dirs[i][..], values[i])
                    })
                    .collect()
            };
            counter(
                &mut encoder,
                "transfers_started",
                "Transfers started (requests admitted), by direction (read: the client downloads).",
                &by_direction(s.started),
            )?;
            let ended_labels: Vec<[(&str, &str); 2]> = DIRECTIONS
                .iter()
                .flat_map(|&d| {
                    OUTCOMES
                        .iter()
                        .map(move |&o| [("direction", direction_word(d)), ("outcome", o)])
                })
                .collect();
            // Outcomes that never happened are left out (most are the client's): all but
            // `ok`, which a dashboard divides by.
            let ended: Vec<(&[(&str, &str)], u64)> = ended_labels
                .iter()
                .enumerate()
                .map(|(i, l)| (&l[..], s.ended[i / OUTCOMES.len()][i % OUTCOMES.len()]))
                .filter(|(l, v)| *v > 0 || l[1].1 == "ok")
                .collect();
            counter(
                &mut encoder,
                "transfers_ended",
                "Transfers ended, by direction and outcome (ok, or how it failed).",
                &ended,
            )?;
            counter(
                &mut encoder,
                "transfer_bytes",
                "File bytes sent (read) or received (write) by transfers that ended.",
                &by_direction(s.bytes),
            )?;
            counter(
                &mut encoder,
                "resent_packets",
                "Packets sent again after a timeout or a gap, by transfers that ended.",
                &[(&[], s.resent)],
            )?;
            let kinds = TIMEOUT_KINDS.map(|k| [("kind", k)]);
            let timeouts: Vec<(&[(&str, &str)], u64)> = kinds
                .iter()
                .zip(s.timeouts)
                .map(|(l, v)| (&l[..], v))
                .collect();
            counter(
                &mut encoder,
                "timeouts",
                "Retransmission timeouts of transfers that ended: early (before the configured \
                 timeout, on a measured round trip), retry (at the configured timeout), \
                 spurious (the answer was only late).",
                &timeouts,
            )?;
            let reasons = REFUSAL_REASONS.map(|r| [("reason", r)]);
            let refused: Vec<(&[(&str, &str)], u64)> = reasons
                .iter()
                .zip(s.refused)
                .map(|(l, v)| (&l[..], v))
                .filter(|(_, v)| *v > 0)
                .collect();
            counter(
                &mut encoder,
                "requests_refused",
                "Requests refused with an ERROR, by reason: the ERROR code of the policy's \
                 refusal, or the server's own (busy, per_address, shutting_down, ...).",
                &refused,
            )?;
            counter(
                &mut encoder,
                "requests_ignored",
                "Requests dropped unanswered: their address held as many unanswered \
                 transfers as allowed.",
                &[(&[], s.ignored)],
            )?;
            let per_loop = |f: fn(&super::LoopSnapshot) -> u64| {
                s.loops
                    .iter()
                    .enumerate()
                    .map(move |(i, l)| (i.to_string(), f(l)))
            };
            gauge(
                &mut encoder,
                "transfers_running",
                "Transfers running now, by event loop.",
                per_loop(|l| l.running),
            )?;
            gauge(
                &mut encoder,
                "transfers_unanswered",
                "Transfers whose client has not answered the first packet yet, by event loop.",
                per_loop(|l| l.unanswered),
            )?;
            gauge(
                &mut encoder,
                "commits_pending",
                "Uploads being put in place, their client waiting for the final ACK, by \
                 event loop.",
                per_loop(|l| l.commits_pending),
            )?;
            Ok(())
        }
    }
}

#[cfg(feature = "prometheus")]
#[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
pub use prometheus::CONTENT_TYPE as PROMETHEUS_CONTENT_TYPE;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_of_end_and_refusal_has_its_own_series() {
        use crate::tftp::TransferError;
        let ends = [
            TransferError::Timeout { retries: 5 },
            TransferError::Unanswered,
            TransferError::OptionsDeclined,
            TransferError::Abandoned,
        ];
        for e in ends {
            assert_eq!(outcome(&Err(e.clone())), e.kind());
        }
        assert_eq!(outcome(&Ok(())), "ok");
        assert_eq!(
            refusal_reason(RefusalCause::Policy, ErrorCode::FileNotFound),
            "file_not_found"
        );
        assert_eq!(
            refusal_reason(RefusalCause::Busy, ErrorCode::NotDefined),
            "busy"
        );
        for cause in [
            RefusalCause::Busy,
            RefusalCause::PerAddress,
            RefusalCause::ShuttingDown,
            RefusalCause::Malformed,
            RefusalCause::Unsupported,
            RefusalCause::Unanswerable,
        ] {
            assert!(REFUSAL_REASONS.contains(&cause.as_str()), "{cause:?}");
        }
    }

    #[cfg(feature = "prometheus")]
    #[test]
    fn the_text_format_names_each_loop() {
        let metrics = Metrics::new();
        let first = metrics.event_loop();
        let _second = metrics.event_loop();
        first.set_unanswered(3);
        add(
            &metrics.0.refused[index(&REFUSAL_REASONS, "busy").unwrap()],
            2,
        );
        let text = metrics.encode_prometheus();
        for line in [
            "# TYPE wirekit_transfers_started_total counter\n",
            "wirekit_transfers_started_total{direction=\"read\"} 0\n",
            "wirekit_transfers_ended_total{direction=\"write\",outcome=\"ok\"} 0\n",
            "wirekit_requests_refused_total{reason=\"busy\"} 2\n",
            "wirekit_requests_ignored_total 0\n",
            "wirekit_resent_packets_total 0\n",
            "wirekit_timeouts_total{kind=\"early\"} 0\n",
            "# TYPE wirekit_transfers_running gauge\n",
            "wirekit_transfers_unanswered{loop=\"0\"} 3\n",
            "wirekit_transfers_unanswered{loop=\"1\"} 0\n",
        ] {
            assert!(text.contains(line), "{line:?} missing in\n{text}");
        }
        // Outcomes and reasons that never happened are left out.
        assert!(!text.contains("outcome=\"timeout\""), "{text}");
        assert!(!text.contains("reason=\"file_not_found\""), "{text}");
    }
}
