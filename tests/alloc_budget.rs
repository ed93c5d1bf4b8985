//! The heap the core asks for, counted: a global allocator that counts every allocation of
//! this test's thread, and says whose it was (the client's `Transfer` or the server's
//! `Endpoint`). A client and an endpoint run a 10 000-block transfer against each other in
//! memory (no sockets, a virtual clock), and from block 100 to the last few blocks:
//!
//! - in octet mode, neither side allocates at all, downloads and uploads, lock-step and
//!   windowed, in both port modes: what a device on a small heap needs to know first;
//! - in netascii, neither allocates per block either (the sender's per-block checkpoints
//!   reuse the room a window needs, which it takes once, at the first window).
//!
//! It also measures the heap each side holds while a transfer runs (its "at rest" cost, with
//! no allocation in flight), which the README states, and keeps it under a bound.
//!
//! The counting is per thread, so the harness's other tests, running alongside, do not
//! disturb it, and nothing the harness here does between the snapshots allocates: the
//! buffers, the files and the storages are all made before the first block.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;

use wirekit::tftp::server::{
    Endpoint, EndpointEvent, Inbound, Incoming, Limits, Outbound, Policy, PortMode, Refusal,
};
use wirekit::tftp::{
    Blksize, ClientRequest, Config, Direction, ErrorCode, Instant, Mode, Storage, StorageError,
    Text, Transfer, TransferEvent, Windowsize,
};

// ------------------------------------------------------------------------- the counter

/// Whose code runs on this thread: allocations are charged to it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    Client = 0,
    Server = 1,
    /// The test itself (building files, buffers, reports).
    Harness = 2,
}

/// Allocation calls (`alloc`, `alloc_zeroed`, `realloc`) and bytes held, per side.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
struct Counts {
    allocs: [u64; 3],
    live: [i64; 3],
}

thread_local! {
    // Const-initialised and without a destructor: reading them allocates nothing, which an
    // allocator's own bookkeeping must not.
    static SIDE: Cell<Side> = const { Cell::new(Side::Harness) };
    static COUNTS: Cell<Counts> = const { Cell::new(Counts { allocs: [0; 3], live: [0; 3] }) };
}

struct Counting;

fn charge(allocs: u64, bytes: i64) {
    // `try_with`: a thread being torn down has no locals left, and frees memory all the same.
    let _ = SIDE.try_with(|side| {
        let i = side.get() as usize;
        let _ = COUNTS.try_with(|c| {
            let mut counts = c.get();
            counts.allocs[i] += allocs;
            counts.live[i] += bytes;
            c.set(counts);
        });
    });
}

// SAFETY: every call is passed to the system allocator unchanged; the counting around it
// touches only this thread's const-initialised locals, which never allocate.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        charge(1, layout.size() as i64);
        // SAFETY: the caller's contract for `alloc` is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        charge(1, layout.size() as i64);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        charge(0, -(layout.size() as i64));
        // SAFETY: `ptr` came from this allocator, that is from the system one.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        charge(1, new_size as i64 - layout.size() as i64);
        // SAFETY: as for `dealloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn counts() -> Counts {
    COUNTS.with(Cell::get)
}

/// Runs `f` with its allocations charged to `side`.
fn on<R>(side: Side, f: impl FnOnce() -> R) -> R {
    let before = SIDE.with(|s| s.replace(side));
    let out = f();
    SIDE.with(|s| s.set(before));
    out
}

// ---------------------------------------------------------------------- files and storage

/// A file in memory, shared by the policy, both sides' storages and the test. A storage
/// reads from it and checks what is written against it: a received file is compared byte
/// for byte as it arrives, and nothing is stored, so the storage never allocates.
#[derive(Clone)]
struct Memory {
    file: Rc<[u8]>,
    /// Bytes written (and checked) so far.
    written: usize,
}

impl Memory {
    fn new(file: &Rc<[u8]>) -> Memory {
        Memory {
            file: file.clone(),
            written: 0,
        }
    }
}

impl Storage for Memory {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, StorageError> {
        let mut file: &[u8] = &self.file;
        file.read_at(offset, buf)
    }

    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        let end = self.written + data.len();
        if self.file.get(self.written..end) != Some(data) {
            return Err(StorageError::new(
                ErrorCode::NotDefined,
                "received bytes differ from the file",
            ));
        }
        self.written = end;
        Ok(())
    }
}

/// Serves the one file for every read, and accepts every upload into a checking storage.
struct Serve(Rc<[u8]>);

impl Policy for Serve {
    type Storage = Memory;

    fn read(&mut self, _: SocketAddr, _: Text<'_>) -> Result<(Memory, Option<u64>), Refusal> {
        Ok((Memory::new(&self.0), Some(self.0.len() as u64)))
    }

    fn write(&mut self, _: SocketAddr, _: Text<'_>, _: Option<u64>) -> Result<Memory, Refusal> {
        Ok(Memory::new(&self.0))
    }
}

/// A file of `blocks` blocks of `blksize` (the last one short) in octet mode; in netascii,
/// text whose lines end in LF, with a lone CR now and then, so that the encoding changes
/// every block's length and carries pairs across block boundaries.
fn file(mode: Mode, blksize: usize, blocks: usize) -> Rc<[u8]> {
    let len = blocks * blksize - 1;
    let bytes: Vec<u8> = match mode {
        Mode::Netascii => {
            let line = b"a line of text, then its end\nand a lone\rcarriage return\n";
            // Text whose encoding (LF and CR take two bytes each on the wire) is `len`
            // bytes long, give or take one.
            let mut wire = 0;
            line.iter()
                .copied()
                .cycle()
                .take_while(|&b| {
                    wire += if matches!(b, b'\n' | b'\r') { 2 } else { 1 };
                    wire <= len
                })
                .collect()
        }
        _ => (0..len).map(|i| (i * 31 + i / 977) as u8).collect(),
    };
    bytes.into()
}

// ----------------------------------------------------------------------------- the run

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
const CLIENT: SocketAddr = SocketAddr::new(LOCALHOST, 4000);
const SERVER: SocketAddr = SocketAddr::new(LOCALHOST, 69);
/// Where a transfer's own port answers from, in [`PortMode::PerTransfer`].
const SERVER_TRANSFER: SocketAddr = SocketAddr::new(LOCALHOST, 1069);

/// Blocks from which the counting starts: the handshake, the first windows and the
/// sender's first sizing of its window are over by then.
const FROM_BLOCK: u64 = 100;
const BLOCKS: usize = 10_000;

#[derive(Clone, Copy, Debug)]
struct Case {
    direction: Direction,
    mode: Mode,
    blksize: u16,
    windowsize: u16,
    ports: PortMode,
    /// Every this many datagrams, one is lost (either way): the retransmission paths run.
    lose_every: Option<u64>,
}

/// What a run counted.
#[derive(Debug)]
struct Budget {
    /// Allocations by the client and by the server from block [`FROM_BLOCK`] to a few
    /// blocks before the end.
    during: [u64; 2],
    /// Blocks that span covered.
    blocks: u64,
    /// Allocations by each side over the whole transfer, its start and end included.
    total: [u64; 2],
    /// Heap each side held in the middle of the transfer, in bytes.
    held: [i64; 2],
}

fn run(case: Case) -> Budget {
    let blksize = usize::from(case.blksize);
    let file = file(case.mode, blksize, BLOCKS);
    // Everything the harness needs, made before the transfer starts.
    let mut client_storage = Memory::new(&file);
    let (mut cbuf, mut sbuf, mut refusal) = (vec![0u8; 65_536], vec![0u8; 65_536], vec![0u8; 516]);
    let mut limits = Limits::default();
    limits.max_windowsize = Windowsize::MAX;
    let mut now = Instant::ZERO;
    let mut transfer_route: Option<Inbound> = None;
    let (mut client_done, mut server_done) = (None, None);
    let mut marks: Vec<(Counts, u64)> = Vec::with_capacity(4);
    let mut sent = 0u64;
    let mut lost = move || {
        sent += 1;
        case.lose_every.is_some_and(|n| sent.is_multiple_of(n))
    };
    // The block the counting stops at: the last window and the end are per-transfer work.
    let until_block = (file.len() / blksize) as u64 - 2 * u64::from(case.windowsize).max(4);

    let start = counts();
    let mut server = on(Side::Server, || {
        Endpoint::new(Serve(file.clone()), limits, case.ports)
    });
    let mut client = on(Side::Client, || {
        let mut request = ClientRequest::new(case.direction, "image.bin");
        request.mode = case.mode;
        request.blksize = Some(Blksize::new(case.blksize.into()).unwrap());
        request.windowsize = Some(Windowsize::new(case.windowsize.into()).unwrap());
        Transfer::client(now, SERVER, &request, Config::default()).unwrap()
    });

    loop {
        let mut moved = false;
        // The client's datagrams, to the server.
        while let Some(t) = on(Side::Client, || {
            client.poll_transmit(now, &mut client_storage, &mut cbuf)
        }) {
            moved = true;
            if lost() {
                continue;
            }
            let route = match (t.destination, transfer_route) {
                (SERVER_TRANSFER, Some(route)) => route,
                (SERVER, _) => Inbound::Listener(0),
                (other, _) => panic!("the client sent to {other}"),
            };
            let incoming = Incoming::new(route, CLIENT, None);
            let answer = on(Side::Server, || {
                server.handle(now, incoming, &cbuf[..t.len], &mut refusal)
            });
            assert!(answer.is_none(), "refused");
        }
        // The server's, to the client.
        while let Some(t) = on(Side::Server, || server.poll_transmit(now, &mut sbuf)) {
            moved = true;
            if lost() {
                continue;
            }
            assert_eq!(t.destination, CLIENT);
            let from = match t.route {
                Outbound::Transfer(id) => {
                    transfer_route = Some(Inbound::Transfer(id));
                    SERVER_TRANSFER
                }
                _ => SERVER,
            };
            on(Side::Client, || {
                client.handle_datagram(now, from, &sbuf[..t.len], &mut client_storage)
            });
        }
        on(Side::Server, || {
            while let Some(event) = server.poll_event() {
                match event {
                    EndpointEvent::Commit { id, mut storage } => {
                        let result = storage.commit();
                        server.committed(now, id, result);
                    }
                    EndpointEvent::Ended { report, .. } => server_done = Some(report.result),
                    _ => {}
                }
            }
        });
        on(Side::Client, || {
            while let Some(event) = client.poll_event() {
                if let TransferEvent::Finished { result, .. } = event {
                    client_done = Some(result);
                }
            }
        });
        moved |= on(Side::Client, || {
            client.flush_storage(now, &mut client_storage)
        });
        moved |= on(Side::Server, || server.flush_storage(now));

        let block = client.progress() / blksize as u64;
        let mark = match marks.len() {
            0 => block >= FROM_BLOCK,
            1 => block >= (FROM_BLOCK + until_block) / 2,
            2 => block >= until_block,
            _ => false,
        };
        if mark {
            marks.push((counts(), block));
        }
        if client.is_closed() && server.is_empty() {
            break;
        }
        if !moved {
            // Nothing in flight: jump the virtual clock to the next deadline.
            let next = [client.poll_timeout(), server.poll_timeout()]
                .into_iter()
                .flatten()
                .min()
                .expect("a transfer waits for nothing and yet is not over");
            now = now.max(next);
            on(Side::Client, || client.handle_timeout(now));
            on(Side::Server, || server.handle_timeout(now));
        }
        assert!(now < Instant::from_secs(600), "{case:?} stalled");
    }
    let end = counts();
    assert_eq!(client_done, Some(Ok(())), "{case:?}: the client's outcome");
    assert_eq!(server_done, Some(Ok(())), "{case:?}: the server's outcome");
    // The receiving side's storage checked every byte; it must also have had all of them.
    if case.direction == Direction::Read {
        assert_eq!(
            client_storage.written,
            file.len(),
            "{case:?}: bytes received"
        );
    }
    assert_eq!(
        marks.len(),
        3,
        "{case:?}: the transfer ended before block {until_block}"
    );
    let [(first, first_block), (middle, _), (last, last_block)] = [marks[0], marks[1], marks[2]];
    let side = |c: &Counts, s: Side| c.allocs[s as usize];
    Budget {
        during: [
            side(&last, Side::Client) - side(&first, Side::Client),
            side(&last, Side::Server) - side(&first, Side::Server),
        ],
        blocks: last_block - first_block,
        total: [
            side(&end, Side::Client) - side(&start, Side::Client),
            side(&end, Side::Server) - side(&start, Side::Server),
        ],
        held: [
            middle.live[Side::Client as usize] - start.live[Side::Client as usize],
            middle.live[Side::Server as usize] - start.live[Side::Server as usize],
        ],
    }
}

fn case(direction: Direction, mode: Mode, blksize: u16, windowsize: u16, ports: PortMode) -> Case {
    Case {
        direction,
        mode,
        blksize,
        windowsize,
        ports,
        lose_every: None,
    }
}

/// The cases a device meets: lock-step with the default block (U-Boot's default), and the
/// Ethernet-sized block with a window (what a fast fetch asks), each in both port modes.
fn octet_cases(direction: Direction) -> Vec<Case> {
    let mut cases = Vec::new();
    for ports in [PortMode::Single, PortMode::PerTransfer] {
        for (blksize, windowsize) in [(512, 1), (1468, 16)] {
            cases.push(case(direction, Mode::Octet, blksize, windowsize, ports));
        }
    }
    cases
}

fn check_octet(direction: Direction) {
    for case in octet_cases(direction) {
        let budget = run(case);
        eprintln!("{case:?}: {budget:?}");
        assert!(budget.blocks >= 9_000, "{case:?}: {budget:?}");
        assert_eq!(
            budget.during,
            [0, 0],
            "{case:?}: allocations (client, server) over {} blocks: {budget:?}",
            budget.blocks
        );
    }
}

#[test]
fn an_octet_download_allocates_nothing_per_block_on_either_side() {
    check_octet(Direction::Read);
}

#[test]
fn an_octet_upload_allocates_nothing_per_block_on_either_side() {
    check_octet(Direction::Write);
}

/// Loss costs no allocation either: a datagram in 97 lost, either way, so that windows are
/// resent on gaps and on timeouts, final ACKs are repeated, and the pacing reacts.
#[test]
fn loss_and_retransmission_allocate_nothing_either() {
    for direction in [Direction::Read, Direction::Write] {
        for (blksize, windowsize) in [(512, 1), (1468, 16)] {
            let case = Case {
                lose_every: Some(97),
                ..case(
                    direction,
                    Mode::Octet,
                    blksize,
                    windowsize,
                    PortMode::Single,
                )
            };
            let budget = run(case);
            eprintln!("{case:?}: {budget:?}");
            assert_eq!(budget.during, [0, 0], "{case:?}: {budget:?}");
        }
    }
}

#[test]
fn netascii_allocates_nothing_per_block_either() {
    for direction in [Direction::Read, Direction::Write] {
        for (blksize, windowsize) in [(512, 1), (1468, 16)] {
            let case = case(
                direction,
                Mode::Netascii,
                blksize,
                windowsize,
                PortMode::Single,
            );
            let budget = run(case);
            eprintln!("{case:?}: {budget:?}");
            assert!(budget.blocks >= 8_000, "{case:?}: {budget:?}");
            assert_eq!(budget.during, [0, 0], "{case:?}: {budget:?}");
        }
    }
}

/// The heap a transfer holds while it runs, per side, with the bounds the README promises.
/// The client's is its `Transfer`'s (the struct itself lives wherever the driver puts it:
/// `size_of::<Transfer>()` bytes more); the server's is what one transfer adds to an
/// endpoint that had none (its slot, its request, its OACK, its timer and routing entries,
/// and the endpoint's own tables, made at first use). `cargo test --test alloc_budget --
/// --nocapture heap` prints the figures.
#[test]
fn heap_held_per_transfer() {
    let mut worst = [0i64; 2];
    for direction in [Direction::Read, Direction::Write] {
        for mode in [Mode::Octet, Mode::Netascii] {
            for (blksize, windowsize) in [(512, 1), (1468, 16)] {
                let case = case(direction, mode, blksize, windowsize, PortMode::Single);
                let budget = run(case);
                eprintln!(
                    "heap: {direction:?} {mode:?} blksize {blksize} windowsize {windowsize}: \
                     client {} B, server {} B; allocations in the whole transfer: client {}, \
                     server {}",
                    budget.held[0], budget.held[1], budget.total[0], budget.total[1]
                );
                worst = [worst[0].max(budget.held[0]), worst[1].max(budget.held[1])];
            }
        }
    }
    eprintln!(
        "heap: size_of::<Transfer>() = {} B; most held: client {} B, server {} B",
        std::mem::size_of::<Transfer>(),
        worst[0],
        worst[1]
    );
    // The README's figures, with room: a change that takes them past these is worth a look.
    assert!(worst[0] <= 4 * 1024, "client holds {} B", worst[0]);
    assert!(worst[1] <= 8 * 1024, "server holds {} B", worst[1]);
}

/// What each further transfer costs a server that runs many: 64 downloads under way at
/// once, in the endpoint's heap, divided by 64.
#[test]
fn heap_per_transfer_of_a_busy_server() {
    for mode in [Mode::Octet, Mode::Netascii] {
        let file = file(mode, 1468, 100);
        let mut buf = vec![0u8; 65_536];
        let mut limits = Limits::default();
        limits.max_unanswered_per_address = 64;
        let mut server = on(Side::Server, || {
            Endpoint::new(Serve(file.clone()), limits, PortMode::Single)
        });
        let mut request = ClientRequest::new(Direction::Read, "image.bin");
        request.mode = mode;
        request.blksize = Some(Blksize::new(1468).unwrap());
        request.windowsize = Some(Windowsize::new(16).unwrap());
        let clients: Vec<SocketAddr> = (0..64)
            .map(|i| SocketAddr::new(CLIENT.ip(), 5000 + i))
            .collect();
        let rrq = {
            let mut asking =
                Transfer::client(Instant::ZERO, SERVER, &request, Config::default()).unwrap();
            let t = asking
                .poll_transmit(Instant::ZERO, &mut Vec::new(), &mut buf)
                .unwrap();
            buf[..t.len].to_vec()
        };
        let mut refusal = vec![0u8; 516];
        let now = Instant::from_millis(1);
        let before = counts();
        on(Side::Server, || {
            for &source in &clients {
                let incoming = Incoming::new(Inbound::Listener(0), source, None);
                assert!(server.handle(now, incoming, &rrq, &mut refusal).is_none());
            }
            while server.poll_transmit(now, &mut buf).is_some() {}
            // Each client takes the OACK with ACK 0: every transfer sends its first window.
            for &source in &clients {
                let incoming = Incoming::new(Inbound::Listener(0), source, None);
                assert!(
                    server
                        .handle(now, incoming, &[0, 4, 0, 0], &mut refusal)
                        .is_none()
                );
            }
            while server.poll_transmit(now, &mut buf).is_some() {}
            while server.poll_event().is_some() {}
        });
        assert_eq!(server.len(), 64);
        let held = counts().live[Side::Server as usize] - before.live[Side::Server as usize];
        eprintln!(
            "heap: a server running 64 {mode:?} downloads holds {held} B, {} B each",
            held / 64
        );
        // The README's figures (1.6 KB, 3.9 KB in netascii), with room.
        assert!(
            held / 64 <= 6 * 1024,
            "{mode:?}: {} B per transfer",
            held / 64
        );
    }
}

/// The counter counts: a sanity check that an allocation inside `on` is seen and charged.
#[test]
fn the_counter_sees_allocations() {
    let before = counts();
    let v = on(Side::Client, || vec![1u8; 100]);
    let after = counts();
    assert_eq!(after.allocs[0] - before.allocs[0], 1);
    assert_eq!(after.live[0] - before.live[0], 100);
    drop(v);
}
