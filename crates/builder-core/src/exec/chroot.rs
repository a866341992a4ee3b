//! `chroot` isolation, as root: a private mount namespace with /proc, a minimal /dev and
//! read-only /sys, `chroot(2)` into the rootfs, then the image's user.

use super::cleanup::kill_processes_rooted_at;
use super::devices::{apply_mount_plan, mount_plan};
use super::{RunSpec, RunStatus, DEFAULT_PATH};
use crate::rootfs::resolve_in_root;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Mount points and files created for the RUN only, removed afterwards so no layer sees them.
#[derive(Debug, Default)]
struct Scaffolding {
    dirs: Vec<PathBuf>,
    files: Vec<PathBuf>,
}

impl Scaffolding {
    fn prepare(rootfs: &Path) -> io::Result<Self> {
        let mut made = Self::default();
        for dir in ["proc", "sys", "dev"] {
            let path = rootfs.join(dir);
            match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(io::Error::other(format!(
                        "the image's /{dir} is not a directory; refusing to mount over it"
                    )))
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    std::fs::create_dir(&path)?;
                    made.dirs.push(path);
                }
                Err(e) => return Err(e),
            }
        }
        // resolv.conf and hosts are bind targets; create them only inside a real /etc.
        if std::fs::symlink_metadata(rootfs.join("etc")).is_ok_and(|m| m.is_dir()) {
            for file in ["etc/resolv.conf", "etc/hosts"] {
                let path = rootfs.join(file);
                if std::fs::symlink_metadata(&path).is_err() {
                    std::fs::File::create(&path)?;
                    made.files.push(path);
                }
            }
        }
        Ok(made)
    }

    fn remove(self) {
        for f in self.files {
            let _ = std::fs::remove_file(f);
        }
        for d in self.dirs {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// Finds `argv0` in the image's PATH (inside the rootfs); keeps it as is if not found.
fn lookup_in_image(rootfs: &Path, argv0: &str, path_var: &str) -> String {
    if argv0.contains('/') {
        return argv0.to_string();
    }
    for dir in path_var.split(':').filter(|d| d.starts_with('/')) {
        let candidate = format!("{}/{argv0}", dir.trim_end_matches('/'));
        if let Ok(host) = resolve_in_root(rootfs, &candidate) {
            if host.is_file() {
                return candidate;
            }
        }
    }
    argv0.to_string()
}

/// Runs `spec` with chroot isolation and waits for it; every process it left is killed.
pub fn run_chroot(spec: &RunSpec) -> io::Result<RunStatus> {
    let Some(argv0) = spec.argv.first() else {
        return Err(io::Error::other("empty command"));
    };
    let path_var = spec.env.iter().find(|(k, _)| k == "PATH").map_or(DEFAULT_PATH, |(_, v)| v.as_str());
    let program = lookup_in_image(&spec.rootfs, argv0, path_var);

    let scaffolding = Scaffolding::prepare(&spec.rootfs)?;
    let plan = mount_plan(&spec.rootfs, &spec.scripts);
    let root = CString::new(spec.rootfs.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let cwd = CString::new(spec.cwd.as_bytes()).map_err(io::Error::other)?;
    let groups: Vec<libc::gid_t> = spec.groups.clone();
    let (uid, gid) = (spec.uid, spec.gid);
    let mut unshare_flags = libc::CLONE_NEWNS | libc::CLONE_NEWUTS;
    if spec.network_none {
        unshare_flags |= libc::CLONE_NEWNET;
    }

    let mut cmd = Command::new(&program);
    cmd.args(&spec.argv[1..]).env_clear().envs(spec.env.iter().map(|(k, v)| (k, v)));
    if !spec.env.iter().any(|(k, _)| k == "PATH") {
        cmd.env("PATH", DEFAULT_PATH);
    }
    // SAFETY: the closure runs in the forked child before exec. It only makes syscalls on data
    // prepared before the fork (CStrings, a Vec of gids), so it neither allocates nor takes locks.
    unsafe {
        cmd.pre_exec(move || {
            if libc::unshare(unshare_flags) != 0 {
                return Err(io::Error::last_os_error());
            }
            // Nothing mounted from here on may propagate back to the host.
            if libc::mount(std::ptr::null(), c"/".as_ptr(), std::ptr::null(), libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()) != 0 {
                return Err(io::Error::last_os_error());
            }
            apply_mount_plan(&plan)?;
            if libc::chroot(root.as_ptr()) != 0 || libc::chdir(c"/".as_ptr()) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::chdir(cwd.as_ptr()) != 0 {
                return Err(io::Error::last_os_error());
            }
            libc::setsid();
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0 || libc::setgid(gid) != 0 || libc::setuid(uid) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let result = cmd.spawn().and_then(|mut child| child.wait());
    kill_processes_rooted_at(&spec.rootfs);
    scaffolding.remove();
    let status = result?;
    Ok(match (status.code(), status.signal()) {
        (Some(code), _) => RunStatus::Exited(code),
        (None, Some(sig)) => RunStatus::Signaled(sig),
        (None, None) => RunStatus::Exited(-1),
    })
}
