//! A TFTP server on tokio: the same `Endpoint` the std server runs, driven by a tokio
//! `UdpSocket` in single-port mode, serving files held in memory and taking uploads into
//! memory. Uploads are committed on tokio's blocking pool, off the loop, as a real store
//! (fsync, rename, a database) would need.
//!
//! ```sh
//! cargo run --example tokio_server --features tokio -- 127.0.0.1:6969 README.md Cargo.toml
//! curl -o readme.txt tftp://127.0.0.1:6969/README.md
//! curl -T notes.txt tftp://127.0.0.1:6969/notes.txt
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;
use wirekit::tftp::server::{
    Endpoint, EndpointEvent, Inbound, Incoming, Limits, Policy, PortMode, Refusal, TransferId,
};
use wirekit::tftp::{self, ErrorCode, Storage, StorageError, Text};

/// The files served, by name.
pub type Files = Arc<Mutex<HashMap<Vec<u8>, Arc<[u8]>>>>;

/// Serves `files` and stores uploads into it.
#[derive(Clone)]
pub struct Memory(pub Files);

/// A file being sent, or one being received (it joins the files when committed).
pub enum MemoryFile {
    /// Shared with the map: sending copies nothing up front.
    Read(Arc<[u8]>),
    /// Bytes so far, and where they go.
    Write {
        /// The upload's name.
        name: Vec<u8>,
        /// Its bytes.
        data: Vec<u8>,
        /// The map it joins.
        files: Files,
    },
}

impl Storage for MemoryFile {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, StorageError> {
        match self {
            MemoryFile::Read(file) => file.read_at(offset, buf),
            MemoryFile::Write { .. } => Err(StorageError::write_only()),
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), StorageError> {
        match self {
            MemoryFile::Write { data, .. } => data.write(bytes),
            MemoryFile::Read(_) => Err(StorageError::read_only()),
        }
    }

    fn commit(&mut self) -> Result<(), StorageError> {
        if let MemoryFile::Write { name, data, files } = self {
            let mut files = files
                .lock()
                .map_err(|_| StorageError::new(ErrorCode::NotDefined, "file table poisoned"))?;
            files.insert(std::mem::take(name), std::mem::take(data).into());
        }
        Ok(())
    }
}

impl Policy for Memory {
    type Storage = MemoryFile;

    fn read(
        &mut self,
        _: SocketAddr,
        name: Text<'_>,
    ) -> Result<(MemoryFile, Option<u64>), Refusal> {
        let files = self.0.lock().map_err(|_| busy())?;
        let file = files.get(name.as_bytes()).cloned().ok_or_else(|| {
            Refusal::new(
                ErrorCode::FileNotFound,
                ErrorCode::FileNotFound.description(),
            )
        })?;
        let size = file.len() as u64;
        Ok((MemoryFile::Read(file), Some(size)))
    }

    fn write(
        &mut self,
        _: SocketAddr,
        name: Text<'_>,
        _: Option<u64>,
    ) -> Result<MemoryFile, Refusal> {
        Ok(MemoryFile::Write {
            name: name.as_bytes().to_vec(),
            data: Vec::new(),
            files: self.0.clone(),
        })
    }
}

fn busy() -> Refusal {
    Refusal::new(ErrorCode::NotDefined, "server busy")
}

/// Runs the server on `socket` until `stop` resolves, logging each transfer to `log`.
pub async fn serve(
    socket: UdpSocket,
    files: Files,
    stop: impl std::future::Future<Output = ()>,
    mut log: impl FnMut(String),
) -> std::io::Result<()> {
    let mut endpoint = Endpoint::new(Memory(files), Limits::default(), PortMode::Single);
    let epoch = Instant::now();
    let (committed, mut commits) =
        mpsc::unbounded_channel::<(TransferId, Result<(), StorageError>)>();
    let mut inbuf = vec![0u8; 65_536];
    let mut outbuf = vec![0u8; endpoint.max_datagram_len()];
    tokio::pin!(stop);
    // The machines' clock: the time since `epoch`.
    let clock = || tftp::Instant::from(epoch.elapsed());
    loop {
        let now = clock();
        while let Some(t) = endpoint.poll_transmit(now, &mut outbuf) {
            // A full socket buffer loses the datagram; the protocol retransmits it.
            let _ = socket.try_send_to(&outbuf[..t.len], t.destination);
        }
        while let Some(event) = endpoint.poll_event() {
            match event {
                EndpointEvent::Commit { id, mut storage } => {
                    let committed = committed.clone();
                    tokio::task::spawn_blocking(move || {
                        let _ = committed.send((id, storage.commit()));
                    });
                }
                EndpointEvent::Ended { report, .. } => log(report.to_string()),
                EndpointEvent::Refused { peer, refusal, .. } => {
                    log(format!("{peer} refused: {}", refusal.message))
                }
                _ => {}
            }
        }
        // Uploads write what they gathered (in memory here: nothing); a failed write leaves
        // an ERROR to send before waiting.
        if endpoint.flush_storage(now) {
            continue;
        }
        // Far away when nothing waits: the loop wakes for a datagram or a commit anyway.
        let deadline = endpoint
            .poll_timeout()
            .unwrap_or(now + Duration::from_secs(3600));
        tokio::select! {
            received = socket.recv_from(&mut inbuf) => {
                let (n, source) = received?;
                let incoming = Incoming::new(Inbound::Listener(0), source, None);
                if let Some(t) = endpoint.handle(clock(), incoming, &inbuf[..n], &mut outbuf) {
                    let _ = socket.try_send_to(&outbuf[..t.len], t.destination);
                }
            }
            Some((id, result)) = commits.recv() => endpoint.committed(clock(), id, result),
            () = tokio::time::sleep_until(epoch + deadline.since_epoch()) => endpoint.handle_timeout(clock()),
            () = &mut stop => return Ok(()),
        }
    }
}

/// Loads the named files into memory.
pub fn load(paths: &[String]) -> std::io::Result<Files> {
    let mut files = HashMap::new();
    for path in paths {
        let name = std::path::Path::new(path).file_name().map_or_else(
            || path.as_bytes().to_vec(),
            |n| n.as_encoded_bytes().to_vec(),
        );
        files.insert(name, std::fs::read(path)?.into());
    }
    Ok(Arc::new(Mutex::new(files)))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((listen, paths)) = args.split_first() else {
        eprintln!("usage: tokio_server ADDR:PORT [FILE...]");
        std::process::exit(2);
    };
    let socket = UdpSocket::bind(listen.as_str()).await?;
    println!("serving {} files on {}", paths.len(), socket.local_addr()?);
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    serve(socket, load(paths)?, stop, |line| eprintln!("{line}")).await
}
