//! What the two smoltcp examples share, as smoltcp's own examples share their `utils.rs`:
//! smoltcp's command-line options (`--tap`, `--drop-chance`, `--corrupt-chance`, `--seed`),
//! the interface on a TAP device, the clock, and the one piece of glue between a machine
//! and a smoltcp UDP socket (the [`Outbox`]).
#![allow(dead_code)] // each example uses most of it, not all

use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{FaultInjector, Medium, TunTapInterface};
use smoltcp::socket::udp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, IpCidr, IpEndpoint};
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use wirekit::tftp;

/// smoltcp's example options, and what they mean here.
#[derive(Clone, Debug)]
pub struct NetOptions {
    /// The TAP device to attach to (`--tap tap0`).
    pub tap: String,
    /// This stack's address (`--address`), 192.168.69.1/24 unless told: the one smoltcp's
    /// examples use, with the host's side of the TAP at 192.168.69.100.
    pub address: IpCidr,
    /// Percent of frames dropped, each way (`--drop-chance`).
    pub drop_chance: u8,
    /// Percent of frames with a bit flipped, each way (`--corrupt-chance`): the UDP
    /// checksum catches them, and the stack drops them.
    pub corrupt_chance: u8,
    /// Seeds the fault injector and the interface (`--seed`); the time by default.
    pub seed: u32,
}

/// The usage lines of [`NetOptions`].
pub const NET_USAGE: &str = "  --tap NAME             the TAP device (required)
  --address CIDR         this stack's address [192.168.69.1/24]
  --drop-chance PCT      drop this percentage of frames, each way [0]
  --corrupt-chance PCT   corrupt this percentage of frames, each way [0]
  --seed N               seed of the faults [the time]";

impl NetOptions {
    /// Takes smoltcp's options out of `args`, leaving the others.
    pub fn take(args: &mut Vec<String>) -> Result<NetOptions, String> {
        let tap = take_value(args, "--tap")?.ok_or("--tap NAME is required")?;
        let address = match take_value(args, "--address")? {
            Some(a) => a
                .parse()
                .map_err(|_| format!("--address {a}: not an address/prefix"))?,
            None => IpCidr::new(std::net::Ipv4Addr::new(192, 168, 69, 1).into(), 24),
        };
        let seed = match take_value(args, "--seed")? {
            Some(s) => s.parse().map_err(|_| format!("--seed {s}: not a number"))?,
            None => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.subsec_nanos()),
        };
        Ok(NetOptions {
            tap,
            address,
            drop_chance: take_number(args, "--drop-chance", 0, 100)?.unwrap_or(0),
            corrupt_chance: take_number(args, "--corrupt-chance", 0, 100)?.unwrap_or(0),
            seed,
        })
    }
}

/// Removes `--name VALUE` (or `--name=VALUE`) from `args` and returns the value.
pub fn take_value(args: &mut Vec<String>, name: &str) -> Result<Option<String>, String> {
    let Some(i) = args
        .iter()
        .position(|a| a == name || a.starts_with(&format!("{name}=")))
    else {
        return Ok(None);
    };
    let arg = args.remove(i);
    match arg.split_once('=') {
        Some((_, value)) => Ok(Some(value.to_string())),
        None if i < args.len() => Ok(Some(args.remove(i))),
        None => Err(format!("{name} needs a value")),
    }
}

/// Removes `--name N` from `args`, `N` within `min..=max`.
pub fn take_number<T: TryFrom<u64>>(
    args: &mut Vec<String>,
    name: &str,
    min: u64,
    max: u64,
) -> Result<Option<T>, String> {
    let Some(value) = take_value(args, name)? else {
        return Ok(None);
    };
    value
        .parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .and_then(|n| T::try_from(n).ok())
        .map(Some)
        .ok_or_else(|| format!("{name} {value}: a number from {min} to {max}"))
}

/// Removes the flag `--name` from `args`; true if it was there.
pub fn take_flag(args: &mut Vec<String>, name: &str) -> bool {
    let before = args.len();
    args.retain(|a| a != name);
    args.len() != before
}

/// The device: smoltcp's TAP interface behind its fault injector, which passes every frame
/// while both chances are 0 (smoltcp's examples stack their middleware the same way). On a
/// board, this is the Ethernet driver's `Device`.
pub type Tap = FaultInjector<TunTapInterface>;

/// One network interface on a TAP device: what a board has once its Ethernet driver is up.
pub struct Net {
    /// The device, to hand to `Interface::poll`.
    pub device: Tap,
    /// smoltcp's interface, with its address.
    pub iface: Interface,
    /// The TAP's descriptor, to sleep on until a frame or a deadline.
    pub fd: RawFd,
    /// The driver's clock.
    pub clock: Clock,
}

impl Net {
    /// Attaches to the TAP device and brings the interface up with `opts.address`.
    pub fn open(opts: &NetOptions) -> io::Result<Net> {
        let tap = TunTapInterface::new(&opts.tap, Medium::Ethernet)?;
        let fd = tap.as_raw_fd();
        let mut device = FaultInjector::new(tap, opts.seed);
        device.set_drop_chance(opts.drop_chance);
        device.set_corrupt_chance(opts.corrupt_chance);
        let clock = Clock::start();
        let mut config = Config::new(EthernetAddress([0x02, 0x00, 0x00, 0x00, 0x00, 0x01]).into());
        config.random_seed = u64::from(opts.seed);
        let mut iface = Interface::new(config, &mut device, clock.now());
        iface.update_ip_addrs(|addrs| {
            addrs
                .push(opts.address)
                .expect("an interface has room for one address");
        });
        Ok(Net {
            device,
            iface,
            fd,
            clock,
        })
    }

    /// The largest UDP payload one frame carries: smoltcp here has no IP fragmentation (its
    /// `proto-ipv4-fragmentation` is off, as on most boards), so a TFTP block must fit in
    /// what is left of the MTU after the IPv4 and UDP headers: 1472 bytes on Ethernet,
    /// blksize 1468.
    pub fn max_udp_payload(&mut self) -> usize {
        use smoltcp::phy::Device;
        self.device.capabilities().ip_mtu() - 20 - 8
    }

    /// Sleeps until a frame arrives or `delay` has passed (`None`: until a frame).
    pub fn wait(&self, delay: Option<smoltcp::time::Duration>) -> io::Result<()> {
        smoltcp::phy::wait(self.fd, delay)
    }
}

/// The driver's one clock. smoltcp's `Instant::now()` reads the wall clock, which can step;
/// this one counts from its start on a monotonic clock, as a board counts its timer ticks
/// (`Instant::from_millis(ticks)`). The interface and the machines read the same instant.
pub struct Clock(std::time::Instant);

impl Clock {
    /// A clock at zero.
    pub fn start() -> Clock {
        Clock(std::time::Instant::now())
    }

    /// Now, in smoltcp's type.
    pub fn now(&self) -> Instant {
        Instant::from_micros(i64::try_from(self.0.elapsed().as_micros()).unwrap_or(i64::MAX))
    }
}

/// smoltcp's instant as the machines' time: the same microseconds since the same zero.
pub fn machine_time(t: Instant) -> tftp::Instant {
    tftp::Instant::from_micros(u64::try_from(t.total_micros()).unwrap_or(0))
}

/// How long the driver may sleep: until smoltcp's next deadline (a datagram queued, an
/// ARP retry) or the machine's `deadline`, whichever comes first.
pub fn delay(
    iface: &mut Interface,
    sockets: &SocketSet<'_>,
    now: Instant,
    deadline: Option<tftp::Instant>,
) -> Option<smoltcp::time::Duration> {
    let machine = deadline.map(|d| {
        let left = d.duration_since(machine_time(now));
        smoltcp::time::Duration::from_micros(u64::try_from(left.as_micros()).unwrap_or(u64::MAX))
    });
    match (iface.poll_delay(now, sockets), machine) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A UDP socket ring that holds `datagrams` datagrams of up to `max_len` bytes each.
///
/// smoltcp keeps a socket's datagrams in two rings: one slot each in the metadata ring,
/// and their bytes, each datagram contiguous, in the payload ring. A datagram that does
/// not fit before the end of the payload ring goes to its start and leaves the end as
/// padding, so the payload ring gets one datagram's room more than it is to hold.
pub fn ring(datagrams: usize, max_len: usize) -> udp::PacketBuffer<'static> {
    udp::PacketBuffer::new(
        vec![udp::PacketMetadata::EMPTY; datagrams],
        vec![0; (datagrams + 1) * max_len],
    )
}

/// Carries a machine's datagrams into a smoltcp UDP socket.
///
/// The machine writes each datagram into this buffer (`poll_transmit`), and it is copied
/// into the socket's transmit ring, which the next `Interface::poll` sends. A datagram the
/// ring has no room for cannot be given back to the machine: it waits here, and goes first
/// once a poll has made room, before the machine is asked for more.
pub struct Outbox {
    buf: Vec<u8>,
    held: Option<(usize, IpEndpoint)>,
}

impl Outbox {
    /// An outbox for datagrams of up to `max_len` bytes: the machine's `max_datagram_len`.
    pub fn new(max_len: usize) -> Outbox {
        Outbox {
            buf: vec![0; max_len],
            held: None,
        }
    }

    /// Moves datagrams from `next` (a machine's `poll_transmit`: the length and destination
    /// of what it wrote into the buffer) into `socket` while its ring has room. Returns
    /// whether any went in.
    pub fn fill(
        &mut self,
        socket: &mut udp::Socket<'_>,
        mut next: impl FnMut(&mut [u8]) -> Option<(usize, SocketAddr)>,
    ) -> bool {
        let mut queued = false;
        loop {
            let (len, to) = match self.held.take() {
                Some(held) => held,
                None => match next(&mut self.buf) {
                    Some((len, SocketAddr::V4(to))) => (len, to.into()),
                    // This stack speaks IPv4 only (smoltcp's proto-ipv6 is off), and the
                    // machines only answer the addresses they heard from.
                    Some((_, SocketAddr::V6(_))) => continue,
                    None => return queued,
                },
            };
            match socket.send_slice(&self.buf[..len], to) {
                Ok(()) => queued = true,
                Err(udp::SendError::BufferFull) => {
                    self.held = Some((len, to));
                    return queued;
                }
                // Port 0 or an unspecified address: no such peer, and nothing to send.
                Err(udp::SendError::Unaddressable) => {}
            }
        }
    }

    /// True while a datagram waits for room.
    pub fn is_holding(&self) -> bool {
        self.held.is_some()
    }
}
