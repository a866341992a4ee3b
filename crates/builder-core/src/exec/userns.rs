//! Rootless builds: strata re-executes itself (`/proc/self/exe`) in a new user and mount
//! namespace, as `buildah unshare` and podman do. The parent maps the user's ID to root and
//! the ranges of /etc/subuid and /etc/subgid after it (through the setuid helpers
//! `newuidmap`/`newgidmap`), or only the user's own ID when there are none. Inside, strata is
//! root of its namespace: base layers unpack with their real owners, RUN uses the same
//! chroot path as a root build, and layers record the in-image uids.
//!
//! The CLI calls [`enter_user_namespace_if_needed`] first thing, before any thread exists
//! (`unshare(CLONE_NEWUSER)` refuses multi-threaded callers).

use crate::error::BuildError;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set by the parent for the re-executed child: `<write fd>,<read fd>` of the sync pipes.
const SYNC_ENV: &str = "_STRATA_USERNS_SYNC";

static INSIDE: AtomicBool = AtomicBool::new(false);

/// Whether this process is the re-executed strata inside its user namespace.
pub fn in_user_namespace() -> bool {
    INSIDE.load(Ordering::Relaxed)
}

/// A subordinate ID range from /etc/subuid or /etc/subgid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    /// First host ID.
    pub start: u32,
    /// Number of IDs.
    pub count: u32,
}

/// The ranges `file`'s text grants to the user `name` (or numeric `id`).
pub fn parse_subid(text: &str, name: &str, id: u32) -> Vec<IdRange> {
    let id_text = id.to_string();
    text.lines()
        .filter_map(|line| {
            let mut parts = line.trim().split(':');
            let (owner, start, count) = (parts.next()?, parts.next()?, parts.next()?);
            if owner != name && owner != id_text {
                return None;
            }
            Some(IdRange { start: start.trim().parse().ok()?, count: count.trim().parse().ok()? })
        })
        .filter(|r| r.count > 0)
        .collect()
}

/// The `newuidmap`/`newgidmap` arguments after the pid: own ID to 0, ranges from 1 on.
pub fn map_args(own: u32, ranges: &[IdRange]) -> Vec<String> {
    let mut args = vec!["0".to_string(), own.to_string(), "1".to_string()];
    let mut inside: u64 = 1;
    for r in ranges {
        if inside + u64::from(r.count) > u64::from(u32::MAX) {
            break;
        }
        args.extend([inside.to_string(), r.start.to_string(), r.count.to_string()]);
        inside += u64::from(r.count);
    }
    args
}

/// Re-executes strata inside a user namespace when it runs as a non-root user, and exits
/// with the child's status (never returns then). In the re-executed child it finishes
/// entering the namespace and returns. As root it does nothing.
pub fn enter_user_namespace_if_needed() -> Result<(), BuildError> {
    if let Ok(fds) = std::env::var(SYNC_ENV) {
        return enter_as_child(&fds);
    }
    if nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let code = run_parent()?;
    std::process::exit(code);
}

fn userns_error(message: impl Into<String>) -> BuildError {
    BuildError::Rootless(message.into())
}

fn run_parent() -> Result<i32, BuildError> {
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    let name = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)).ok().flatten().map(|u| u.name).unwrap_or_default();
    let subuid = parse_subid(&std::fs::read_to_string("/etc/subuid").unwrap_or_default(), &name, uid);
    let subgid = parse_subid(&std::fs::read_to_string("/etc/subgid").unwrap_or_default(), &name, gid);

    let pipe = || nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| userns_error(format!("pipe: {e}")));
    let (ready_r, ready_w) = pipe()?;
    let (go_r, go_w) = pipe()?;
    let (child_w, child_r) = (ready_w.as_raw_fd(), go_r.as_raw_fd());
    let mut cmd = Command::new("/proc/self/exe");
    if let Some(arg0) = std::env::args_os().next() {
        cmd.arg0(arg0);
    }
    cmd.args(std::env::args_os().skip(1)).env(SYNC_ENV, format!("{child_w},{child_r}"));
    // SAFETY: fcntl on two descriptors we own, in the forked child before exec: it only
    // clears close-on-exec so the re-executed strata inherits exactly these two.
    unsafe {
        cmd.pre_exec(move || {
            for fd in [child_w, child_r] {
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            // If this parent dies, the namespaced strata is told to stop and clean up.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(|e| userns_error(format!("cannot re-execute strata (/proc/self/exe): {e}")))?;
    forward_stop_signals(child.id());
    drop(ready_w);
    drop(go_r);
    let mut ready = std::fs::File::from(ready_r);
    let mut go = std::fs::File::from(go_w);
    let mut byte = [0u8; 1];
    let unshared = matches!(ready.read(&mut byte), Ok(1));
    if unshared {
        let pid = child.id();
        let mapped = write_maps(pid, uid, gid, &subuid, &subgid);
        if let Err(e) = &mapped {
            eprintln!("error: {e}");
        }
        let _ = go.write_all(if mapped.is_ok() { b"1" } else { b"0" });
    }
    drop(go);
    let status = child.wait().map_err(|e| userns_error(format!("waiting for the namespaced strata: {e}")))?;
    Ok(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

/// The namespaced strata, for [`forward_signal`].
static CHILD_PID: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

extern "C" fn forward_signal(sig: libc::c_int) {
    let pid = CHILD_PID.load(std::sync::atomic::Ordering::Relaxed);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe; the pid is our own child's.
        unsafe { libc::kill(pid, sig) };
    }
}

/// SIGTERM, SIGINT and SIGHUP sent to this parent (a pod's PID 1, a CI runner stopping the
/// job) go to the namespaced strata, which stops its build and cleans up; this parent then
/// exits with its status (143 for SIGTERM).
fn forward_stop_signals(child: u32) {
    CHILD_PID.store(i32::try_from(child).unwrap_or(0), std::sync::atomic::Ordering::Relaxed);
    let action = nix::sys::signal::SigAction::new(
        nix::sys::signal::SigHandler::Handler(forward_signal),
        nix::sys::signal::SaFlags::SA_RESTART,
        nix::sys::signal::SigSet::empty(),
    );
    for sig in [nix::sys::signal::Signal::SIGTERM, nix::sys::signal::Signal::SIGINT, nix::sys::signal::Signal::SIGHUP] {
        // SAFETY: the handler only reads an atomic and calls kill(2), both async-signal-safe;
        // the process is single-threaded here (before the async runtime starts).
        if let Err(e) = unsafe { nix::sys::signal::sigaction(sig, &action) } {
            tracing::warn!("rootless: cannot forward {sig} to the namespaced strata: {e}");
        }
    }
}

fn run_helper(tool: &str, pid: u32, args: &[String]) -> Result<(), BuildError> {
    let out = Command::new(tool)
        .arg(pid.to_string())
        .args(args)
        .output()
        .map_err(|e| userns_error(format!("cannot run {tool}: {e} (install the uidmap package)")))?;
    if out.status.success() {
        return Ok(());
    }
    Err(userns_error(format!("{tool} {pid} {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim())))
}

fn write_maps(pid: u32, uid: u32, gid: u32, subuid: &[IdRange], subgid: &[IdRange]) -> Result<(), BuildError> {
    if !subuid.is_empty() && !subgid.is_empty() {
        match run_helper("newuidmap", pid, &map_args(uid, subuid)).and_then(|()| run_helper("newgidmap", pid, &map_args(gid, subgid))) {
            Ok(()) => return Ok(()),
            // Half-written maps cannot be rewritten: a failure after newuidmap is final.
            Err(e) if std::fs::read_to_string(format!("/proc/{pid}/uid_map")).is_ok_and(|m| !m.trim().is_empty()) => {
                return Err(e);
            }
            Err(e) => eprintln!("warning: {e}; falling back to a single-ID map (only uid/gid 0 exist in the build)"),
        }
    } else {
        eprintln!(
            "warning: no ranges for this user in /etc/subuid and /etc/subgid; using a single-ID map \
             (files owned by other uids cannot be created; add ranges with `usermod --add-subuids 100000-165535 --add-subgids 100000-165535 USER`)"
        );
    }
    let write = |file: &str, text: String| {
        std::fs::write(format!("/proc/{pid}/{file}"), text).map_err(|e| userns_error(format!("cannot write /proc/{pid}/{file}: {e}")))
    };
    write("uid_map", format!("0 {uid} 1\n"))?;
    write("setgroups", "deny\n".into())?;
    write("gid_map", format!("0 {gid} 1\n"))
}

fn enter_as_child(fds: &str) -> Result<(), BuildError> {
    let parse = |s: Option<&str>| s.and_then(|v| v.parse::<i32>().ok()).ok_or_else(|| userns_error(format!("bad {SYNC_ENV}={fds}")));
    let mut it = fds.split(',');
    let (w, r) = (parse(it.next())?, parse(it.next())?);
    // SAFETY: the parent created these two descriptors for us and nothing else in this
    // process uses them; we take sole ownership.
    let (mut ready, mut go) = unsafe { (std::fs::File::from(OwnedFd::from_raw_fd(w)), std::fs::File::from(OwnedFd::from_raw_fd(r))) };
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER | nix::sched::CloneFlags::CLONE_NEWNS).map_err(|e| {
        userns_error(format!(
            "cannot create a user namespace: {e} (enable unprivileged user namespaces: sysctl user.max_user_namespaces=15000 \
             and kernel.unprivileged_userns_clone=1; in Kubernetes allow them or run as root with --isolation chroot)"
        ))
    })?;
    ready.write_all(b"1").map_err(|e| userns_error(format!("sync with parent: {e}")))?;
    drop(ready);
    let mut byte = [0u8; 1];
    if !matches!(go.read(&mut byte), Ok(1)) || byte[0] != b'1' {
        return Err(userns_error("the parent could not set the namespace's ID maps (see the message above)"));
    }
    drop(go);
    // SAFETY: prctl on ourselves: if the waiting parent dies, so do we.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    let root = nix::unistd::Gid::from_raw(0);
    nix::unistd::setresgid(root, root, root).map_err(|e| userns_error(format!("setresgid(0): {e}")))?;
    nix::unistd::setresuid(nix::unistd::Uid::from_raw(0), nix::unistd::Uid::from_raw(0), nix::unistd::Uid::from_raw(0))
        .map_err(|e| userns_error(format!("setresuid(0): {e}")))?;
    // The host's supplementary groups are unmapped inside; drop them where the map allows.
    let _ = nix::unistd::setgroups(&[]);
    nix::mount::mount(None::<&str>, "/", None::<&str>, nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE, None::<&str>)
        .map_err(|e| userns_error(format!("making / private in the new mount namespace: {e}")))?;
    INSIDE.store(true, Ordering::Relaxed);
    Ok(())
}

/// Whether `id` exists in this process's user namespace (`/proc/self/{uid,gid}_map`).
pub fn id_is_mapped(map_file: &str, id: u32) -> bool {
    let text = std::fs::read_to_string(map_file).unwrap_or_default();
    id_in_map(&text, id)
}

fn id_in_map(text: &str, id: u32) -> bool {
    text.lines().any(|l| {
        let f: Vec<u64> = l.split_whitespace().filter_map(|x| x.parse().ok()).collect();
        f.len() == 3 && u64::from(id) >= f[0] && u64::from(id) < f[0] + f[2]
    })
}

/// The uid map of this process (`inside host count` per line), for logs.
pub fn describe_uid_map() -> String {
    std::fs::read_to_string("/proc/self/uid_map")
        .unwrap_or_default()
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subid_lines_by_name_or_id() {
        let text = "alice:100000:65536\n1001:200000:1000\nbob:300000:65536\n# junk\nalice:500000:0\n";
        assert_eq!(parse_subid(text, "alice", 1000), vec![IdRange { start: 100000, count: 65536 }]);
        assert_eq!(parse_subid(text, "carol", 1001), vec![IdRange { start: 200000, count: 1000 }]);
        assert!(parse_subid(text, "dave", 1002).is_empty());
    }

    #[test]
    fn ids_in_maps() {
        let map = "         0       1000          1\n         1     100000      65536\n";
        assert!(id_in_map(map, 0) && id_in_map(map, 1000) && id_in_map(map, 65536));
        assert!(!id_in_map(map, 65537));
        assert!(!id_in_map("0 1000 1\n", 1000));
    }

    #[test]
    fn maps_put_the_user_at_zero() {
        let args = map_args(1000, &[IdRange { start: 100000, count: 65536 }, IdRange { start: 300000, count: 10 }]);
        assert_eq!(args, ["0", "1000", "1", "1", "100000", "65536", "65537", "300000", "10"]);
    }
}
