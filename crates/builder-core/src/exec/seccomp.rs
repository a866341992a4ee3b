//! The seccomp filter every sandboxed RUN gets: the system calls Docker's default profile
//! refuses a container without extra capabilities (mounting, namespaces, kernel modules,
//! keyrings, BPF, clocks, reboot, handle-based opens, io_uring) fail with `EPERM`, `clone3`
//! with `ENOSYS` (so libc falls back to `clone`, whose namespace flags are checked), and
//! `personality` only takes the values Docker allows. Everything else is allowed.
//!
//! Docker's profile is an allow-list; this is the same boundary written as a deny-list, so a
//! system call newer than strata is allowed rather than refused. The dropped capabilities
//! (see [`super::capabilities`]) are the main wall; the filter is the second, as in Docker.
//! `no_new_privs` is not set (Docker does not either): setuid programs in the image keep
//! working, and the filter is installed while the sandbox still holds `CAP_SYS_ADMIN`.
//!
//! On x86_64 the 32-bit (i386) system calls are filtered with their own numbers, and x32
//! calls are refused; on other architectures compat calls are limited by capabilities only.

/// A compiled classic-BPF program, built before `fork` and installed in the child.
#[derive(Debug, Clone)]
pub struct Filter {
    program: Vec<libc::sock_filter>,
}

const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
/// `seccomp_data.nr`.
const OFFSET_NR: u32 = 0;
/// `seccomp_data.arch`.
const OFFSET_ARCH: u32 = 4;
/// The low 32 bits of `seccomp_data.args[0]` (little-endian).
const OFFSET_ARG0_LOW: u32 = 16;
/// CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET (Docker's mask).
const CLONE_NAMESPACE_FLAGS: u32 = 0x7E02_0000;
/// The `personality(2)` values Docker allows: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and the query.
const PERSONALITY_ALLOWED: [u32; 5] = [0, 8, 0x0002_0000, 0x0002_0008, 0xffff_ffff];

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH_NATIVE: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH_NATIVE: u32 = 0xC000_00B7;
#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
#[cfg(target_arch = "x86_64")]
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

/// System calls refused with EPERM, by their native numbers.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
fn denied_native() -> Vec<u32> {
    let mut calls = vec![
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_pivot_root,
        libc::SYS_open_by_handle_at,
        libc::SYS_name_to_handle_at,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_reboot,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_acct,
        libc::SYS_settimeofday,
        libc::SYS_clock_settime,
        libc::SYS_clock_adjtime,
        libc::SYS_userfaultfd,
        libc::SYS_quotactl,
        libc::SYS_syslog,
        libc::SYS_lookup_dcookie,
        libc::SYS_kcmp,
        libc::SYS_vhangup,
        libc::SYS_fsopen,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_mount_setattr,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
    ];
    #[cfg(target_arch = "x86_64")]
    calls.extend([
        libc::SYS_iopl,
        libc::SYS_ioperm,
        174, // create_module (no libc constant: removed from the kernel)
        177, // get_kernel_syms
        178, // query_module
        libc::SYS_uselib,
        libc::SYS_ustat,
        libc::SYS_sysfs,
        libc::SYS__sysctl,
        libc::SYS_nfsservctl,
    ]);
    calls.into_iter().filter_map(|n| u32::try_from(n).ok()).collect()
}

/// The same calls by their i386 numbers (asm/unistd_32.h).
#[cfg(target_arch = "x86_64")]
const DENIED_I386: &[u32] = &[
    21,  // mount
    22,  // umount
    52,  // umount2
    310, // unshare
    346, // setns
    217, // pivot_root
    342, // open_by_handle_at
    341, // name_to_handle_at
    128, // init_module
    350, // finit_module
    129, // delete_module
    283, // kexec_load
    88,  // reboot
    87,  // swapon
    115, // swapoff
    357, // bpf
    336, // perf_event_open
    288, // keyctl
    286, // add_key
    287, // request_key
    51,  // acct
    79,  // settimeofday
    25,  // stime
    264, // clock_settime
    404, // clock_settime64
    343, // clock_adjtime
    405, // clock_adjtime64
    374, // userfaultfd
    131, // quotactl
    103, // syslog
    253, // lookup_dcookie
    349, // kcmp
    111, // vhangup
    430, // fsopen
    431, // fsconfig
    432, // fsmount
    433, // fspick
    429, // move_mount
    428, // open_tree
    442, // mount_setattr
    425, // io_uring_setup
    426, // io_uring_enter
    427, // io_uring_register
    110, // iopl
    101, // ioperm
    127, // create_module
    130, // get_kernel_syms
    167, // query_module
    86,  // uselib
    62,  // ustat
    135, // sysfs
    149, // _sysctl
    169, // nfsservctl
    113, // vm86old
    166, // vm86
];
#[cfg(target_arch = "x86_64")]
const I386_CLONE: u32 = 120;
#[cfg(target_arch = "x86_64")]
const I386_CLONE3: u32 = 435;
#[cfg(target_arch = "x86_64")]
const I386_PERSONALITY: u32 = 136;

fn stmt(code: u16, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt: 0, jf: 0, k }
}

fn jump(code: u16, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

const LD_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const JEQ: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JGE: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const JSET: u16 = (libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K) as u16;
const RET: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;

fn errno(e: i32) -> u32 {
    SECCOMP_RET_ERRNO | (e as u32 & 0xffff)
}

/// The checks for one architecture's numbers; the accumulator holds `nr` on entry and every
/// path ends in a return.
fn arch_block(denied: &[u32], clone: u32, clone3: u32, personality: u32) -> Vec<libc::sock_filter> {
    let mut p = Vec::new();
    for &nr in denied {
        p.push(jump(JEQ, nr, 0, 1));
        p.push(stmt(RET, errno(libc::EPERM)));
    }
    p.push(jump(JEQ, clone3, 0, 1));
    p.push(stmt(RET, errno(libc::ENOSYS)));
    // clone: refused when it asks for a new namespace.
    p.push(jump(JEQ, clone, 0, 4));
    p.push(stmt(LD_ABS, OFFSET_ARG0_LOW));
    p.push(jump(JSET, CLONE_NAMESPACE_FLAGS, 0, 1));
    p.push(stmt(RET, errno(libc::EPERM)));
    p.push(stmt(RET, SECCOMP_RET_ALLOW));
    // personality: only the allowed values.
    let n = PERSONALITY_ALLOWED.len() as u8;
    p.push(jump(JEQ, personality, 0, n + 3));
    p.push(stmt(LD_ABS, OFFSET_ARG0_LOW));
    for (i, &v) in PERSONALITY_ALLOWED.iter().enumerate() {
        // Jump over the remaining comparisons and the EPERM to the allow.
        p.push(jump(JEQ, v, n - i as u8, 0));
    }
    p.push(stmt(RET, errno(libc::EPERM)));
    p.push(stmt(RET, SECCOMP_RET_ALLOW));
    p.push(stmt(RET, SECCOMP_RET_ALLOW));
    p
}

impl Filter {
    /// The RUN filter for this machine's architecture.
    #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
    pub fn for_run() -> Self {
        let native = arch_block(&denied_native(), libc::SYS_clone as u32, libc::SYS_clone3 as u32, libc::SYS_personality as u32);
        let mut p = vec![stmt(LD_ABS, OFFSET_ARCH)];
        #[cfg(target_arch = "x86_64")]
        {
            let i386 = arch_block(DENIED_I386, I386_CLONE, I386_CLONE3, I386_PERSONALITY);
            // 1: i386 -> 2 (a long jump to its block); else 3.
            p.push(jump(JEQ, AUDIT_ARCH_I386, 0, 1));
            p.push(stmt(JA, 0)); // patched below
            // 3: native -> 5; anything else (cannot happen here) is not ours to judge.
            p.push(jump(JEQ, AUDIT_ARCH_NATIVE, 1, 0));
            p.push(stmt(RET, SECCOMP_RET_ALLOW));
            p.push(stmt(LD_ABS, OFFSET_NR));
            // x32 calls share the arch value and carry this bit: refused.
            p.push(jump(JGE, X32_SYSCALL_BIT, 0, 1));
            p.push(stmt(RET, errno(libc::ENOSYS)));
            p.extend(native);
            let i386_start = p.len() as u32;
            p.push(stmt(LD_ABS, OFFSET_NR));
            p.extend(i386);
            // `ja k` continues at pc + 1 + k; it sits at index 2.
            p[2] = stmt(JA, i386_start - 3);
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            p.push(jump(JEQ, AUDIT_ARCH_NATIVE, 1, 0));
            p.push(stmt(RET, SECCOMP_RET_ALLOW));
            p.push(stmt(LD_ABS, OFFSET_NR));
            p.extend(native);
        }
        Self { program: p }
    }

    /// No filter on architectures strata has no system-call table for.
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    pub fn for_run() -> Self {
        Self { program: Vec::new() }
    }

    /// Installs the filter on the calling thread. Needs CAP_SYS_ADMIN in the current user
    /// namespace (no `no_new_privs` is set). Called in the forked child: no allocation.
    pub fn install(&self) -> std::io::Result<()> {
        if self.program.is_empty() {
            return Ok(());
        }
        let Ok(len) = u16::try_from(self.program.len()) else {
            return Err(std::io::Error::from_raw_os_error(libc::E2BIG));
        };
        let prog = libc::sock_fprog { len, filter: self.program.as_ptr().cast_mut() };
        // SAFETY: `prog` points at `self.program`, which outlives the call; the kernel copies
        // the program. SECCOMP_SET_MODE_FILTER with flags 0 takes exactly this argument.
        let rc = unsafe { libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, 0u32, &prog as *const libc::sock_fprog) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `f` in a forked child with the filter installed; returns the child's exit code.
    fn in_filtered_child(f: fn() -> i32) -> i32 {
        let filter = Filter::for_run();
        // SAFETY: the child only installs the filter (one syscall), makes the raw syscalls in
        // `f`, and leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork");
        if pid == 0 {
            if nix::unistd::geteuid().is_root() {
                if filter.install().is_err() {
                    // SAFETY: see above.
                    unsafe { libc::_exit(99) };
                }
            } else {
                // Unprivileged: installing needs no_new_privs.
                // SAFETY: a prctl on our own process.
                unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
                if filter.install().is_err() {
                    // SAFETY: see above.
                    unsafe { libc::_exit(99) };
                }
            }
            let code = f();
            // SAFETY: see above.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        assert!(libc::WIFEXITED(status), "child died: {status:#x}");
        libc::WEXITSTATUS(status)
    }

    fn errno_of(rc: libc::c_long) -> i32 {
        if rc == -1 { std::io::Error::last_os_error().raw_os_error().unwrap_or(0) } else { 0 }
    }

    #[test]
    fn namespaces_mounts_and_keyrings_are_refused() {
        fn probe() -> i32 {
            // SAFETY: raw syscalls with constant arguments; each fails or is harmless.
            unsafe {
                let checks = [
                    errno_of(libc::syscall(libc::SYS_unshare, libc::CLONE_NEWNS)) == libc::EPERM,
                    errno_of(libc::syscall(libc::SYS_mount, c"none".as_ptr(), c"/".as_ptr(), c"tmpfs".as_ptr(), 0, 0)) == libc::EPERM,
                    errno_of(libc::syscall(libc::SYS_keyctl, 0, 0, 0, 0, 0)) == libc::EPERM,
                    errno_of(libc::syscall(libc::SYS_clone3, 0, 0)) == libc::ENOSYS,
                    errno_of(libc::syscall(libc::SYS_personality, 0x0040_0000u64)) == libc::EPERM,
                    errno_of(libc::syscall(libc::SYS_getpid)) == 0,
                    errno_of(libc::syscall(libc::SYS_personality, 0xffff_ffffu64)) == 0,
                ];
                checks.iter().enumerate().find(|(_, ok)| !**ok).map_or(0, |(i, _)| 10 + i as i32)
            }
        }
        assert_eq!(in_filtered_child(probe), 0, "a check failed (10 + its index)");
    }

    #[test]
    fn plain_work_and_thread_clones_still_run() {
        fn probe() -> i32 {
            // A thread (clone without namespace flags) and a fork must work under the filter.
            let t = std::thread::spawn(|| 7);
            match t.join() {
                Ok(7) => {}
                _ => return 20,
            }
            // SAFETY: fork + _exit in the child, waitpid in the parent.
            unsafe {
                let pid = libc::fork();
                if pid == 0 {
                    libc::_exit(3);
                }
                let mut st = 0;
                libc::waitpid(pid, &mut st, 0);
                if libc::WEXITSTATUS(st) != 3 {
                    return 21;
                }
            }
            0
        }
        assert_eq!(in_filtered_child(probe), 0);
    }

    #[test]
    fn every_jump_lands_inside_the_program() {
        let f = Filter::for_run();
        for (i, ins) in f.program.iter().enumerate() {
            if ins.code == JA {
                assert!(i + 1 + (ins.k as usize) < f.program.len(), "instruction {i}");
            } else if ins.code != RET {
                assert!(i + 1 + (ins.jt as usize) < f.program.len() && i + 1 + (ins.jf as usize) < f.program.len(), "instruction {i}");
            }
        }
        assert_eq!(f.program.last().map(|i| i.code), Some(RET), "ends in a return");
    }
}
