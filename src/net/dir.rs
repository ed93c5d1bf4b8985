//! The server's default policy: serve a directory, read-only unless told otherwise.

use std::borrow::Cow;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::fs::{Root, RootOptions, Upload, check_name};
#[cfg(unix)]
use super::privileges::User;
use super::read_ahead::ReadAhead;
use super::remap::{Remap, RemapAction};
use crate::tftp::server::{Policy, Refusal, Served};
use crate::tftp::{Direction, ErrorCode, Segments, Storage, StorageError, Text};

/// What uploads a [`DirPolicy`] accepts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UploadRules {
    /// Accept uploads of new files.
    pub allow_create: bool,
    /// Let uploads replace existing files (otherwise ERROR 6).
    pub allow_overwrite: bool,
    /// The most bytes an upload may hold: the policy's
    /// [`upload_limit`](Policy::upload_limit), which the endpoint holds uploads to (ERROR
    /// 3, by their tsize up front and by their bytes as they arrive).
    pub max_size: Option<u64>,
}

/// The directory a [`DirPolicy`] serves ([`Server::bind`](super::Server::bind)), and its
/// rules: which uploads it accepts, which files it serves and creates how, and how
/// requested names are rewritten. How the server around it runs is a
/// [`ServerConfig`](super::ServerConfig)'s.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct DirConfig {
    /// The directory served.
    pub root: PathBuf,
    /// Which uploads are accepted: none by default.
    pub uploads: UploadRules,
    /// Which files are served or replaced, the permission bits of those created, and how
    /// strictly names are read (`--create-mode`, `--refuse-linked`, `--owned-only`,
    /// `--strict-names`).
    pub root_options: RootOptions,
    /// Filename remapping rules run on every requested name (`--remap`, the format of
    /// tftp-hpa's `-m`). See [`Remap`].
    pub remap: Option<Remap>,
}

impl DirConfig {
    /// Serves `root` read-only, with default [`RootOptions`] and no remapping.
    pub fn new(root: impl Into<PathBuf>) -> DirConfig {
        DirConfig {
            root: root.into(),
            uploads: UploadRules::default(),
            root_options: RootOptions::default(),
            remap: None,
        }
    }

    /// Looks for what would keep [`DirPolicy::open`] from opening the root, or whoever
    /// serves it (this process, or `user` once the server switches to it) from opening
    /// files in it, without sweeping the root or changing user: for `wirekit serve
    /// --check`. Returns the first problem as an error, else what the server would warn
    /// about at start (the root unlisted, uploads on but the root not writable).
    ///
    /// When the server will switch to `user`, the root is judged by its permission bits
    /// for that user and its group (ACLs are not read): only the switch itself can ask
    /// the system. Whether the switch can happen, [`ServerConfig::check`](super::ServerConfig::check)
    /// looks at.
    #[cfg(unix)]
    pub fn check(&self, user: Option<&User>) -> io::Result<Vec<String>> {
        let root = open_root(&self.root)?;
        let uploads = self.uploads.allow_create || self.uploads.allow_overwrite;
        let Some(user) = user.filter(|u| super::privileges::switches_to(u)) else {
            if let Some(e) = root.unusable() {
                return Err(io::Error::new(
                    e.kind(),
                    format!("cannot open files in {}: {e}", root.path().display()),
                ));
            }
            return Ok(root.access_problems(uploads));
        };
        let meta = std::fs::metadata(root.path())?;
        let bits = {
            use std::os::unix::fs::MetadataExt;
            let shift = if meta.uid() == user.uid() {
                6
            } else if meta.gid() == user.gid() {
                3
            } else {
                0
            };
            (meta.mode() >> shift) & 0o7
        };
        let (read, write, search) = (bits & 0o4 != 0, bits & 0o2 != 0, bits & 0o1 != 0);
        let path = root.path().display();
        let who = format!("user {} (by the permission bits)", user.name());
        if !search {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("cannot open files in {path} as {who}: it may not search the directory"),
            ));
        }
        let mut problems = Vec::new();
        if !read {
            problems.push(format!("cannot read {path} as {who}"));
        }
        if uploads && !write {
            problems.push(format!("cannot write {path} as {who}"));
        }
        Ok(problems)
    }
}

/// Opens the served directory, saying which on failure.
fn open_root(path: &Path) -> io::Result<Root> {
    Root::open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot open {}: {e}", path.display())))
}

/// Serves the files under a [`Root`]: opening the file is the check. With [`Remap`]
/// rules, each requested name is rewritten (or refused) by them first; the name they give
/// is then checked and confined like any requested one.
#[derive(Clone, Debug)]
pub struct DirPolicy {
    root: Arc<Root>,
    uploads: UploadRules,
    remap: Option<Remap>,
}

impl DirPolicy {
    /// Serves `root` with these upload rules.
    pub fn new(root: Root, uploads: UploadRules) -> DirPolicy {
        DirPolicy {
            root: Arc::new(root),
            uploads,
            remap: None,
        }
    }

    /// Opens the root `config` names, sweeping the leftovers of uploads an earlier run was
    /// cut short in, and serves it by `config`'s rules.
    pub fn open(config: &DirConfig) -> io::Result<DirPolicy> {
        let root = open_root(&config.root)?.with_options(config.root_options);
        // Leftovers of uploads cut short by a crash of an earlier run; before any privilege
        // drop, with the rights that wrote them.
        root.sweep();
        let policy = DirPolicy::new(root, config.uploads);
        Ok(match config.remap.clone() {
            Some(rules) => policy.with_remap(rules),
            None => policy,
        })
    }

    /// Runs `rules` on every requested name before it is checked and opened.
    pub fn with_remap(mut self, rules: Remap) -> DirPolicy {
        self.remap = Some(rules);
        self
    }

    /// The name to open for `filename`: as asked, or as the remap rules rewrite it. Tells
    /// in `served` the name the rules gave, if another, and the rules that gave it or
    /// refused it.
    fn remapped<'a>(
        &self,
        peer: SocketAddr,
        filename: Text<'a>,
        direction: Direction,
        served: &mut Served,
    ) -> Result<Cow<'a, [u8]>, Refusal> {
        check_name(filename)?;
        let Some(rules) = &self.remap else {
            return Ok(Cow::Borrowed(filename.as_bytes()));
        };
        let traced = rules.trace(filename.as_bytes(), peer.ip(), direction);
        // The rules that rewrote the name or refused it, each once (a `g` or restarted rule
        // may act several times).
        let mut lines: Vec<usize> = Vec::new();
        for step in &traced.steps {
            let acted = matches!(step.action, RemapAction::Rewrote(_) | RemapAction::Refused);
            if acted && !lines.contains(&step.line) {
                lines.push(step.line);
            }
        }
        served.via = match lines.as_slice() {
            [] => None,
            [line] => Some(format!("remap rule (line {line})")),
            lines => {
                let lines: Vec<String> = lines.iter().map(ToString::to_string).collect();
                Some(format!("remap rules (lines {})", lines.join(", ")))
            }
        };
        let name = traced.result?;
        if name != filename.as_bytes() {
            served.name = Some(Text::new(&name).to_string());
        }
        Ok(Cow::Owned(name))
    }

    /// The served root.
    pub fn root(&self) -> &Root {
        &self.root
    }

    /// Why this process could serve nothing from the root at all, if so: see
    /// [`Root::unusable`].
    pub fn unusable(&self) -> Option<std::io::Error> {
        self.root.unusable()
    }

    /// What keeps this process from serving the root as its rules say: see
    /// [`Root::access_problems`].
    pub fn access_problems(&self) -> Vec<String> {
        let uploads = self.uploads.allow_create || self.uploads.allow_overwrite;
        self.root.access_problems(uploads)
    }
}

/// A file a [`DirPolicy`] opened: one to send (read ahead of the window), or an upload on
/// its way in, which appears under its name only when committed.
#[derive(Debug)]
pub struct DirFile(Opened);

#[derive(Debug)]
enum Opened {
    Read(ReadAhead),
    Write(Upload),
}

impl Policy for DirPolicy {
    type Storage = DirFile;

    fn read(
        &mut self,
        peer: SocketAddr,
        filename: Text<'_>,
    ) -> Result<(DirFile, Option<u64>), Refusal> {
        self.read_served(peer, filename, &mut Served::new())
    }

    fn write(
        &mut self,
        peer: SocketAddr,
        filename: Text<'_>,
        tsize: Option<u64>,
    ) -> Result<DirFile, Refusal> {
        self.write_served(peer, filename, tsize, &mut Served::new())
    }

    /// One limit for the whole directory, whatever the name. None while uploads are off,
    /// so that a client is told that rather than that its file is too large.
    fn upload_limit(&mut self, _peer: SocketAddr, _filename: Text<'_>) -> Option<u64> {
        let rules = self.uploads;
        (rules.allow_create || rules.allow_overwrite)
            .then_some(rules.max_size)
            .flatten()
    }

    fn read_served(
        &mut self,
        peer: SocketAddr,
        filename: Text<'_>,
        served: &mut Served,
    ) -> Result<(DirFile, Option<u64>), Refusal> {
        let name = self.remapped(peer, filename, Direction::Read, served)?;
        let (file, size) = self.root.open_read(Text::new(&name))?;
        Ok((DirFile(Opened::Read(ReadAhead::new(file))), Some(size)))
    }

    fn write_served(
        &mut self,
        peer: SocketAddr,
        filename: Text<'_>,
        _tsize: Option<u64>,
        served: &mut Served,
    ) -> Result<DirFile, Refusal> {
        let rules = self.uploads;
        if !rules.allow_create && !rules.allow_overwrite {
            return Err(Refusal::new(
                ErrorCode::AccessViolation,
                "uploads are disabled",
            ));
        }
        let name = self.remapped(peer, filename, Direction::Write, served)?;
        let upload = self
            .root
            .create_upload(Text::new(&name), rules.allow_overwrite)?;
        if !rules.allow_create && !upload.replaces_existing() {
            return Err(Refusal::new(
                ErrorCode::AccessViolation,
                "creating new files is disabled",
            ));
        }
        Ok(DirFile(Opened::Write(upload)))
    }
}

impl Storage for DirFile {
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<usize, StorageError> {
        match &mut self.0 {
            Opened::Read(f) => f.read_at(offset, buf),
            Opened::Write(u) => u.read_at(offset, buf),
        }
    }

    fn read_segments_at(
        &mut self,
        offset: u64,
        buf: &mut [u8],
        layout: Segments,
    ) -> Result<usize, StorageError> {
        match &mut self.0 {
            Opened::Read(f) => f.read_segments_at(offset, buf, layout),
            Opened::Write(u) => u.read_segments_at(offset, buf, layout),
        }
    }

    fn write(&mut self, data: &[u8]) -> Result<(), StorageError> {
        match &mut self.0 {
            Opened::Read(f) => f.write(data),
            Opened::Write(u) => u.write(data),
        }
    }

    fn flush(&mut self) -> Result<(), StorageError> {
        match &mut self.0 {
            Opened::Read(_) => Ok(()),
            Opened::Write(u) => u.flush(),
        }
    }

    fn commit(&mut self) -> Result<(), StorageError> {
        match &mut self.0 {
            Opened::Read(_) => Ok(()),
            Opened::Write(u) => u.commit().map_err(StorageError::from),
        }
    }
}
