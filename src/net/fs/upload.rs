//! An upload in progress: a file nobody can see until it is complete, then put in place
//! under its name in one step.

use std::fs::File;
use std::io;
use std::path::PathBuf;

use cap_std::fs::{Dir, Metadata, OpenOptions};

use super::super::write_batch::BatchedFile;
use super::names::{access, temp_name};
use super::{RootOptions, check_replaceable, refusal};
use crate::tftp::server::Refusal;
use crate::tftp::{ErrorCode, Storage, StorageError};

/// Tries at a fresh random name before giving up (a clash is all but impossible; a few
/// tries make it impossible in practice).
const NAME_TRIES: usize = 8;

/// What [`Root::create_upload`](super::Root::create_upload) settled for an upload.
pub(super) struct UploadPlan {
    pub(super) overwrite: bool,
    pub(super) options: RootOptions,
}

/// Where an upload's bytes are until they are in place.
#[derive(Debug)]
enum Temp {
    /// A Linux `O_TMPFILE` file: it has no name, nobody can open it, and it is gone with
    /// its last handle, even when the process is killed.
    #[cfg_attr(not(any(target_os = "linux", target_os = "android")), allow(dead_code))]
    Anonymous,
    /// A file under a random hidden name beside the target, removed on drop: where
    /// `O_TMPFILE` is not available.
    Named(PathBuf),
    /// In place under the target name.
    Placed,
}

/// A file being received, put in place by [`commit`](Upload::commit) and removed if
/// dropped before. It stores what it is given: whether the bytes are as many as the
/// client announced, and within the limit, is for the transfer to judge (the server's
/// endpoint holds uploads to those rules before a block gets here).
///
/// Until then its bytes are in a file without a name (Linux `O_TMPFILE`), or, where the
/// system or file system has none, under a random hidden name ending in `.wirekit-part`
/// that the server refuses to serve or accept. Either way no request can read the upload
/// in progress, replace it, or make it fail by creating its name first.
#[derive(Debug)]
pub struct Upload {
    /// The directory the target is in.
    dir: Dir,
    /// The target's name in `dir`.
    target: PathBuf,
    /// `None` once committed or closed.
    /// Written through a batch: small blocks are gathered.
    file: Option<BatchedFile>,
    temp: Temp,
    overwrite: bool,
    existed: bool,
    options: RootOptions,
}

impl Upload {
    /// Creates the temporary file for `target` in `dir`, with its final owner and mode
    /// already: a named temporary file is never more open than the file it becomes.
    pub(super) fn start(
        dir: Dir,
        target: PathBuf,
        existing: Option<&Metadata>,
        plan: UploadPlan,
    ) -> Result<Upload, Refusal> {
        let new_mode = plan.options.create_mode.map(|m| m & 0o777);
        let (file, temp) = create_temp(&dir, new_mode.unwrap_or(0o666)).map_err(|e| refusal(&e))?;
        // From here on, dropping `upload` removes what was created.
        let upload = Upload {
            dir,
            target,
            file: Some(BatchedFile::new(file, BatchedFile::UPLOAD)),
            temp,
            overwrite: plan.overwrite,
            existed: existing.is_some(),
            options: plan.options,
        };
        if let Some(file) = upload.file.as_ref().map(BatchedFile::get_ref) {
            hold(file);
            match (existing, new_mode) {
                (Some(meta), _) => take_owner_and_mode(file, meta).map_err(|e| {
                    if e.kind() == io::ErrorKind::PermissionDenied {
                        access("cannot keep the owner and group of the file to replace")
                    } else {
                        refusal(&e)
                    }
                })?,
                // Exactly the operator's mode: the umask applied at creation is undone.
                (None, Some(mode)) => set_mode(file, mode).map_err(|e| refusal(&e))?,
                (None, None) => {}
            }
        }
        Ok(upload)
    }

    /// True when a file of the target's name existed when the upload began.
    pub fn replaces_existing(&self) -> bool {
        self.existed
    }

    /// Flushes the file to disk and puts it in place under the target name, atomically.
    ///
    /// Fails, leaving nothing behind once the upload is dropped, when overwriting is off
    /// and a file of the target's name appeared meanwhile (`AlreadyExists`), or when the
    /// file to replace has become one the root refuses to replace. A replaced file's owner, group
    /// and permission bits, as they are now, carry over to the new one.
    pub fn commit(&mut self) -> io::Result<()> {
        if matches!(self.temp, Temp::Placed) {
            return Err(io::Error::other("upload already committed"));
        }
        let file = match &mut self.file {
            Some(f) => f.flushed().map_err(|e| {
                let kind = match e.code {
                    ErrorCode::DiskFull => io::ErrorKind::StorageFull,
                    _ => io::ErrorKind::Other,
                };
                io::Error::new(kind, e.message.into_owned())
            })?,
            None => return Err(io::Error::other("upload already closed")),
        };
        file.sync_all()?;
        if self.overwrite {
            match self.dir.symlink_metadata(&self.target) {
                Ok(meta) => {
                    check_replaceable(&self.options, &meta).map_err(|r| {
                        io::Error::new(io::ErrorKind::PermissionDenied, r.message.into_owned())
                    })?;
                    take_owner_and_mode(file, &meta)?;
                }
                // Gone meanwhile: the upload keeps the mode it was given at the start.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        match &self.temp {
            Temp::Anonymous => {
                #[cfg(any(target_os = "linux", target_os = "android"))]
                if self.overwrite {
                    // Linux cannot link a file over an existing name: link it under a
                    // temporary name, then rename that over the target.
                    let name = linux::link_temp(file, &self.dir)?;
                    self.temp = Temp::Named(name.clone());
                    self.dir.rename(&name, &self.dir, &self.target)?;
                } else {
                    // Fails if the name exists: a file that appeared meanwhile stays.
                    linux::link(file, &self.dir, &self.target)?;
                }
            }
            Temp::Named(name) if self.overwrite => {
                self.dir.rename(name, &self.dir, &self.target)?;
            }
            Temp::Named(name) => {
                // A hard link fails if the target exists, where a rename would replace it.
                self.dir.hard_link(name, &self.dir, &self.target)?;
                // Should this fail, the extra name is swept at the next start (nobody
                // holds it once the file is closed): the upload is in place either way.
                let _ = self.dir.remove_file(name);
            }
            Temp::Placed => {}
        }
        self.temp = Temp::Placed;
        self.file = None;
        Ok(())
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        // Closed first: some systems cannot remove an open file. An anonymous file is
        // freed by the kernel right here.
        self.file = None;
        if let Temp::Named(name) = &self.temp {
            let _ = self.dir.remove_file(name);
        }
    }
}

impl Storage for Upload {
    fn read_at(&mut self, _: u64, _: &mut [u8]) -> Result<usize, StorageError> {
        Err(StorageError::write_only())
    }

    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        match &mut self.file {
            Some(f) => f.write(data),
            None => Err(StorageError::new(
                ErrorCode::NotDefined,
                "upload already closed",
            )),
        }
    }

    fn flush(&mut self) -> Result<(), StorageError> {
        self.file.as_mut().map_or(Ok(()), Storage::flush)
    }
}

/// A new temporary file in `dir`, created with `mode` (less the umask).
fn create_temp(dir: &Dir, mode: u32) -> io::Result<(File, Temp)> {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Some(file) = linux::anonymous(dir, mode)? {
        return Ok((file, Temp::Anonymous));
    }
    create_named(dir, mode)
}

/// A new file under a fresh random name in `dir`. `create_new` (`O_EXCL`) never opens an
/// existing file nor follows a symlink planted under the name.
fn create_named(dir: &Dir, mode: u32) -> io::Result<(File, Temp)> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use cap_std::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    for _ in 0..NAME_TRIES {
        let name = PathBuf::from(temp_name());
        match dir.open_with(&name, &opts) {
            Ok(file) => return Ok((file.into_std(), Temp::Named(name))),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::other("no free temporary file name"))
}

/// Marks the file as held by a running upload: the sweep at a server's start removes
/// only temporary files that no process holds. The lock goes with the process, however
/// it ends. Best effort: a file system without locks still works.
fn hold(file: &File) {
    let _ = try_lock(file);
}

/// Takes `file`'s exclusive lock without waiting: `Some(false)` when another process holds
/// it, `None` where the system has no such locks.
pub(super) fn try_lock(file: &impl std::os::fd::AsFd) -> Option<bool> {
    #[cfg(all(
        unix,
        not(any(
            target_os = "espidf",
            target_os = "horizon",
            target_os = "solaris",
            target_os = "vita"
        ))
    ))]
    return Some(
        rustix::fs::flock(file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_ok(),
    );
    #[allow(unreachable_code)]
    {
        let _ = file;
        None
    }
}

/// Gives `file` the owner, group and permission bits of `meta`. Not the setuid, setgid
/// and sticky bits: uploaded bytes must not run with the old file's owner's rights.
#[cfg(unix)]
fn take_owner_and_mode(file: &File, meta: &Metadata) -> io::Result<()> {
    use cap_std::fs::MetadataExt as _;
    use rustix::fs::{Gid, Uid};
    use std::os::unix::fs::MetadataExt as _;
    let have = file.metadata()?;
    if (have.uid(), have.gid()) != (meta.uid(), meta.gid()) {
        rustix::fs::fchown(
            file,
            Some(Uid::from_raw(meta.uid())),
            Some(Gid::from_raw(meta.gid())),
        )?;
    }
    set_mode(file, meta.mode() & 0o777)
}

#[cfg(not(unix))]
fn take_owner_and_mode(_: &File, _: &Metadata) -> io::Result<()> {
    Ok(())
}

/// Sets the permission bits of `file` to exactly `mode`.
#[cfg(unix)]
fn set_mode(file: &File, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    if file.metadata()?.mode() & 0o7777 != mode {
        #[allow(clippy::unnecessary_cast)] // `RawMode` is u16 on some systems
        let mode = rustix::fs::Mode::from_raw_mode(mode as rustix::fs::RawMode);
        rustix::fs::fchmod(file, mode)?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn set_mode(_: &File, _: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(any(target_os = "linux", target_os = "android"))]
mod linux {
    use std::fs::File;
    use std::io;
    use std::path::{Path, PathBuf};

    use cap_std::fs::Dir;
    use rustix::fs::{AtFlags, Mode, OFlags};
    use rustix::io::Errno;
    use rustix::path::DecInt;

    use super::{NAME_TRIES, temp_name};

    /// An `O_TMPFILE` file in `dir`, or `None` where it cannot be had or not linked into
    /// place later.
    pub(super) fn anonymous(dir: &Dir, mode: u32) -> io::Result<Option<File>> {
        // Linking the file by its descriptor needs `/proc/self/fd` (or, without it,
        // CAP_DAC_READ_SEARCH): without procfs, fall back to a named file now rather
        // than fail at the end of the transfer.
        if rustix_linux_procfs::proc_self_fd().is_err() {
            return Ok(None);
        }
        // Not O_EXCL: that would make the file impossible to link.
        let flags = OFlags::WRONLY | OFlags::TMPFILE | OFlags::CLOEXEC;
        match rustix::fs::openat(dir, ".", flags, Mode::from_raw_mode(mode)) {
            Ok(fd) => Ok(Some(File::from(fd))),
            // The file system (or an old kernel, which takes the flag for O_DIRECTORY)
            // has no O_TMPFILE.
            Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::NOENT) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Gives the anonymous `file` the name `name` in `dir`; fails if the name exists.
    pub(super) fn link(file: &File, dir: &Dir, name: &Path) -> io::Result<()> {
        let fds = rustix_linux_procfs::proc_self_fd()?;
        rustix::fs::linkat(
            fds,
            DecInt::from_fd(file).as_c_str(),
            dir,
            name,
            AtFlags::SYMLINK_FOLLOW,
        )
        .map_err(Into::into)
    }

    /// Gives the anonymous `file` a fresh temporary name in `dir`, and returns it.
    pub(super) fn link_temp(file: &File, dir: &Dir) -> io::Result<PathBuf> {
        for _ in 0..NAME_TRIES {
            let name = PathBuf::from(temp_name());
            match link(file, dir, &name) {
                Ok(()) => return Ok(name),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Err(io::Error::other("no free temporary file name"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cap_std::ambient_authority;

    fn scratch(name: &str) -> (PathBuf, Dir) {
        let path =
            std::env::temp_dir().join(format!("wirekit-upload-unit-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        let dir = Dir::open_ambient_dir(&path, ambient_authority()).unwrap();
        (path, dir)
    }

    fn names(path: &std::path::Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    /// An upload through the named fallback, as on systems without `O_TMPFILE`.
    fn named_upload(dir: &Dir, target: &str, overwrite: bool) -> Upload {
        let (file, temp) = create_named(dir, 0o644).unwrap();
        hold(&file);
        Upload {
            dir: dir.try_clone().unwrap(),
            target: PathBuf::from(target),
            file: Some(BatchedFile::new(file, BatchedFile::UPLOAD)),
            temp,
            overwrite,
            existed: false,
            options: RootOptions::default(),
        }
    }

    #[test]
    fn named_fallback_is_hidden_random_and_placed_on_commit() {
        let (path, dir) = scratch("named");
        let mut u = named_upload(&dir, "a.bin", false);
        u.write(b"hello").unwrap();
        let during = names(&path);
        assert_eq!(during.len(), 1);
        assert!(super::super::names::is_server_temp(std::ffi::OsStr::new(
            &during[0]
        )));
        u.commit().unwrap();
        assert_eq!(names(&path), ["a.bin"]);
        assert_eq!(std::fs::read(path.join("a.bin")).unwrap(), b"hello");
        // Without overwrite, an existing name makes the commit fail and leaves it alone.
        let mut u = named_upload(&dir, "a.bin", false);
        u.write(b"other").unwrap();
        let e = u.commit().unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        drop(u);
        assert_eq!(names(&path), ["a.bin"]);
        assert_eq!(std::fs::read(path.join("a.bin")).unwrap(), b"hello");
        // With overwrite it replaces.
        let mut u = named_upload(&dir, "a.bin", true);
        u.write(b"new").unwrap();
        u.commit().unwrap();
        drop(u);
        assert_eq!(names(&path), ["a.bin"]);
        assert_eq!(std::fs::read(path.join("a.bin")).unwrap(), b"new");
        // Dropped uncommitted: nothing left.
        let mut u = named_upload(&dir, "b.bin", false);
        u.write(b"partial").unwrap();
        drop(u);
        assert_eq!(names(&path), ["a.bin"]);
        std::fs::remove_dir_all(&path).unwrap();
    }

    /// The new driver commits uploads on a thread of their own.
    #[test]
    fn upload_is_send() {
        fn send<T: Send>() {}
        send::<Upload>();
    }
}
