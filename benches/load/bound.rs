//! The least a server can cost in the storm, run in the same storm for scale: one socket
//! that answers each ACK with the next block straight from memory, many ACKs read by one
//! `recvmmsg` and all the answers sent by one `sendmmsg`, and nothing else: no timers, no
//! file, no limits, no checks. What it spends is the kernel's work per datagram, which on
//! loopback includes the delivery into the client's socket. No server can spend less.

use std::mem::{size_of, zeroed};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rustix::time::{ClockId, clock_gettime};

/// Datagrams per system call, each way.
const BATCH: usize = 256;
const OACK: &[u8] = b"\0\x06blksize\x001468\0";

pub struct Bound {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: JoinHandle<f64>,
}

impl Bound {
    /// Serves `file` in blocks of `blksize` (which every client must ask for) on loopback.
    pub fn start(file: Arc<Vec<u8>>, blksize: usize) -> Bound {
        assert_eq!(blksize, 1468, "the OACK is written for 1468");
        assert!(file.len() / blksize < 65_535, "block numbers do not wrap");
        let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let addr = socket.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let cpu = || {
                let t = clock_gettime(ClockId::ThreadCPUTime);
                t.tv_sec as f64 + t.tv_nsec as f64 / 1e9
            };
            let started = cpu();
            let mut batch = Batch::new();
            while !stopping.load(Ordering::Relaxed) {
                batch.answer(&socket, &file, blksize);
            }
            cpu() - started
        });
        Bound { addr, stop, thread }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops it; returns the CPU seconds its thread spent.
    pub fn stop(self) -> f64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the bound server ran")
    }
}

/// The buffers of one `recvmmsg` and one `sendmmsg`. The message headers point into the
/// other fields, so a batch is boxed and its headers are set up anew for each call.
struct Batch {
    received: Box<[[u8; 600]; BATCH]>,
    from: Box<[libc::sockaddr_in; BATCH]>,
    to: Box<[libc::sockaddr_in; BATCH]>,
    headers: Box<[[u8; 4]; BATCH]>,
    recv_iov: Box<[libc::iovec; BATCH]>,
    send_iov: Box<[[libc::iovec; 2]; BATCH]>,
    recv_msgs: Box<[libc::mmsghdr; BATCH]>,
    send_msgs: Box<[libc::mmsghdr; BATCH]>,
}

impl Batch {
    fn new() -> Batch {
        // SAFETY: all of these are plain C structs and byte arrays, for which all zeroes
        // is a valid value.
        unsafe {
            Batch {
                received: Box::new(zeroed()),
                from: Box::new(zeroed()),
                to: Box::new(zeroed()),
                headers: Box::new(zeroed()),
                recv_iov: Box::new(zeroed()),
                send_iov: Box::new(zeroed()),
                recv_msgs: Box::new(zeroed()),
                send_msgs: Box::new(zeroed()),
            }
        }
    }

    /// Reads what ACKs and requests have come (waiting up to the socket's timeout for the
    /// first) and answers them all.
    fn answer(&mut self, socket: &UdpSocket, file: &[u8], blksize: usize) {
        for i in 0..BATCH {
            self.recv_iov[i] = libc::iovec {
                iov_base: self.received[i].as_mut_ptr().cast(),
                iov_len: self.received[i].len(),
            };
            let h = &mut self.recv_msgs[i].msg_hdr;
            h.msg_name = (&raw mut self.from[i]).cast();
            h.msg_namelen = size_of::<libc::sockaddr_in>() as u32;
            h.msg_iov = &raw mut self.recv_iov[i];
            h.msg_iovlen = 1;
        }
        // SAFETY: every header points at buffers of `self` that outlive the call, with
        // their true lengths.
        let n = unsafe {
            libc::recvmmsg(
                socket.as_raw_fd(),
                self.recv_msgs.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        let mut out = 0;
        for i in 0..usize::try_from(n).unwrap_or(0) {
            let got = &self.received[i][..self.recv_msgs[i].msg_len as usize];
            let (payload, header_len): (&[u8], usize) = match got {
                [0, 1, ..] => (OACK, 0),
                [0, 4, hi, lo] => {
                    let block = usize::from(u16::from_be_bytes([*hi, *lo])) + 1;
                    let start = (block - 1) * blksize;
                    if start > file.len() {
                        continue;
                    }
                    self.headers[out] = [0, 3, (block >> 8) as u8, block as u8];
                    (&file[start..(start + blksize).min(file.len())], 4)
                }
                _ => continue,
            };
            self.send_iov[out] = [
                libc::iovec {
                    iov_base: self.headers[out].as_mut_ptr().cast(),
                    iov_len: header_len,
                },
                libc::iovec {
                    iov_base: payload.as_ptr().cast_mut().cast(),
                    iov_len: payload.len(),
                },
            ];
            self.to[out] = self.from[i];
            let h = &mut self.send_msgs[out].msg_hdr;
            h.msg_name = (&raw mut self.to[out]).cast();
            h.msg_namelen = size_of::<libc::sockaddr_in>() as u32;
            h.msg_iov = self.send_iov[out].as_mut_ptr();
            h.msg_iovlen = 2;
            out += 1;
        }
        if out > 0 {
            // SAFETY: the first `out` headers point at buffers of `self` and at `file`,
            // all alive for the call; the kernel only reads them.
            unsafe {
                libc::sendmmsg(
                    socket.as_raw_fd(),
                    self.send_msgs.as_mut_ptr(),
                    out as u32,
                    0,
                );
            }
        }
    }
}
