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
    /// Write a file with these bytes and mode (heredoc scripts under /dev/pipes).
    WriteFile { path: CString, content: Vec<u8>, mode: libc::mode_t },
}

fn cpath(p: &Path) -> CString {
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
    steps.push(Mount {
        source: Some(cstr("proc")),
        target: cpath(&rootfs.join("proc")),
        fstype: Some(cstr("proc")),
        flags: nosuid_nodev_noexec,
        data: None,
        optional: false,
    });
    steps.push(Mount {
        source: Some(cstr("sysfs")),
        target: cpath(&rootfs.join("sys")),
        fstype: Some(cstr("sysfs")),
        flags: nosuid_nodev_noexec | libc::MS_RDONLY,
        data: None,
        optional: true,
    });
    let dev = rootfs.join("dev");
    steps.push(Mount {
        source: Some(cstr("tmpfs")),
        target: cpath(&dev),
        fstype: Some(cstr("tmpfs")),
        flags: libc::MS_NOSUID | libc::MS_NOEXEC,
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
        // Its own tmpfs: /dev is noexec, and the scripts must run.
        steps.push(Mount {
            source: Some(cstr("tmpfs")),
            target: cpath(&dev.join("pipes")),
            fstype: Some(cstr("tmpfs")),
            flags: libc::MS_NOSUID | libc::MS_NODEV,
            data: Some(cstr("mode=755,size=16384k")),
            optional: false,
        });
        for (name, content) in scripts {
            let file = dev.join("pipes").join(name.replace('/', "_"));
            steps.push(WriteFile { path: cpath(&file), content: content.as_bytes().to_vec(), mode: 0o755 });
        }
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
                flags: libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY,
                data: None,
                optional: true,
            });
        }
    }
    steps
}

/// Runs the plan. Called in the forked child: only syscalls, no allocation.
pub fn apply_mount_plan(steps: &[MountStep]) -> std::io::Result<()> {
    for step in steps {
        // SAFETY: every pointer comes from a CString that outlives the call; the kernel copies
        // the strings. These are plain syscalls with no memory handed over.
        let rc = unsafe {
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
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
