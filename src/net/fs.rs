//! The served directory. Confinement holds by construction: every path is resolved by
//! `cap-std` relative to a handle on the root, which refuses `..`, absolute paths and
//! symlinks that lead outside it. The name checks below only give clearer errors.

use std::borrow::Cow;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, OpenOptions};

use crate::tftp::server::Refusal;
use crate::tftp::{ErrorCode, Storage, StorageError, Text};

/// Longest filename accepted, in bytes.
const MAX_NAME: usize = 1024;

/// A directory served over TFTP.
#[derive(Debug)]
pub struct Root {
    dir: Dir,
    path: PathBuf,
}

fn access(message: impl Into<Cow<'static, str>>) -> Refusal {
    Refusal::new(ErrorCode::AccessViolation, message)
}

/// A refusal whose message only names its code: the codec's default text, so that it
/// reads as other servers' does.
fn plain(code: ErrorCode) -> Refusal {
    Refusal::new(code, code.description())
}

fn refusal(e: &io::Error) -> Refusal {
    plain(match e.kind() {
        io::ErrorKind::NotFound => ErrorCode::FileNotFound,
        io::ErrorKind::AlreadyExists => ErrorCode::FileExists,
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => ErrorCode::DiskFull,
        // cap-std reports an escape from the root as PermissionDenied.
        _ => ErrorCode::AccessViolation,
    })
}

impl Root {
    /// Opens `path` as the served root.
    pub fn open(path: impl AsRef<Path>) -> io::Result<Root> {
        let path = path.as_ref();
        let dir = Dir::open_ambient_dir(path, ambient_authority())?;
        Ok(Root {
            dir,
            path: path.canonicalize().unwrap_or_else(|_| path.to_path_buf()),
        })
    }

    /// The root's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Turns a requested name into a relative path, or refuses it with ERROR 2.
    pub fn relative_path(name: Text<'_>) -> Result<PathBuf, Refusal> {
        let bytes = name.as_bytes();
        if bytes.is_empty() {
            return Err(access("empty filename"));
        }
        if bytes.len() > MAX_NAME {
            return Err(access("filename too long"));
        }
        if bytes.iter().any(|&b| b < 0x20 || b == 0x7f) {
            return Err(access("control character in filename"));
        }
        if bytes.contains(&b'\\') {
            return Err(access("backslash in filename"));
        }
        let path = bytes_to_path(bytes)?;
        for c in path.components() {
            match c {
                Component::Normal(_) | Component::CurDir => {}
                Component::ParentDir => return Err(access("'..' in filename")),
                Component::RootDir | Component::Prefix(_) => {
                    return Err(access("absolute filename"));
                }
            }
        }
        if path.file_name().is_none() {
            return Err(access("filename names no file"));
        }
        Ok(path)
    }

    /// Opens a file to send, with its size.
    pub fn open_read(&self, name: Text<'_>) -> Result<(std::fs::File, u64), Refusal> {
        let path = Self::relative_path(name)?;
        let file = self.dir.open(&path).map_err(|e| refusal(&e))?;
        let meta = file.metadata().map_err(|e| refusal(&e))?;
        if !meta.is_file() {
            return Err(access("not a regular file"));
        }
        Ok((file.into_std(), meta.len()))
    }

    /// Starts an upload: a new temporary file beside the target, put in place by
    /// [`Upload::commit`] and removed if dropped before.
    pub fn create_upload(
        &self,
        name: Text<'_>,
        overwrite: bool,
        max_size: Option<u64>,
    ) -> Result<Upload, Refusal> {
        let path = Self::relative_path(name)?;
        let (parent, file_name) = match (path.parent(), path.file_name()) {
            (Some(p), Some(f)) => (p, PathBuf::from(f)),
            _ => return Err(access("filename names no file")),
        };
        let dir = if parent.as_os_str().is_empty() {
            self.dir.try_clone()
        } else {
            self.dir.open_dir(parent)
        }
        .map_err(|e| refusal(&e))?;
        let exists = match dir.symlink_metadata(&file_name) {
            Ok(m) if m.is_dir() => return Err(access("a directory has that name")),
            Ok(_) if !overwrite => {
                return Err(plain(ErrorCode::FileExists));
            }
            Ok(m) if m.is_symlink() => return Err(access("will not overwrite a symlink")),
            Ok(_) => true,
            Err(_) => false,
        };
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = PathBuf::from(format!(
            ".{}.{}-{n}.wirekit-part",
            file_name.display(),
            std::process::id()
        ));
        let file = dir
            .open_with(&temp, OpenOptions::new().write(true).create_new(true))
            .map_err(|e| refusal(&e))?
            .into_std();
        Ok(Upload {
            dir,
            temp,
            target: file_name,
            file: Some(file),
            overwrite,
            exists,
            max_size,
            written: 0,
        })
    }
}

#[cfg(unix)]
fn bytes_to_path(bytes: &[u8]) -> Result<PathBuf, Refusal> {
    use std::os::unix::ffi::OsStrExt;
    Ok(PathBuf::from(std::ffi::OsStr::from_bytes(bytes)))
}

#[cfg(not(unix))]
fn bytes_to_path(bytes: &[u8]) -> Result<PathBuf, Refusal> {
    std::str::from_utf8(bytes)
        .map(PathBuf::from)
        .map_err(|_| access("filename is not UTF-8"))
}

/// A file being received into a temporary name beside its target.
#[derive(Debug)]
pub struct Upload {
    dir: Dir,
    temp: PathBuf,
    target: PathBuf,
    file: Option<std::fs::File>,
    overwrite: bool,
    exists: bool,
    max_size: Option<u64>,
    written: u64,
}

impl Upload {
    /// True when a file of the target's name existed when the upload began.
    pub fn replaces_existing(&self) -> bool {
        self.exists
    }

    /// Flushes the file to disk and puts it in place atomically. Without overwrite, a file
    /// that appeared meanwhile under the target name is left alone and this fails.
    pub fn commit(&mut self) -> io::Result<()> {
        if self.temp.as_os_str().is_empty() {
            return Err(io::Error::other("upload already committed"));
        }
        if let Some(f) = self.file.take() {
            f.sync_all()?;
        }
        if self.overwrite {
            self.dir.rename(&self.temp, &self.dir, &self.target)?;
        } else {
            // A hard link fails if the target exists, where a rename would replace it.
            self.dir.hard_link(&self.temp, &self.dir, &self.target)?;
            self.dir.remove_file(&self.temp)?;
        }
        self.temp = PathBuf::new();
        Ok(())
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        self.file = None;
        if !self.temp.as_os_str().is_empty() {
            let _ = self.dir.remove_file(&self.temp);
        }
    }
}

impl Storage for Upload {
    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        self.written += data.len() as u64;
        if let Some(max) = self.max_size.filter(|&m| self.written > m) {
            return Err(StorageError::new(
                ErrorCode::DiskFull,
                format!("upload exceeds the {max}-byte limit"),
            ));
        }
        match &mut self.file {
            Some(f) => Storage::write(f, data),
            None => Err(StorageError::new(
                ErrorCode::NotDefined,
                "upload already closed",
            )),
        }
    }
}
