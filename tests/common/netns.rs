//! Network namespaces a test makes for itself (root only): the `ip` program, entering a
//! namespace from a thread, and removing namespaces, a run's own or those a killed run
//! left behind. Names are `PREFIX` + the run's pid + what the test adds.

use std::fs;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::peers::find_program;

/// `ip`, to run (found where a user's `PATH` may lack the sbin directories).
pub fn ip_cmd() -> Command {
    static IP: OnceLock<PathBuf> = OnceLock::new();
    Command::new(IP.get_or_init(|| find_program("ip").unwrap_or_else(|| PathBuf::from("ip"))))
}

/// `program`, to run inside the namespace `ns`.
pub fn in_ns(ns: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = ip_cmd();
    cmd.args(["netns", "exec", ns]).arg(program);
    cmd
}

/// Puts the calling thread into the network namespace `ns` (a network namespace is a
/// thread's own: the test's other threads stay where they are). A TAP device opened from
/// this thread is then the namespace's.
pub fn enter_namespace(ns: &str) {
    let handle = fs::File::open(Path::new("/run/netns").join(ns))
        .unwrap_or_else(|e| panic!("open the namespace {ns}: {e}"));
    rustix::thread::move_into_link_name_space(
        handle.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .unwrap_or_else(|e| panic!("setns into {ns}: {e}"));
}

/// Ends what still runs in `name` and deletes it. Only ever called on namespaces of the
/// calling test (by name), whose processes that test started.
pub fn delete_namespace(name: &str) {
    if let Ok(out) = ip_cmd().args(["netns", "pids", name]).output() {
        for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-KILL", pid]).status();
        }
    }
    let _ = ip_cmd().args(["netns", "del", name]).status();
}

/// Deletes the namespaces named `prefix` + a pid + `-...` whose run was killed before its
/// cleanup (the pid is gone).
pub fn sweep_namespaces_of_dead_runs(prefix: &str) {
    let Ok(dir) = fs::read_dir("/run/netns") else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            delete_namespace(&name);
        }
    }
}
