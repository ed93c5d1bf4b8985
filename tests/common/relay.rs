//! A lossy UDP relay on loopback: drops, duplicates, delays and reorders datagrams by a
//! seeded schedule, in both directions, and maps the server's transfer ports through.
//!
//! The client sends its request to [`Relay::addr`]. The relay forwards it to the server's
//! request port from an upstream socket of its own, one per client. Whatever the server
//! sends to that upstream socket, from any of its ports P, goes back to the client from a
//! relay socket that stands for P (one per client and P), so the client sees one transfer
//! ID per server port; what the client sends to that relay socket goes on to P.
//!
//! Every thread stops when the relay is dropped.

use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, HashMap};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::faults::{Faults, Rng};

/// Counters of what the relay did.
#[derive(Debug, Default)]
pub struct Counters {
    pub forwarded: AtomicU64,
    pub dropped: AtomicU64,
    pub duplicated: AtomicU64,
    pub reordered: AtomicU64,
}

struct Pending {
    due: Instant,
    seq: u64,
    socket: Arc<UdpSocket>,
    dest: SocketAddr,
    data: Vec<u8>,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.due, self.seq) == (o.due, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    // Reversed: the heap's top is the earliest due.
    fn cmp(&self, o: &Self) -> CmpOrdering {
        (o.due, o.seq).cmp(&(self.due, self.seq))
    }
}

struct Shared {
    faults: Faults,
    /// Requests (datagrams to the server's request port) always pass, faults or not.
    spare_requests: bool,
    server: SocketAddr,
    stop: AtomicBool,
    rng: Mutex<Rng>,
    seq: AtomicU64,
    queue: Mutex<BinaryHeap<Pending>>,
    wake: Condvar,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Upstream socket per client.
    upstream: Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>,
    /// Relay socket per (client, server port).
    mapped: Mutex<HashMap<(SocketAddr, u16), Arc<UdpSocket>>>,
    counters: Counters,
}

impl Shared {
    /// Sends `data` to `dest` from `socket`, through the fault schedule.
    fn relay(&self, socket: &Arc<UdpSocket>, dest: SocketAddr, data: &[u8]) {
        let f = if self.spare_requests && dest == self.server {
            Faults::default()
        } else {
            self.faults
        };
        let mut rng = self.rng.lock().unwrap();
        if rng.chance(f.loss) {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let copies = if rng.chance(f.dup) {
            self.counters.duplicated.fetch_add(1, Ordering::Relaxed);
            2
        } else {
            1
        };
        let now = Instant::now();
        let mut q = self.queue.lock().unwrap();
        for _ in 0..copies {
            let mut delay = f.delay + rng.up_to(f.jitter);
            if rng.chance(f.reorder) {
                self.counters.reordered.fetch_add(1, Ordering::Relaxed);
                delay += f.jitter * 4 + Duration::from_millis(1);
            }
            q.push(Pending {
                due: now + delay,
                seq: self.seq.fetch_add(1, Ordering::Relaxed),
                socket: socket.clone(),
                dest,
                data: data.to_vec(),
            });
        }
        drop(q);
        drop(rng);
        self.counters.forwarded.fetch_add(1, Ordering::Relaxed);
        self.wake.notify_one();
    }

    fn spawn(self: &Arc<Self>, name: &str, f: impl FnOnce(Arc<Shared>) + Send + 'static) {
        let me = self.clone();
        let h = thread::Builder::new()
            .name(name.into())
            .spawn(move || f(me))
            .expect("relay thread");
        self.threads.lock().unwrap().push(h);
    }
}

fn bind_local() -> Arc<UdpSocket> {
    let s = UdpSocket::bind("127.0.0.1:0").expect("relay bind");
    s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    Arc::new(s)
}

/// A running relay; dropping it stops every thread.
pub struct Relay {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Relay {
    /// Relays to the TFTP server whose request port is `server`, with faults decided by a
    /// generator seeded with `seed`.
    pub fn start(server: SocketAddr, faults: Faults, seed: u64) -> Relay {
        Relay::start_with(server, faults, seed, false)
    }

    /// Like [`Relay::start`], but requests to the server's request port always pass.
    pub fn sparing_requests(server: SocketAddr, faults: Faults, seed: u64) -> Relay {
        Relay::start_with(server, faults, seed, true)
    }

    fn start_with(server: SocketAddr, faults: Faults, seed: u64, spare_requests: bool) -> Relay {
        let front = bind_local();
        let addr = front.local_addr().unwrap();
        let shared = Arc::new(Shared {
            faults,
            spare_requests,
            server,
            stop: AtomicBool::new(false),
            rng: Mutex::new(Rng::new(seed)),
            seq: AtomicU64::new(0),
            queue: Mutex::new(BinaryHeap::new()),
            wake: Condvar::new(),
            threads: Mutex::new(Vec::new()),
            upstream: Mutex::new(HashMap::new()),
            mapped: Mutex::new(HashMap::new()),
            counters: Counters::default(),
        });
        shared.spawn("relay-deliver", deliver);
        shared.spawn("relay-front", move |s| front_loop(&s, &front));
        Relay { addr, shared }
    }

    /// Where clients send their requests.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the relay did so far.
    pub fn counters(&self) -> &Counters {
        &self.shared.counters
    }

    /// The server ports seen so far (the request port and transfer ports).
    pub fn server_ports(&self) -> Vec<u16> {
        let mut v: Vec<u16> = self
            .shared
            .mapped
            .lock()
            .unwrap()
            .keys()
            .map(|k| k.1)
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake.notify_all();
        loop {
            let Some(h) = self.shared.threads.lock().unwrap().pop() else {
                break;
            };
            let _ = h.join();
        }
    }
}

fn deliver(s: Arc<Shared>) {
    let mut q = s.queue.lock().unwrap();
    while !s.stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        let wait = match q.peek() {
            Some(p) if p.due <= now => {
                let p = q.pop().unwrap();
                drop(q);
                let _ = p.socket.send_to(&p.data, p.dest);
                q = s.queue.lock().unwrap();
                continue;
            }
            Some(p) => p.due - now,
            None => Duration::from_millis(20),
        };
        q = s.wake.wait_timeout(q, wait).unwrap().0;
    }
}

fn front_loop(s: &Arc<Shared>, front: &Arc<UdpSocket>) {
    let mut buf = vec![0u8; 65_536];
    while !s.stop.load(Ordering::SeqCst) {
        let Ok((n, client)) = front.recv_from(&mut buf) else {
            continue;
        };
        let up = {
            let mut map = s.upstream.lock().unwrap();
            if let Some(u) = map.get(&client) {
                u.clone()
            } else {
                let u = bind_local();
                map.insert(client, u.clone());
                let u2 = u.clone();
                s.spawn("relay-up", move |s| upstream_loop(&s, client, &u2));
                u
            }
        };
        s.relay(&up, s.server, &buf[..n]);
    }
}

/// Reads what the server sends to one client's upstream socket.
fn upstream_loop(s: &Arc<Shared>, client: SocketAddr, up: &Arc<UdpSocket>) {
    let mut buf = vec![0u8; 65_536];
    while !s.stop.load(Ordering::SeqCst) {
        let Ok((n, from)) = up.recv_from(&mut buf) else {
            continue;
        };
        if from.ip() != s.server.ip() {
            continue;
        }
        let port = from.port();
        let r = {
            let mut map = s.mapped.lock().unwrap();
            if let Some(r) = map.get(&(client, port)) {
                r.clone()
            } else {
                let r = bind_local();
                map.insert((client, port), r.clone());
                let (r2, up2) = (r.clone(), up.clone());
                s.spawn("relay-port", move |s| {
                    mapped_loop(&s, client, from, &r2, &up2)
                });
                r
            }
        };
        s.relay(&r, client, &buf[..n]);
    }
}

/// Reads what the client sends to the relay socket standing for server port `target`.
fn mapped_loop(
    s: &Arc<Shared>,
    client: SocketAddr,
    target: SocketAddr,
    r: &Arc<UdpSocket>,
    up: &Arc<UdpSocket>,
) {
    let mut buf = vec![0u8; 65_536];
    while !s.stop.load(Ordering::SeqCst) {
        let Ok((n, from)) = r.recv_from(&mut buf) else {
            continue;
        };
        if from == client {
            s.relay(up, target, &buf[..n]);
        }
    }
}
