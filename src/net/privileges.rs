//! Giving up root after binding, as tftp-hpa's `-u`: a server started as root binds its
//! ports, then becomes an ordinary user before it reads the first request, so that the
//! files it serves and writes are reached with that user's rights only.
//!
//! The user and its group are looked up through the C library (`getpwnam_r`,
//! `getgrgid_r`, by `uzers`), so every NSS source the system is configured with (LDAP,
//! sssd, systemd's dynamic users) is honoured, not only `/etc/passwd`. The switch itself
//! goes through the C library too (`setgroups`, `setgid`, `setuid`), which applies it to
//! every thread of the process; the kernel's own calls (and rustix's `thread` functions)
//! would change only the calling thread.

use std::fmt;
use std::io;

/// A user to run as: its name, user ID and primary group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    name: String,
    uid: u32,
    gid: u32,
    group: Option<String>,
}

impl User {
    /// Looks `name` up in the system's user database (through NSS), with its primary group.
    /// A user that does not exist is an error of kind [`io::ErrorKind::NotFound`].
    pub fn lookup(name: &str) -> io::Result<User> {
        let user = uzers::get_user_by_name(name).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("no such user: {name}"))
        })?;
        let gid = user.primary_group_id();
        let group = uzers::get_group_by_gid(gid).map(|g| g.name().to_string_lossy().into_owned());
        Ok(User {
            name: name.to_owned(),
            uid: user.uid(),
            gid,
            group,
        })
    }

    /// The user's name, as looked up.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The user ID.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// The primary group's ID: the only group the process keeps after the switch.
    pub fn gid(&self) -> u32 {
        self.gid
    }

    /// The primary group's name, where the group database has one.
    pub fn group_name(&self) -> Option<&str> {
        self.group.as_deref()
    }
}

impl fmt::Display for User {
    /// `nobody (uid 65534), group nogroup (gid 65534)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (uid {}), group ", self.name, self.uid)?;
        match &self.group {
            Some(g) => write!(f, "{g} (gid {})", self.gid),
            None => write!(f, "{}", self.gid),
        }
    }
}

/// True when the process runs with root's effective user ID.
pub(crate) fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// True when the process, not root, runs as `user` already: switching to it changes
/// nothing, privileges included.
pub(crate) fn runs_as(user: &User) -> bool {
    use rustix::process::{getegid, geteuid, getgid, getuid};
    let is_already = |id: u32, real: u32, effective: u32| id == real && id == effective;
    !is_root()
        && is_already(user.uid, getuid().as_raw(), geteuid().as_raw())
        && is_already(user.gid, getgid().as_raw(), getegid().as_raw())
}

/// True when running as `user` would make the process someone else: it is neither `user`
/// already, nor root staying root.
pub(crate) fn switches_to(user: &User) -> bool {
    !(runs_as(user) || is_root() && user.uid == 0)
}

/// Whether the process would keep the right to bind privileged ports as `user`: only as
/// root, or where the switch changes nothing. A switch from root to anyone else clears
/// every capability.
pub(crate) fn privileged_as(user: &User) -> bool {
    if runs_as(user) {
        may_bind_privileged_ports()
    } else {
        user.uid == 0
    }
}

/// The lowest port a process without privileges may bind: Linux's
/// `net.ipv4.ip_unprivileged_port_start` (which holds for IPv6 too; containers often set
/// it to 0), else 1024.
pub(crate) fn unprivileged_port_start() -> u16 {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Ok(s) = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        && let Ok(port) = s.trim().parse::<u32>()
    {
        return u16::try_from(port).unwrap_or(u16::MAX);
    }
    1024
}

/// Whether this process may bind ports below [`unprivileged_port_start`]: on Linux, when
/// `CAP_NET_BIND_SERVICE` is in its effective set (root has it unless a container took
/// it away; `setcap` gives it to a program), elsewhere when it runs as root.
pub(crate) fn may_bind_privileged_ports() -> bool {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        const CAP_NET_BIND_SERVICE: u32 = 10;
        let effective = std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
                u64::from_str_radix(hex.trim(), 16).ok()
            });
        if let Some(caps) = effective {
            return caps & (1 << CAP_NET_BIND_SERVICE) != 0;
        }
    }
    is_root()
}

/// Makes the whole process `user`: supplementary groups cleared to the user's primary
/// group, then the real, effective and saved group IDs, then the user IDs. Checked after:
/// every ID is the user's, and root cannot be had back. A process that already runs as
/// `user` (and is not root) changes nothing.
pub(crate) fn switch_to(user: &User) -> io::Result<()> {
    use rustix::process::{getegid, geteuid, getgid, getgroups, getuid};
    let (uid, gid) = (user.uid, user.gid);
    if runs_as(user) {
        return Ok(());
    }
    let failed = |what: &str, e: io::Error| {
        io::Error::new(
            e.kind(),
            format!("cannot switch to user {}: {what}: {e}", user.name),
        )
    };
    // Groups first: once the user ID is not root's, the groups can no longer be changed.
    set_groups(&[gid]).map_err(|e| failed("setgroups", e))?;
    uzers::switch::set_current_gid(gid).map_err(|e| failed("setgid", e))?;
    uzers::switch::set_current_uid(uid).map_err(|e| failed("setuid", e))?;

    let groups = getgroups().map_err(|e| failed("getgroups", e.into()))?;
    let switched = getuid().as_raw() == uid
        && geteuid().as_raw() == uid
        && getgid().as_raw() == gid
        && getegid().as_raw() == gid
        && groups.iter().all(|g| g.as_raw() == gid);
    // setuid keeps the saved ID only for a caller that was not privileged; this one was,
    // so root must be out of reach now.
    let regained = uid != 0 && uzers::switch::set_current_uid(0).is_ok();
    if !switched || regained {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "cannot switch to user {}: the process's IDs did not all change",
                user.name
            ),
        ));
    }
    Ok(())
}

/// `setgroups(2)` through the C library, which applies it to every thread. Neither rustix
/// (per thread only) nor uzers has it.
#[allow(unsafe_code)]
fn set_groups(groups: &[libc::gid_t]) -> io::Result<()> {
    // size_t on Linux, int on the BSDs and macOS.
    #[allow(clippy::useless_conversion)]
    let len = groups
        .len()
        .try_into()
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "too many groups"))?;
    // SAFETY: the pointer and length describe a live slice of gid_t that outlives the
    // call; setgroups only reads it.
    let rc = unsafe { libc::setgroups(len, groups.as_ptr()) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
