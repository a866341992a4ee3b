//! The capabilities a sandboxed RUN keeps: Docker's default set, nothing else. The bounding
//! set is cut first (so no later exec can regain a capability), then the permitted and
//! effective sets; inheritable and ambient are emptied.

/// Docker's default capabilities: CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID,
/// SETPCAP, NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP.
pub const DOCKER_DEFAULT: u64 = 0x0000_0000_a804_25fb;

/// The highest capability number this kernel knows, read before `fork`.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(40)
}

/// Drops every capability not in `keep` from the bounding set. Needs CAP_SETPCAP.
/// Called in the forked child: syscalls only.
pub fn drop_bounding(keep: u64, last_cap: u32) -> std::io::Result<()> {
    for cap in 0..=last_cap.min(63) {
        if keep & (1 << cap) != 0 {
            continue;
        }
        // SAFETY: prctl on our own process with integer arguments.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) } != 0 {
            let e = std::io::Error::last_os_error();
            // A number the kernel does not know is not in the set.
            if e.raw_os_error() != Some(libc::EINVAL) {
                return Err(e);
            }
        }
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Sets effective and permitted to `keep` (intersected with what the process has) and
/// empties inheritable and ambient. Called in the forked child: syscalls only.
pub fn limit(keep: u64) -> std::io::Result<()> {
    let mut header = CapHeader { version: LINUX_CAPABILITY_VERSION_3, pid: 0 };
    let mut data = [CapData { effective: 0, permitted: 0, inheritable: 0 }; 2];
    // SAFETY: capget with a v3 header writes two CapData entries, which `data` holds.
    if unsafe { libc::syscall(libc::SYS_capget, &mut header as *mut CapHeader, data.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    for (i, d) in data.iter_mut().enumerate() {
        let k = (keep >> (32 * i)) as u32;
        d.permitted &= k;
        d.effective = d.permitted;
        d.inheritable = 0;
    }
    // SAFETY: capset reads the header and two CapData entries from memory we own.
    if unsafe { libc::syscall(libc::SYS_capset, &mut header as *mut CapHeader, data.as_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: prctl on our own process; kernels before 4.3 have no ambient set (EINVAL).
    unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_field(status: &str, name: &str) -> u64 {
        status.lines().find_map(|l| l.strip_prefix(name)).and_then(|v| u64::from_str_radix(v.trim(), 16).ok()).unwrap_or(u64::MAX)
    }

    #[test]
    fn a_child_keeps_only_dockers_set() {
        if !nix::unistd::geteuid().is_root() {
            strata_test_support::skip("a_child_keeps_only_dockers_set", "needs root (CAP_SETPCAP)");
            return;
        }
        let last = last_cap();
        let out = tempfile::NamedTempFile::new().expect("tmp");
        let path = out.path().to_path_buf();
        // SAFETY: the child makes syscalls, reads its own status with std (allocation after
        // fork is tolerated in a test process we control), writes it and leaves with _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let ok = drop_bounding(DOCKER_DEFAULT, last).is_ok() && limit(DOCKER_DEFAULT).is_ok();
            let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            let _ = std::fs::write(&path, status);
            // SAFETY: see above.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut st = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut st, 0) };
        assert_eq!(libc::WEXITSTATUS(st), 0);
        let status = std::fs::read_to_string(out.path()).expect("status");
        assert_eq!(status_field(&status, "CapBnd:"), DOCKER_DEFAULT);
        assert_eq!(status_field(&status, "CapEff:"), DOCKER_DEFAULT);
        assert_eq!(status_field(&status, "CapPrm:"), DOCKER_DEFAULT);
        assert_eq!(status_field(&status, "CapInh:"), 0);
    }
}
