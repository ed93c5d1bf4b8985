//! The served directory. Confinement holds by construction: every path is resolved by
//! `cap-std` relative to a handle on the root, which refuses `..`, absolute paths and
//! symlinks that lead outside it. The name checks in `names` only give clearer errors,
//! and keep names of files still being written from being served or replaced.
//!
//! No open on the server's path blocks: a file is looked at before it is opened, opened
//! non-blocking, and looked at again through its handle, so a FIFO or a device gets an
//! ERROR instead of stalling the request loop.

mod names;
mod sweep;
mod upload;

use std::io;
use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, Metadata, OpenOptions};

use crate::tftp::server::Refusal;
use crate::tftp::{ErrorCode, Text};
use names::access;
pub(crate) use names::check_name;
pub use upload::Upload;
use upload::UploadPlan;

/// How a [`Root`] treats the files it serves and the files its uploads create. The
/// default is the server without flags.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RootOptions {
    /// Permission bits of files that uploads create, e.g. `0o640`, set exactly (the
    /// process umask does not apply). `None` creates them as any program does: `0o666`
    /// less the umask. A replaced file keeps its own owner, group and permission bits.
    /// Bits above `0o777` (setuid, setgid, sticky) are ignored.
    pub create_mode: Option<u32>,
    /// Refuse (ERROR 2) to serve or replace a file with more than one hard link. A hard
    /// link placed inside the root to a file outside it is otherwise served like any
    /// other file: no path check can tell it apart.
    pub refuse_linked: bool,
    /// Refuse (ERROR 2) to serve or replace a file not owned by the server's effective
    /// user, as dnsmasq's `--tftp-secure` does. Useful when the server runs as its own
    /// user: files that someone else put or linked into the root are not served.
    pub owned_only: bool,
    /// Refuse (ERROR 2) names with a backslash or a leading `/`. By default a backslash
    /// is read as `/` and a leading `/` as the root, as boot firmware (PXE, Windows boot
    /// clients) and tftp-hpa's users expect; `..` is refused either way, and the path is
    /// resolved under the root all the same.
    pub strict_names: bool,
}

/// A directory served over TFTP.
#[derive(Debug)]
pub struct Root {
    dir: Dir,
    path: PathBuf,
    options: RootOptions,
}

/// A refusal whose message only names its code: the codec's default text, so that it
/// reads as other servers' does.
fn plain(code: ErrorCode) -> Refusal {
    Refusal::new(code, code.description())
}

/// The refusal for an OS error; the log keeps the OS's own words.
fn refusal(e: &io::Error) -> Refusal {
    refusal_of(e).with_detail(e.to_string())
}

fn refusal_of(e: &io::Error) -> Refusal {
    #[cfg(unix)]
    {
        use rustix::io::Errno;
        let errno = e.raw_os_error().map(Errno::from_raw_os_error);
        if errno == Some(Errno::NAMETOOLONG) {
            return access("filename too long for the file system");
        }
        // Out of descriptors is the server's trouble, not the client's fault: say busy.
        if matches!(errno, Some(Errno::MFILE | Errno::NFILE)) {
            return Refusal::new(ErrorCode::NotDefined, "server busy, try again later");
        }
    }
    plain(match e.kind() {
        io::ErrorKind::NotFound => ErrorCode::FileNotFound,
        io::ErrorKind::AlreadyExists => ErrorCode::FileExists,
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => ErrorCode::DiskFull,
        // cap-std reports an escape from the root as PermissionDenied.
        _ => ErrorCode::AccessViolation,
    })
}

/// Whether `options` let the server serve or replace the regular file `meta` describes.
fn check_file(options: &RootOptions, meta: &Metadata) -> Result<(), Refusal> {
    #[cfg(unix)]
    {
        use cap_std::fs::MetadataExt;
        if options.refuse_linked && meta.nlink() > 1 {
            return Err(access("file has more than one hard link"));
        }
        if options.owned_only && meta.uid() != rustix::process::geteuid().as_raw() {
            return Err(access("file is not owned by the server's user"));
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        // Link counts and owners are not looked at here: fail closed.
        let _ = meta;
        if options.refuse_linked || options.owned_only {
            return Err(access("link and owner checks need a unix system"));
        }
        Ok(())
    }
}

/// Whether an upload may replace the existing entry `meta`.
fn check_replaceable(options: &RootOptions, meta: &Metadata) -> Result<(), Refusal> {
    if meta.is_dir() {
        return Err(access("a directory has that name"));
    }
    if meta.is_symlink() {
        return Err(access("will not overwrite a symlink"));
    }
    if !meta.is_file() {
        return Err(access("not a regular file"));
    }
    check_file(options, meta)
}

impl Root {
    /// Opens `path` as the served root, with default [`RootOptions`].
    pub fn open(path: impl AsRef<Path>) -> io::Result<Root> {
        let path = path.as_ref();
        let dir = Dir::open_ambient_dir(path, ambient_authority())?;
        Ok(Root {
            dir,
            path: path.canonicalize().unwrap_or_else(|_| path.to_path_buf()),
            options: RootOptions::default(),
        })
    }

    /// Serves and creates files as `options` say.
    pub fn with_options(mut self, options: RootOptions) -> Root {
        self.options = options;
        self
    }

    /// The options in force.
    pub fn options(&self) -> RootOptions {
        self.options
    }

    /// The root's path, for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Turns a requested name into a relative path, or refuses it with ERROR 2: empty,
    /// too long, control characters, `..`, naming a directory (`name/`), or naming a file
    /// still being written (`*.wirekit-part`). Backslashes are read as `/` and a leading
    /// `/` as the root, or refused with [`RootOptions::strict_names`].
    pub fn relative_path(&self, name: Text<'_>) -> Result<PathBuf, Refusal> {
        names::relative_path(name, self.options.strict_names)
    }

    /// Removes what uploads of a server that died (killed, power lost) left in the root
    /// and its subdirectories, and returns how many files it removed. Only names of the
    /// server's temporary files that no running upload holds are touched; a download of
    /// `wirekit get` in progress is not. Best effort: what cannot be read is skipped.
    ///
    /// On Linux an upload's file has no name until it is complete (`O_TMPFILE`), so there
    /// is usually nothing to remove; elsewhere, and on file systems without `O_TMPFILE`,
    /// the file has a random hidden name until then.
    pub fn sweep(&self) -> usize {
        sweep::sweep(&self.dir, 0)
    }

    /// What keeps this process from serving the root: from listing it, and, when
    /// `uploads`, from creating files in it. Each problem says it with the OS error; call
    /// it after any change of user, since it asks as the process is now.
    pub fn access_problems(&self, uploads: bool) -> Vec<String> {
        let mut problems = Vec::new();
        if let Err(e) = self.dir.entries() {
            problems.push(format!("cannot read {}: {e}", self.path.display()));
        }
        #[cfg(unix)]
        if uploads {
            use rustix::fs::{Access, AtFlags, accessat};
            let write = Access::WRITE_OK | Access::EXEC_OK;
            if let Err(e) = accessat(&self.dir, ".", write, AtFlags::EACCESS) {
                let e = io::Error::from(e);
                problems.push(format!("cannot write {}: {e}", self.path.display()));
            }
        }
        problems
    }

    /// Why this process can open nothing under the root, if so: it may not search the
    /// directory (no execute permission on it), so every read and every upload would be
    /// refused. Unlike [`access_problems`](Self::access_problems), where part still works,
    /// a server in this state serves nothing. Like that one, it asks as the process is
    /// now: call it after any change of user.
    pub fn unusable(&self) -> Option<io::Error> {
        #[cfg(unix)]
        {
            use rustix::fs::{Access, AtFlags, accessat};
            match accessat(&self.dir, ".", Access::EXEC_OK, AtFlags::EACCESS) {
                Err(e) if matches!(e, rustix::io::Errno::ACCESS | rustix::io::Errno::PERM) => {
                    Some(e.into())
                }
                // Anything else says nothing about the permission: the requests will tell.
                _ => None,
            }
        }
        #[cfg(not(unix))]
        None
    }

    /// Opens a file to send, with its size. Anything but a regular file is refused with
    /// ERROR 2, without blocking.
    pub fn open_read(&self, name: Text<'_>) -> Result<(std::fs::File, u64), Refusal> {
        let path = self.relative_path(name)?;
        // Look before opening: open(2) of a FIFO blocks until a writer comes, and a
        // device may act on being opened.
        let meta = self.dir.metadata(&path).map_err(|e| refusal(&e))?;
        if !meta.is_file() {
            return Err(access("not a regular file"));
        }
        let file = self
            .dir
            .open_with(&path, &read_options())
            .map_err(|e| refusal(&e))?;
        // Look again through the handle: the name may have been swapped for a FIFO in
        // between (the non-blocking open returned at once either way).
        let meta = file.metadata().map_err(|e| refusal(&e))?;
        if !meta.is_file() {
            return Err(access("not a regular file"));
        }
        check_file(&self.options, &meta)?;
        let file = file.into_std();
        set_blocking(&file).map_err(|e| refusal(&e))?;
        Ok((file, meta.len()))
    }

    /// Starts an upload of `name`: a file nobody can see or open by name until
    /// [`Upload::commit`] puts it in place, removed if dropped before.
    ///
    /// `overwrite` lets it replace an existing regular file (otherwise ERROR 6), which
    /// keeps its owner, group and permission bits. It stores what it is given: the size
    /// rules (a limit, the client's tsize) are the endpoint's, which holds the transfer to
    /// them before a block reaches the upload.
    pub fn create_upload(&self, name: Text<'_>, overwrite: bool) -> Result<Upload, Refusal> {
        let path = self.relative_path(name)?;
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
        let existing = match dir.symlink_metadata(&file_name) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            // A name too long for the file system lands here, before any byte is taken.
            Err(e) => return Err(refusal(&e)),
        };
        if let Some(m) = &existing {
            if m.is_dir() {
                return Err(access("a directory has that name"));
            }
            if !overwrite {
                return Err(plain(ErrorCode::FileExists));
            }
            check_replaceable(&self.options, m)?;
        }
        let plan = UploadPlan {
            overwrite,
            options: self.options,
        };
        Upload::start(dir, file_name, existing.as_ref(), plan)
    }
}

/// Read-only, and on unix non-blocking and never taking a terminal as controlling tty.
fn read_options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.read(true);
    #[cfg(unix)]
    {
        use cap_std::fs::OpenOptionsExt;
        use rustix::fs::OFlags;
        o.custom_flags((OFlags::NONBLOCK | OFlags::NOCTTY).bits() as i32);
    }
    o
}

/// Clears `O_NONBLOCK` again, so the file reads like any other.
fn set_blocking(file: &std::fs::File) -> io::Result<()> {
    #[cfg(unix)]
    {
        use rustix::fs::{OFlags, fcntl_getfl, fcntl_setfl};
        let flags = fcntl_getfl(file)?;
        if flags.contains(OFlags::NONBLOCK) {
            fcntl_setfl(file, flags - OFlags::NONBLOCK)?;
        }
    }
    let _ = file;
    Ok(())
}
