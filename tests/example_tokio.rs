//! `examples/tokio_server.rs`: the endpoint on a tokio socket, checked with real clients
//! (curl and tftp-hpa's `tftp`) fetching and uploading over loopback.
#![cfg(feature = "tokio")]
#![allow(dead_code)]

mod common;

#[path = "../examples/tokio_server.rs"]
mod tokio_server;

use std::net::SocketAddr;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::thread;

use tokio::sync::oneshot;

struct Running {
    addr: SocketAddr,
    files: tokio_server::Files,
    log: Arc<Mutex<Vec<String>>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<std::io::Result<()>>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            t.join().unwrap().unwrap();
        }
    }
}

fn start(files: &[(&str, Vec<u8>)]) -> Running {
    let map = files
        .iter()
        .map(|(n, c)| (n.as_bytes().to_vec(), c.clone().into()))
        .collect();
    let files: tokio_server::Files = Arc::new(Mutex::new(map));
    let log = Arc::new(Mutex::new(Vec::new()));
    let (stop, stopped) = oneshot::channel::<()>();
    let (ready, bound) = std::sync::mpsc::channel();
    let (served, lines) = (files.clone(), log.clone());
    let thread = thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
            ready.send(socket.local_addr()?).unwrap();
            let stop = async {
                let _ = stopped.await;
            };
            tokio_server::serve(socket, served, stop, move |l| lines.lock().unwrap().push(l)).await
        })
    });
    Running {
        addr: bound.recv().unwrap(),
        files,
        log,
        stop: Some(stop),
        thread: Some(thread),
    }
}

#[test]
fn curl_gets_and_puts_through_the_tokio_server() {
    if !common::have_peer("curl") {
        return;
    }
    let image = common::content(300_000, 7);
    let server = start(&[("image.bin", image.clone())]);
    let dir = common::tempdir("tokio-curl");
    let got = dir.join("got.bin");
    let status = Command::new("curl")
        .args(["-sS", "--tftp-blksize", "1468", "-o"])
        .arg(&got)
        .arg(format!("tftp://{}/image.bin", server.addr))
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read(&got).unwrap(), image);

    let upload = common::content(70_000, 9);
    let local = dir.join("up.bin");
    std::fs::write(&local, &upload).unwrap();
    let status = Command::new("curl")
        .args(["-sS", "-T"])
        .arg(&local)
        .arg(format!("tftp://{}/up.bin", server.addr))
        .status()
        .unwrap();
    assert!(status.success());
    // curl reports success only on the final ACK, which waits for the commit.
    let stored = server.files.lock().unwrap().get(&b"up.bin"[..]).cloned();
    assert_eq!(stored.as_deref(), Some(&upload[..]));

    let missing = Command::new("curl")
        .args(["-sS", "-o", "/dev/null"])
        .arg(format!("tftp://{}/nope", server.addr))
        .output()
        .unwrap();
    assert!(!missing.status.success());
    // The server logs a transfer when it has its client's last word, which may come
    // after curl has exited.
    let logged = || {
        let log = server.log.lock().unwrap().join("\n");
        log.contains("read \"image.bin\": 300000 bytes")
            && log.contains("write \"up.bin\": 70000 bytes")
            && log.contains("refused")
    };
    assert!(
        common::wait_until(std::time::Duration::from_secs(5), logged),
        "{:?}",
        server.log.lock().unwrap()
    );
}

#[test]
fn tftp_hpa_gets_through_the_tokio_server() {
    if !common::have_peer("tftp") {
        return;
    }
    let text = b"hello from tokio\n".repeat(1000);
    let server = start(&[("hello.txt", text.clone())]);
    let dir = common::tempdir("tokio-hpa");
    let got = dir.join("hello.txt");
    let output = Command::new("tftp")
        .args([
            &server.addr.ip().to_string(),
            &server.addr.port().to_string(),
        ])
        .args(["-m", "binary", "-c", "get", "hello.txt"])
        .arg(&got)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert_eq!(std::fs::read(&got).unwrap(), text);
}
