//! The mount plan a RUN gets: /proc, a minimal /dev, read-only /sys, and the host's
//! resolv.conf and hosts, all inside a private mount namespace.
//!
//! Every path is turned into a `CString` before `fork`, so the child only makes syscalls.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// One step of the mount plan, run in the child after `unshare(CLONE_NEWNS)`.
#[derive(Debug)]
pub enum MountStep {
    /// mount(2); `optional` steps may fail without failing the RUN.
    Mount { source: Option<CString>, target: CString, fstype: Option<CString>, flags: libc::c_ulong, data: Option<CString>, optional: bool },
    /// Create an empty file to bind a device onto.
    Touch(CString),
    /// Create a directory.
    Mkdir(CString, libc::mode_t),
    /// Create a symlink `link -> target`.
    Symlink { target: CString, link: CString },
    /// Write a file with these bytes and mode (heredoc scripts under /dev/pipes, secrets).
    WriteFile { path: CString, content: Vec<u8>, mode: libc::mode_t },
    /// chown(2) (secret files get the mount's uid/gid).
    Chown { path: CString, uid: libc::uid_t, gid: libc::gid_t },
    /// Try the first step; when it fails, the second.
    Either(Box<MountStep>, Box<MountStep>),
    /// Bring the loopback interface up (in a fresh network namespace it starts down).
    LoopbackUp,
}

/// Flags a bind mount inherits from the filesystem under `path`. In a user namespace they
/// are locked: a read-only remount that drops them fails with EPERM, so it must repeat them.
pub fn locked_flags(path: &Path) -> libc::c_ulong {
    let mask = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC | libc::MS_NOATIME | libc::MS_NODIRATIME | libc::MS_RELATIME;
    // statvfs's ST_* flag values equal the MS_* mount flags on Linux.
    nix::sys::statvfs::statvfs(path).map_or(0, |s| s.flags().bits() as libc::c_ulong & mask)
}

/// Steps that bind `source` onto `target` (both host paths), read-only if asked, and always
/// `nodev`: a device node made in a cache or bind mount must not open the host's devices.
pub fn bind_steps(source: &Path, target: &Path, readonly: bool) -> Vec<MountStep> {
    let readonly_flag = if readonly { libc::MS_RDONLY } else { 0 };
    vec![
        MountStep::Mount { source: Some(cpath(source)), target: cpath(target), fstype: None, flags: libc::MS_BIND | libc::MS_REC, data: None, optional: false },
        MountStep::Mount {
            source: None,
            target: cpath(target),
            fstype: None,
            flags: libc::MS_BIND | libc::MS_REMOUNT | libc::MS_NODEV | readonly_flag | locked_flags(source),
            data: None,
            optional: false,
        },
    ]
}

/// A tmpfs on `target` with these `mode=,size=` options.
pub fn tmpfs_step(target: &Path, flags: libc::c_ulong, data: &str) -> MountStep {
    MountStep::Mount { source: Some(cstr("tmpfs")), target: cpath(target), fstype: Some(cstr("tmpfs")), flags, data: Some(cstr(data)), optional: false }
}

/// Writes `content` to `path` with `mode`, owned by `uid:gid`.
pub fn file_steps(path: &Path, content: &[u8], mode: u32, uid: u32, gid: u32) -> Vec<MountStep> {
    vec![MountStep::WriteFile { path: cpath(path), content: content.to_vec(), mode: mode as libc::mode_t }, MountStep::Chown { path: cpath(path), uid, gid }]
}

pub fn cpath(p: &Path) -> CString {
    // Paths come from the filesystem and never hold NUL bytes; an empty CString only makes a syscall fail.
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

fn cstr(s: &str) -> CString {
    CString::new(s).unwrap_or_default()
}

/// The mounts for a RUN in `rootfs`.
pub fn mount_plan(rootfs: &Path, scripts: &[(String, String)]) -> Vec<MountStep> {
    use MountStep::*;
    let mut steps = Vec::new();
    let nosuid_nodev_noexec = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    // A fresh proc for the RUN's own PID namespace; where the kernel refuses one (a user
    // namespace whose /proc has masked paths), the host's, as buildah does.
    steps.push(Either(
        Box::new(Mount {
            source: Some(cstr("proc")),
            target: cpath(&rootfs.join("proc")),
            fstype: Some(cstr("proc")),
            flags: nosuid_nodev_noexec,
            data: None,
            optional: false,
        }),
        Box::new(Mount {
            source: Some(cstr("/proc")),
            target: cpath(&rootfs.join("proc")),
            fstype: None,
            flags: libc::MS_BIND | libc::MS_REC,
            data: None,
            optional: false,
        }),
    ));
    // sysfs needs the network namespace to be ours; rootless with the host network it is not.
    steps.push(Either(
        Box::new(Mount {
            source: Some(cstr("sysfs")),
            target: cpath(&rootfs.join("sys")),
            fstype: Some(cstr("sysfs")),
            flags: nosuid_nodev_noexec | libc::MS_RDONLY,
            data: None,
            optional: false,
        }),
        Box::new(Mount {
            source: Some(cstr("/sys")),
            target: cpath(&rootfs.join("sys")),
            fstype: None,
            flags: libc::MS_BIND | libc::MS_REC,
            data: None,
            optional: true,
        }),
    ));
    steps.extend(proc_guard_steps(rootfs));
    let dev = rootfs.join("dev");
    steps.push(Mount {
        source: Some(cstr("tmpfs")),
        target: cpath(&dev),
        fstype: Some(cstr("tmpfs")),
        flags: libc::MS_NOSUID | libc::MS_NOEXEC | libc::MS_NODEV,
        data: Some(cstr("mode=755,size=65536k")),
        optional: false,
    });
    for name in ["null", "zero", "full", "random", "urandom", "tty"] {
        steps.push(Touch(cpath(&dev.join(name))));
        steps.push(Mount {
            source: Some(cstr(&format!("/dev/{name}"))),
            target: cpath(&dev.join(name)),
            fstype: None,
            flags: libc::MS_BIND,
            data: None,
            optional: name == "tty",
        });
    }
    steps.push(Mkdir(cpath(&dev.join("pts")), 0o755));
    steps.push(Mount {
        source: Some(cstr("devpts")),
        target: cpath(&dev.join("pts")),
        fstype: Some(cstr("devpts")),
        flags: libc::MS_NOSUID | libc::MS_NOEXEC,
        data: Some(cstr("newinstance,ptmxmode=0666,mode=0620")),
        optional: true,
    });
    steps.push(Symlink { target: cstr("pts/ptmx"), link: cpath(&dev.join("ptmx")) });
    steps.push(Mkdir(cpath(&dev.join("shm")), 0o1777));
    steps.push(Mount {
        source: Some(cstr("shm")),
        target: cpath(&dev.join("shm")),
        fstype: Some(cstr("tmpfs")),
        flags: nosuid_nodev_noexec,
        data: Some(cstr("mode=1777,size=65536k")),
        optional: true,
    });
    for (link, target) in [("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")] {
        steps.push(Symlink { target: cstr(target), link: cpath(&dev.join(link)) });
    }
    if !scripts.is_empty() {
        steps.push(Mkdir(cpath(&dev.join("pipes")), 0o755));
        steps.extend(script_steps(&dev.join("pipes"), scripts));
    }
    // The host's name resolution, read-only, over files that exist in the image (the caller
    // creates missing ones and removes them afterwards, so they never reach a layer).
    for file in ["etc/resolv.conf", "etc/hosts"] {
        let host = Path::new("/").join(file);
        let target = rootfs.join(file);
        if host.exists() && std::fs::symlink_metadata(&target).is_ok_and(|m| m.is_file()) {
            steps.push(Mount { source: Some(cpath(&host)), target: cpath(&target), fstype: None, flags: libc::MS_BIND, data: None, optional: true });
            steps.push(Mount {
                source: None,
                target: cpath(&target),
                fstype: None,
                flags: libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | locked_flags(&host),
                data: None,
                optional: true,
            });
        }
    }
    steps
}

/// What Docker hides of /proc and /sys from a container (runc's `maskedPaths`).
pub const MASKED_PATHS: &[&str] = &[
    "proc/asound",
    "proc/acpi",
    "proc/kcore",
    "proc/keys",
    "proc/latency_stats",
    "proc/timer_list",
    "proc/timer_stats",
    "proc/sched_debug",
    "proc/scsi",
    "sys/firmware",
    "sys/devices/virtual/powercap",
];

/// What Docker leaves readable but not writable (runc's `readonlyPaths`).
pub const READONLY_PATHS: &[&str] = &["proc/bus", "proc/fs", "proc/irq", "proc/sys", "proc/sysrq-trigger"];

/// Masks and read-only binds over the RUN's /proc and /sys, each skipped where the kernel
/// has no such path: a file masked by /dev/null, a directory by an empty read-only tmpfs.
pub fn proc_guard_steps(rootfs: &Path) -> Vec<MountStep> {
    use MountStep::*;
    let mut steps = Vec::new();
    for rel in MASKED_PATHS {
        let target = cpath(&rootfs.join(rel));
        steps.push(Either(
            Box::new(Mount { source: Some(cstr("/dev/null")), target: target.clone(), fstype: None, flags: libc::MS_BIND, data: None, optional: false }),
            Box::new(Mount {
                source: Some(cstr("tmpfs")),
                target,
                fstype: Some(cstr("tmpfs")),
                flags: libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                data: None,
                optional: true,
            }),
        ));
    }
    for rel in READONLY_PATHS {
        let target = cpath(&rootfs.join(rel));
        steps.push(Mount {
            source: Some(target.clone()),
            target: target.clone(),
            fstype: None,
            flags: libc::MS_BIND | libc::MS_REC,
            data: None,
            optional: true,
        });
        steps.push(Mount {
            source: None,
            target,
            fstype: None,
            flags: libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
            data: None,
            optional: true,
        });
    }
    steps
}

/// Executable heredoc scripts in their own tmpfs at `pipes` (an existing directory): /dev
/// is noexec, and the scripts must run.
pub fn script_steps(pipes: &Path, scripts: &[(String, String)]) -> Vec<MountStep> {
    let mut steps = vec![MountStep::Mount {
        source: Some(cstr("tmpfs")),
        target: cpath(pipes),
        fstype: Some(cstr("tmpfs")),
        flags: libc::MS_NOSUID | libc::MS_NODEV,
        data: Some(cstr("mode=755,size=16384k")),
        optional: false,
    }];
    for (name, content) in scripts {
        let file = pipes.join(name.replace('/', "_"));
        steps.push(MountStep::WriteFile { path: cpath(&file), content: content.as_bytes().to_vec(), mode: 0o755 });
    }
    steps
}

/// Runs the plan. Called in the forked child: only syscalls, no allocation.
pub fn apply_mount_plan(steps: &[MountStep]) -> std::io::Result<()> {
    for step in steps {
        if apply_step(step) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn apply_step(step: &MountStep) -> libc::c_int {
    // SAFETY: every pointer comes from a CString or Vec that outlives the call; the kernel
    // copies what it needs. These are plain syscalls with no memory handed over.
    unsafe {
        match step {
            MountStep::Mount { source, target, fstype, flags, data, optional } => {
                let rc = libc::mount(
                    source.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
                    target.as_ptr(),
                    fstype.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
                    *flags,
                    data.as_ref().map_or(std::ptr::null(), |s| s.as_ptr().cast()),
                );
                if *optional { 0 } else { rc }
            }
            MountStep::Either(first, second) => {
                if apply_step(first) == 0 {
                    0
                } else {
                    apply_step(second)
                }
            }
            MountStep::Touch(path) => {
                let fd = libc::open(path.as_ptr(), libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC, 0o644);
                if fd >= 0 {
                    libc::close(fd);
                    0
                } else {
                    -1
                }
            }
            MountStep::Mkdir(path, mode) => {
                libc::mkdir(path.as_ptr(), *mode);
                0
            }
            MountStep::Symlink { target, link } => {
                libc::symlink(target.as_ptr(), link.as_ptr());
                0
            }
            MountStep::Chown { path, uid, gid } => libc::chown(path.as_ptr(), *uid, *gid),
            MountStep::LoopbackUp => loopback_up(),
            MountStep::WriteFile { path, content, mode } => {
                let fd = libc::open(path.as_ptr(), libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC | libc::O_CLOEXEC, *mode);
                if fd < 0 {
                    -1
                } else {
                    let mut written = 0usize;
                    while written < content.len() {
                        let n = libc::write(fd, content[written..].as_ptr().cast(), content.len() - written);
                        if n <= 0 {
                            break;
                        }
                        written += n as usize;
                    }
                    libc::fchmod(fd, *mode);
                    libc::close(fd);
                    if written == content.len() { 0 } else { -1 }
                }
            }
        }
    }
}

/// `ip link set lo up` with one ioctl.
fn loopback_up() -> libc::c_int {
    // SAFETY: a zeroed ifreq is a valid value; the name is written within its bounds and the
    // socket is closed on every path.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return -1;
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (i, b) in b"lo".iter().enumerate() {
            req.ifr_name[i] = *b as libc::c_char;
        }
        req.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        let rc = libc::ioctl(fd, libc::SIOCSIFFLAGS as _, &req);
        libc::close(fd);
        rc
    }
}
