//! The machines over a simulated lossy network: a client `Transfer` (or twenty) against a
//! server `Endpoint`. Every run ends with the file intact on the receiver, or with a
//! timeout on both sides; never wrong data, never a hang.

mod sim;

use std::net::SocketAddr;
use std::time::Duration;

use proptest::prelude::*;
use sim::{ClientSpec, Faults, Network, Rng, Scenario, check, check_client, file, run, run_many};
use wirekit::tftp::server::PortMode;
use wirekit::tftp::{Direction, Mode};

fn size_for(kind: u8, blk: usize, extra: usize) -> usize {
    match kind {
        0 => 0,
        1 => 1,
        2 => blk - 1,
        3 => blk,
        4 => blk + 1,
        5 => blk * (2 + extra % 20),
        _ => extra % (blk * 24 + 1),
    }
}

/// 128 cases unless `PROPTEST_CASES` says otherwise.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128)
}

fn blksize() -> impl Strategy<Value = u16> {
    prop_oneof![Just(8u16), Just(512), Just(1468), 8u16..=700]
}

fn windowsize() -> impl Strategy<Value = u16> {
    prop_oneof![Just(1u16), Just(4), Just(16), 1u16..=40]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn lossy_transfers_end_right(
        read in any::<bool>(),
        netascii in any::<bool>(),
        kind in 0u8..7,
        extra in 0usize..100_000,
        blk in blksize(),
        win in windowsize(),
        ask_options in any::<bool>(),
        tsize in any::<bool>(),
        dally in any::<bool>(),
        single_port in any::<bool>(),
        loss in 0u32..=300,
        dup in 0u32..=100,
        reorder in 0u32..=200,
        jitter_ms in 0u64..=400,
        seed in any::<u64>(),
    ) {
        let direction = if read { Direction::Read } else { Direction::Write };
        let blk_used = if ask_options { usize::from(blk) } else { 512 };
        let size = size_for(kind, blk_used, extra);
        let mut s = Scenario::new(direction, file(size, seed));
        s.mode = if netascii { Mode::Netascii } else { Mode::Octet };
        if ask_options {
            s.blksize = Some(blk);
            s.windowsize = Some(win);
        }
        s.tsize = tsize;
        s.dally = dally;
        s.faults = Faults {
            loss,
            dup,
            reorder,
            delay: Duration::from_millis(5),
            jitter: Duration::from_millis(jitter_ms),
        };
        s.seed = seed;
        s.ports = if single_port { PortMode::Single } else { PortMode::PerTransfer };
        let o = run(&s);
        if let Err(e) = check(&s, &o) {
            return Err(TestCaseError::fail(format!("{e}; outcome {:?}", (&o.client, &o.server, o.steps))));
        }
        if loss == 0 && dup == 0 && reorder == 0 && jitter_ms == 0 {
            prop_assert!(o.receiver_ok, "lossless run failed: {:?}", (&o.client, &o.server));
            prop_assert!(matches!(o.client, Some(Ok(_))) && matches!(o.server, Some(Ok(_))));
        }
    }
}

/// Cases of the many-clients run, 48 unless `CROWD_CASES` says otherwise: each case is
/// twenty transfers (about 5 ms in a debug build).
fn crowd_cases() -> u32 {
    std::env::var("CROWD_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crowd_cases()))]

    /// Twenty clients at twenty addresses, reading and writing at once through one
    /// endpoint over one lossy network: each one's file arrives byte for byte, or its
    /// transfer times out cleanly; no client's datagrams reach another's transfer.
    #[test]
    fn many_clients_through_one_endpoint(
        single_port in any::<bool>(),
        loss in 0u32..=150,
        dup in 0u32..=100,
        reorder in 0u32..=150,
        jitter_ms in 0u64..=200,
        seed in any::<u64>(),
    ) {
        let mut pick = Rng::new(seed);
        let specs: Vec<ClientSpec> = (0..20u16)
            .map(|i| {
                let addr = SocketAddr::from(([10, 0, 1, i as u8 + 1], 5000 + i));
                let direction = if pick.chance(500) { Direction::Read } else { Direction::Write };
                let blk = [8u16, 512, 1468][pick.below(3) as usize];
                let size = pick.below(blk as u64 * 12 + 1) as usize;
                let mut c = ClientSpec::new(addr, &format!("file-{i}"), direction, file(size, seed ^ u64::from(i)));
                c.blksize = Some(blk);
                c.windowsize = Some(if i % 2 == 0 { 1 } else { 8 });
                c.mode = if pick.chance(200) { Mode::Netascii } else { Mode::Octet };
                c.tsize = pick.chance(500);
                c.dally = pick.chance(500);
                c
            })
            .collect();
        let mut n = Network::new();
        n.ports = if single_port { PortMode::Single } else { PortMode::PerTransfer };
        n.faults = Faults {
            loss,
            dup,
            reorder,
            delay: Duration::from_millis(5),
            jitter: Duration::from_millis(jitter_ms),
        };
        n.seed = seed;
        let outcomes = run_many(&n, &specs);
        for (spec, o) in specs.iter().zip(&outcomes) {
            if let Err(e) = check_client(&spec.file, spec.direction, o) {
                return Err(TestCaseError::fail(format!("client {}: {e}; outcome {:?}", spec.addr, (&o.client, &o.server, &o.extra))));
            }
            if loss == 0 && dup == 0 && reorder == 0 && jitter_ms == 0 {
                prop_assert!(o.receiver_ok, "lossless run failed: {:?}", (&o.client, &o.server));
            }
        }
    }
}

/// Moderate loss completes: with 12 retries the odds of giving up are negligible.
#[test]
fn ten_percent_loss_completes() {
    for seed in 0..40u64 {
        for direction in [Direction::Read, Direction::Write] {
            let mut s = Scenario::new(direction, file(20_000 + seed as usize * 37, seed));
            s.blksize = Some(512);
            s.windowsize = Some(if seed % 2 == 0 { 1 } else { 8 });
            s.mode = if seed % 3 == 0 {
                Mode::Netascii
            } else {
                Mode::Octet
            };
            s.faults = Faults {
                loss: 100,
                dup: 50,
                reorder: 100,
                delay: Duration::from_millis(5),
                jitter: Duration::from_millis(50),
            };
            s.seed = seed;
            let o = run(&s);
            check(&s, &o).unwrap();
            assert!(
                o.receiver_ok,
                "seed {seed} {direction:?}: {:?}",
                (&o.client, &o.server)
            );
        }
    }
}

/// Block numbers wrap past 65535: more than 65535 blocks at blksize 8, both directions,
/// lossless and with a little loss.
#[test]
fn more_than_65535_blocks() {
    let data = file(8 * 70_000 + 3, 7);
    for (direction, win, loss) in [
        (Direction::Read, 64, 0),
        (Direction::Write, 16, 0),
        (Direction::Read, 32, 20),
    ] {
        let mut s = Scenario::new(direction, data.clone());
        s.blksize = Some(8);
        s.windowsize = Some(win);
        s.faults.loss = loss;
        s.seed = 99;
        let o = run(&s);
        check(&s, &o).unwrap();
        assert!(
            o.receiver_ok,
            "{direction:?} {win} {loss}: {:?}",
            (&o.client, &o.server)
        );
        let sender = match direction {
            Direction::Read => &o.server,
            Direction::Write => &o.client,
        };
        if loss == 0 {
            let stats = sender.as_ref().unwrap().as_ref().unwrap();
            assert_eq!(stats.blocks, 70_001);
        }
    }
}

/// A network that drops everything: both sides give up with `Timeout`, in bounded time.
#[test]
fn total_loss_times_out() {
    for direction in [Direction::Read, Direction::Write] {
        let mut s = Scenario::new(direction, file(3000, 1));
        s.faults.loss = 1000;
        let o = run(&s);
        check(&s, &o).unwrap();
        assert!(!o.server_started);
        assert!(matches!(
            o.client,
            Some(Err(wirekit::tftp::TransferError::Timeout { retries: 12 }))
        ));
    }
}

/// Run by hand: how often do runs at 30% loss complete, and how often does the sender
/// miss the final ACK? `cargo test --test tftp_sim survey -- --ignored --nocapture`
#[test]
#[ignore]
fn survey() {
    let (mut ok, mut sender_timeout, mut both_timeout, mut n) = (0, 0, 0, 0);
    for seed in std::env::var("SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(0..400u64, |s: u64| s..s + 1)
    {
        let direction = if seed % 2 == 0 {
            Direction::Read
        } else {
            Direction::Write
        };
        let mut s = Scenario::new(direction, file(10_000, seed));
        s.blksize = Some(512);
        s.windowsize = Some([1, 4, 16][seed as usize % 3]);
        s.faults = Faults {
            loss: 300,
            dup: 50,
            reorder: 100,
            delay: Duration::from_millis(5),
            jitter: Duration::from_millis(200),
        };
        s.seed = seed;
        let o = run(&s);
        check(&s, &o).unwrap();
        n += 1;
        let sender = if seed % 2 == 0 { &o.server } else { &o.client };
        if o.receiver_ok {
            ok += 1;
            if sender.as_ref().is_some_and(|r| r.is_err()) {
                sender_timeout += 1;
                eprintln!("seed {seed} {direction:?} sender {sender:?}");
            }
        } else {
            both_timeout += 1;
        }
    }
    eprintln!(
        "{n} runs: {ok} received, {sender_timeout} of them with sender timeout, {both_timeout} both timed out"
    );
}
