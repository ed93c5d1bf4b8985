//! Which requested names the server takes, and the names of its own temporary files.

use std::borrow::Cow;
use std::ffi::OsStr;
use std::path::{Component, PathBuf};

use crate::tftp::server::Refusal;
use crate::tftp::{ErrorCode, Text};

/// Longest filename accepted, in bytes. Far above any one component a file system takes
/// (255 on Linux); a longer component is refused by the file system itself.
const MAX_NAME: usize = 1024;

/// Ends every name of a file still being written: the server's uploads in progress (when
/// they have a name at all) and `wirekit get`'s downloads. Requests for such names are
/// refused, so a half-written file is never served and never replaced.
pub(super) const PART_SUFFIX: &str = ".wirekit-part";

/// Random hex digits in the name of an upload's temporary file.
const TEMP_HEX: usize = 32;

pub(super) fn access(message: impl Into<Cow<'static, str>>) -> Refusal {
    Refusal::new(ErrorCode::AccessViolation, message)
}

/// Refuses, with ERROR 2, a name no file could have: empty, too long, or with a control
/// character. Checked on the name as asked, before any remap rule spends time on it, and
/// again on what the rules made of it.
pub(crate) fn check_name(name: Text<'_>) -> Result<(), Refusal> {
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
    Ok(())
}

/// Turns a requested name into a relative path, or refuses it with ERROR 2.
///
/// Unless `strict`, names are read as boot firmware sends them: a backslash is a `/`
/// (Windows boot clients) and a leading `/` is the root (`filename "/pxelinux.0"` in a DHCP
/// configuration). That changes no confinement: `..` is refused in either spelling, and
/// the path is resolved under the root handle all the same.
pub(super) fn relative_path(name: Text<'_>, strict: bool) -> Result<PathBuf, Refusal> {
    check_name(name)?;
    let bytes = name.as_bytes();
    let slashed: Cow<'_, [u8]> = if !bytes.contains(&b'\\') {
        Cow::Borrowed(bytes)
    } else if strict {
        return Err(access("backslash in filename"));
    } else {
        Cow::Owned(
            bytes
                .iter()
                .map(|&b| if b == b'\\' { b'/' } else { b })
                .collect(),
        )
    };
    // `Path` drops a trailing `/` and `/.`, so `name/` would otherwise mean `name`: a
    // client that asked for a directory would read, or create, a file.
    let last = slashed.rsplit(|&b| b == b'/').next().unwrap_or_default();
    if last.is_empty() || last == b"." {
        return Err(access("filename names a directory, not a file"));
    }
    let relative = if strict {
        &slashed[..]
    } else {
        let start = slashed.iter().position(|&b| b != b'/').unwrap_or(0);
        &slashed[start..]
    };
    let path = bytes_to_path(relative)?;
    for c in path.components() {
        match c {
            Component::Normal(part) => {
                if is_part_name(part) {
                    return Err(access("name reserved for files being written"));
                }
            }
            Component::CurDir => {}
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

fn is_part_name(name: &OsStr) -> bool {
    name.as_encoded_bytes().ends_with(PART_SUFFIX.as_bytes())
}

#[cfg(unix)]
fn bytes_to_path(bytes: &[u8]) -> Result<PathBuf, Refusal> {
    use std::os::unix::ffi::OsStrExt;
    Ok(PathBuf::from(OsStr::from_bytes(bytes)))
}

#[cfg(not(unix))]
fn bytes_to_path(bytes: &[u8]) -> Result<PathBuf, Refusal> {
    std::str::from_utf8(bytes)
        .map(PathBuf::from)
        .map_err(|_| access("filename is not UTF-8"))
}

/// A fresh name for an upload's temporary file: `.` + 32 random hex digits + the part
/// suffix. Its length does not depend on the target's, so any name the file system takes
/// can be uploaded, and nobody can guess it to create it first or to read it.
pub(super) fn temp_name() -> String {
    use std::hash::{BuildHasher, RandomState};
    use std::sync::atomic::{AtomicU64, Ordering};
    // Each `RandomState` is keyed from the OS's randomness (then stepped per call), so
    // SipHash of a counter under it is unpredictable without a dependency for randomness.
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let a = RandomState::new().hash_one((n, std::process::id(), 0u8));
    let b = RandomState::new().hash_one((n, std::process::id(), 1u8));
    format!(".{a:016x}{b:016x}{PART_SUFFIX}")
}

/// True for names the server's uploads leave behind when the process dies: the current
/// form ([`temp_name`]) and the older `.NAME.PID-N.wirekit-part`. The client's
/// `.NAME.PID.wirekit-part` does not match: it belongs to a `wirekit get` that may be
/// running now.
pub(super) fn is_server_temp(name: &OsStr) -> bool {
    let Some(stem) = name
        .as_encoded_bytes()
        .strip_suffix(PART_SUFFIX.as_bytes())
        .and_then(|s| s.strip_prefix(b"."))
    else {
        return false;
    };
    if stem.len() == TEMP_HEX && stem.iter().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return true;
    }
    // `NAME.PID-N`: after the last dot, digits, a dash, digits.
    let mut halves = stem.rsplitn(2, |&b| b == b'.');
    let (Some(tail), Some(name)) = (halves.next(), halves.next()) else {
        return false;
    };
    let mut parts = tail.splitn(2, |&b| b == b'-');
    let digits =
        |p: Option<&[u8]>| p.is_some_and(|p| !p.is_empty() && p.iter().all(u8::is_ascii_digit));
    !name.is_empty() && digits(parts.next()) && digits(parts.next())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(name: &str) -> Result<PathBuf, Refusal> {
        relative_path(Text::from(name), true)
    }

    fn lenient(name: &str) -> Result<PathBuf, Refusal> {
        relative_path(Text::from(name), false)
    }

    #[test]
    fn firmware_names_are_read_as_relative_unless_strict() {
        for (name, want) in [
            ("/pxelinux.0", "pxelinux.0"),
            ("//pxelinux.cfg/default", "pxelinux.cfg/default"),
            ("\\Boot\\x64\\wdsnbp.com", "Boot/x64/wdsnbp.com"),
            ("boot\\bcd", "boot/bcd"),
            ("\\\\server\\share\\f", "server/share/f"),
            ("plain", "plain"),
        ] {
            assert_eq!(lenient(name).unwrap(), PathBuf::from(want), "{name:?}");
            let e = path(name);
            assert!(name == "plain" || e.is_err(), "{name:?} strict: {e:?}");
        }
        assert_eq!(
            path("/pxelinux.0").unwrap_err().message,
            "absolute filename"
        );
        assert_eq!(path("a\\b").unwrap_err().message, "backslash in filename");
    }

    #[test]
    fn firmware_spellings_of_parent_and_directories_are_still_refused() {
        for name in ["/../x", "\\..\\x", "a\\..\\..\\x", "/a/../../x", "..\\x"] {
            assert_eq!(
                lenient(name).unwrap_err().message,
                "'..' in filename",
                "{name:?}"
            );
        }
        for name in ["/", "\\", "//", "a\\", "/a/.", "\\.", "\\a\\"] {
            assert_eq!(
                lenient(name).unwrap_err().message,
                "filename names a directory, not a file",
                "{name:?}"
            );
        }
        assert!(lenient("/x.wirekit-part").is_err());
        assert!(lenient("\\d\\x.wirekit-part").is_err());
    }

    #[test]
    fn directory_names_are_refused() {
        for name in ["a/", "a/b/", "a/.", "a//", ".", "./", "/"] {
            let e = path(name).unwrap_err();
            assert_eq!(e.code, ErrorCode::AccessViolation, "{name:?}");
        }
        assert_eq!(path("a/b").unwrap(), PathBuf::from("a/b"));
        assert!(path("./a").is_ok());
    }

    #[test]
    fn part_names_are_refused_anywhere_in_the_path() {
        for name in [
            ".x.bin.123-0.wirekit-part",
            "dir/.0123456789abcdef0123456789abcdef.wirekit-part",
            "a.wirekit-part/b",
        ] {
            let e = path(name).unwrap_err();
            assert_eq!(
                e.message, "name reserved for files being written",
                "{name:?}"
            );
        }
        assert!(path("wirekit-part").is_ok());
    }

    #[test]
    fn temp_names_are_fixed_length_distinct_and_recognized() {
        let a = temp_name();
        let b = temp_name();
        assert_ne!(a, b);
        assert_eq!(a.len(), 1 + TEMP_HEX + PART_SUFFIX.len());
        assert!(is_server_temp(OsStr::new(&a)));
        assert!(path(&a).is_err());
    }

    #[test]
    fn stale_names_and_others() {
        assert!(is_server_temp(OsStr::new(".big.bin.4242-7.wirekit-part")));
        assert!(is_server_temp(OsStr::new(".a.b.1-0.wirekit-part")));
        // A client's download in progress, and ordinary files.
        assert!(!is_server_temp(OsStr::new(".big.bin.4242.wirekit-part")));
        assert!(!is_server_temp(OsStr::new(
            ".0123456789ABCDEF0123456789ABCDEF.wirekit-part"
        )));
        assert!(!is_server_temp(OsStr::new("big.bin")));
        assert!(!is_server_temp(OsStr::new(".1-2.wirekit-part")));
        assert!(!is_server_temp(OsStr::new(".x.1-.wirekit-part")));
    }
}
