//! Whether this process may create the namespaces `chroot` isolation needs. A Kubernetes pod
//! running as root without CAP_SYS_ADMIN (the common case for kaniko's users) may not; there
//! only `none` isolation can build.

/// Whether a child of this process can unshare mount and PID namespaces and make its mounts
/// private (what every `chroot` RUN starts with).
pub fn can_create_namespaces() -> bool {
    // The answer does not change while the process runs: probe once.
    static CAN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CAN.get_or_init(probe)
}

fn probe() -> bool {
    // SAFETY: fork() in a possibly multi-threaded process: the child only makes raw syscalls
    // (unshare, mount, _exit), which are async-signal-safe, and never returns.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return false;
    }
    if pid == 0 {
        // SAFETY: see above; plain syscalls on constant arguments, then _exit.
        unsafe {
            let ok = libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC) == 0
                && libc::mount(std::ptr::null(), c"/".as_ptr(), std::ptr::null(), libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()) == 0;
            libc::_exit(if ok { 0 } else { 1 })
        }
    }
    let mut status = 0;
    loop {
        // SAFETY: waits for the child forked above; `status` is a valid out-pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            break;
        }
        if rc < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return false;
        }
    }
    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
}

#[cfg(test)]
mod tests {
    /// Whether CAP_SYS_ADMIN (bit 21) is in this process's effective set.
    fn has_sys_admin() -> bool {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
            .is_some_and(|caps| caps & (1 << 21) != 0)
    }

    #[test]
    fn root_with_cap_sys_admin_can_create_namespaces() {
        let can = super::can_create_namespaces();
        if nix::unistd::geteuid().is_root() && has_sys_admin() {
            assert!(can, "root with CAP_SYS_ADMIN may unshare");
        }
    }
}
