//! Removing what uploads of a dead server left behind.

use std::ffi::OsStr;

use cap_std::fs::Dir;

use super::names::is_server_temp;

/// Subdirectories deeper than this are not looked into: each level holds a descriptor.
const MAX_DEPTH: usize = 32;

/// Removes the server's temporary files that no process holds from `dir` and below;
/// returns how many.
pub(super) fn sweep(dir: &Dir, depth: usize) -> usize {
    let Ok(entries) = dir.entries() else {
        return 0;
    };
    // Names first, then removals: the directory is not changed under its own listing.
    let mut subdirs = Vec::new();
    let mut stale = Vec::new();
    for entry in entries.flatten() {
        // The entry's own type: a symlink is neither followed nor removed.
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let name = entry.file_name();
        if kind.is_dir() {
            subdirs.push(name);
        } else if kind.is_file() && is_server_temp(&name) {
            stale.push(name);
        }
    }
    let mut removed = 0;
    for name in stale {
        if !held(dir, &name) && dir.remove_file(&name).is_ok() {
            removed += 1;
        }
    }
    if depth < MAX_DEPTH {
        for name in subdirs {
            if let Ok(sub) = open_subdir(dir, &name) {
                removed += sweep(&sub, depth + 1);
            }
        }
    }
    removed
}

/// Opens the subdirectory `name`, not following a symlink put there since the listing.
fn open_subdir(dir: &Dir, name: &OsStr) -> std::io::Result<Dir> {
    #[cfg(unix)]
    {
        use cap_std::fs::{OpenOptions, OpenOptionsExt};
        use rustix::fs::OFlags;
        let mut o = OpenOptions::new();
        o.read(true)
            .custom_flags((OFlags::DIRECTORY | OFlags::NOFOLLOW).bits() as i32);
        dir.open_with(name, &o)
            .map(|f| Dir::from_std_file(f.into_std()))
    }
    #[cfg(not(unix))]
    dir.open_dir(name)
}

/// True when a running upload (of this or another server process) holds the file, or
/// when that cannot be told: such a file is left alone.
fn held(dir: &Dir, name: &OsStr) -> bool {
    #[cfg(unix)]
    {
        use cap_std::fs::{OpenOptions, OpenOptionsExt};
        use rustix::fs::OFlags;
        let mut o = OpenOptions::new();
        o.read(true)
            .custom_flags((OFlags::NONBLOCK | OFlags::NOFOLLOW | OFlags::NOCTTY).bits() as i32);
        match dir.open_with(name, &o) {
            Ok(file) => super::upload::try_lock(&file) == Some(false),
            Err(_) => true,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = (dir, name);
        false
    }
}
