//! Scratch directories and file contents: temporary directories that clean up after
//! themselves, deterministic bytes and text, listings, and comparisons that fail short.

use std::env;
use std::fs;
use std::ops::Deref;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The file sizes every peer is tried with: empty, one byte, around one 512-byte block,
/// and 1 MiB.
pub const SIZES: [usize; 6] = [0, 1, 511, 512, 513, 1 << 20];

/// More than 65535 blocks of 512 bytes, so the block number wraps past 65535.
pub const WRAP_SIZE: usize = 512 * 70_000 + 123;

/// A directory of its own for one test, removed with everything in it when dropped.
/// It derefs to its [`Path`].
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates `wirekit-test-<tag>-<pid>-<n>` in the system temp directory.
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let path = env::temp_dir().join(format!("wirekit-test-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create temp dir");
        // in.tftpd drops to its user; the directory must stay usable for it.
        let _ = fs::set_permissions(&path, fs::Permissions::from_mode(0o777));
        TempDir(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Keeps the directory (it is not removed) and returns its path.
    pub fn keep(self) -> PathBuf {
        let path = self.0.clone();
        std::mem::forget(self);
        path
    }
}

impl Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for TempDir {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Pseudo-random bytes (xorshift64*), the same for the same seed.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Text with LF line ends, lines of varying length (some empty), `len` bytes, so that
/// netascii's CR LF expansion crosses block boundaries.
pub fn text_lf(len: usize) -> Vec<u8> {
    let words = [
        "wirekit",
        "tftp",
        "netascii",
        "line",
        "",
        "block",
        "CR LF",
        "0123456789",
    ];
    let mut out = Vec::with_capacity(len + 64);
    let mut i = 0usize;
    while out.len() < len {
        for _ in 0..(i % 7) {
            out.extend_from_slice(words[(i * 5 + out.len()) % words.len()].as_bytes());
            out.push(b' ');
        }
        out.push(b'\n');
        i += 1;
    }
    out.truncate(len);
    out
}

/// Writes one random file per [`SIZES`] entry into `dir`, named `f<size>.bin`; returns
/// the names and contents.
pub fn sized_files(dir: &Path, seed: u64) -> Vec<(String, Vec<u8>)> {
    SIZES
        .iter()
        .map(|&n| {
            let name = format!("f{n}.bin");
            let data = random_bytes(n, n as u64 + seed);
            fs::write(dir.join(&name), &data).unwrap();
            (name, data)
        })
        .collect()
}

/// Names in `dir`, sorted.
pub fn list(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|r| {
            r.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Every name under `dir`, recursively, relative, sorted.
pub fn list_tree(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        if let Ok(rd) = fs::read_dir(dir) {
            for e in rd.flatten() {
                let p = e.path();
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    walk(base, &p, out);
                }
            }
        }
    }
    let mut v = Vec::new();
    walk(dir, dir, &mut v);
    v.sort();
    v
}

/// Names of temporary upload/download files left in `dir` (recursively).
pub fn part_files(dir: &Path) -> Vec<String> {
    list_tree(dir)
        .into_iter()
        .filter(|n| n.ends_with(".wirekit-part"))
        .collect()
}

/// Asserts two file contents are equal, with a short message instead of megabytes of
/// bytes when they differ.
pub fn assert_same(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let first = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: got {} bytes, want {} bytes, first difference at {first:?}",
            got.len(),
            want.len()
        );
    }
}

/// Reads a file a peer wrote, failing with its path when it is not there.
pub fn read(path: &Path) -> Vec<u8> {
    fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}
