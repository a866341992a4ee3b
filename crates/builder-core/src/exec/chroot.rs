//! The sandbox for `chroot` isolation (as root, or as root of a user namespace for
//! `rootless`), as runc builds a container: private mount, UTS, IPC and PID namespaces (and
//! network for `--network=none`), the rootfs bind-mounted `nodev` with /proc (sensitive
//! files masked, kernel knobs read-only), a minimal /dev and read-only /sys, the RUN's
//! `--mount`s, then `pivot_root` into it with the host's tree detached, the capability
//! bounding set cut to Docker's default, a seccomp filter like Docker's, and the image's
//! user with only Docker's default capabilities (none for a non-root user).
//!
//! The child forks once more after `unshare(CLONE_NEWPID)`: the grandchild is PID 1 of the
//! new namespace and becomes the command; the middle process only waits and passes its exit
//! status on. Both die with strata (`PR_SET_PDEATHSIG`), and when PID 1 exits the kernel
//! kills every process left in the namespace, which is how "every process of the RUN is
//! killed when it ends" holds even for daemons.

use super::capabilities;
use super::cleanup::kill_processes_rooted_at;
use super::devices::{MountStep, apply_mount_plan, bind_steps, file_steps, mount_plan, tmpfs_step};
use super::seccomp::Filter;
use super::stubs::Stubs;
use super::{DEFAULT_PATH, RunMountSource, RunSpec, RunStatus};
use crate::rootfs::resolve_in_root;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::Command;

/// Finds `argv0` in the image's PATH (inside the rootfs); keeps it as is if not found.
fn lookup_in_image(rootfs: &Path, argv0: &str, path_var: &str) -> String {
    if argv0.contains('/') {
        return argv0.to_string();
    }
    for dir in path_var.split(':').filter(|d| d.starts_with('/')) {
        let candidate = format!("{}/{argv0}", dir.trim_end_matches('/'));
        if resolve_in_root(rootfs, &candidate).is_ok_and(|host| host.is_file()) {
            return candidate;
        }
    }
    argv0.to_string()
}

/// Creates the mount points a RUN needs (removed again by `Stubs::remove`).
fn prepare_stubs(spec: &RunSpec, stubs: &mut Stubs) -> io::Result<()> {
    for dir in ["proc", "sys", "dev"] {
        let path = spec.rootfs.join(dir);
        if std::fs::symlink_metadata(&path).is_ok_and(|m| !m.is_dir()) {
            return Err(io::Error::other(format!("the image's /{dir} is not a directory; refusing to mount over it")));
        }
        stubs.dir(&spec.rootfs, dir)?;
    }
    // resolv.conf and hosts are bind targets; create them only inside a real /etc.
    if std::fs::symlink_metadata(spec.rootfs.join("etc")).is_ok_and(|m| m.is_dir()) {
        for file in ["etc/resolv.conf", "etc/hosts"] {
            if std::fs::symlink_metadata(spec.rootfs.join(file)).is_err() {
                stubs.file(&spec.rootfs, file)?;
            }
        }
    }
    Ok(())
}

/// The steps for the RUN's `--mount`s, creating their targets as stubs.
fn user_mount_steps(spec: &RunSpec, stubs: &mut Stubs) -> io::Result<Vec<MountStep>> {
    let mut steps = Vec::new();
    let mut staged = false;
    for (n, m) in spec.mounts.iter().enumerate() {
        match &m.source {
            RunMountSource::Bind { host, readonly } => {
                let target = if host.is_dir() { stubs.dir(&spec.rootfs, &m.target)? } else { stubs.file(&spec.rootfs, &m.target)? };
                steps.extend(bind_steps(host, &target, *readonly));
            }
            RunMountSource::Tmpfs { size } => {
                let target = stubs.dir(&spec.rootfs, &m.target)?;
                let data = match size {
                    Some(s) => format!("mode=755,size={s}"),
                    None => "mode=755".to_string(),
                };
                steps.push(tmpfs_step(&target, libc::MS_NOSUID | libc::MS_NODEV, &data));
            }
            RunMountSource::File { content, uid, gid, mode } => {
                let Some(staging) = &spec.staging else {
                    return Err(io::Error::other("a secret mount needs a staging directory"));
                };
                if !staged {
                    // Private to this RUN's mount namespace: the secret never touches a disk.
                    steps.push(tmpfs_step(staging, libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC, "mode=700,size=16384k"));
                    staged = true;
                }
                let file = staging.join(format!("{n}"));
                steps.extend(file_steps(&file, content, *mode, *uid, *gid));
                let target = stubs.file(&spec.rootfs, &m.target)?;
                steps.push(MountStep::Mount {
                    source: Some(super::devices::cpath(&file)),
                    target: super::devices::cpath(&target),
                    fstype: None,
                    flags: libc::MS_BIND,
                    data: None,
                    optional: false,
                });
                steps.push(MountStep::Mount {
                    source: None,
                    target: super::devices::cpath(&target),
                    fstype: None,
                    flags: libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    data: None,
                    optional: false,
                });
            }
        }
    }
    Ok(steps)
}

/// The rootfs bound onto itself (a mount point, as `pivot_root` needs) and made `nodev`:
/// a device node made with `mknod` in the RUN cannot be opened (Docker's device cgroup
/// does the same); the RUN's /dev/null and friends are bind mounts of their own.
fn root_steps(rootfs: &Path) -> Vec<MountStep> {
    let target = super::devices::cpath(rootfs);
    vec![
        MountStep::Mount {
            source: Some(target.clone()),
            target: target.clone(),
            fstype: None,
            flags: libc::MS_BIND | libc::MS_REC,
            data: None,
            optional: false,
        },
        MountStep::Mount {
            source: None,
            target,
            fstype: None,
            flags: libc::MS_BIND | libc::MS_REMOUNT | libc::MS_NODEV | super::devices::locked_flags(rootfs),
            data: None,
            optional: false,
        },
    ]
}

/// Makes `root` (a mount point) this process's `/` with the host's tree detached, as runc
/// does: `pivot_root(".", ".")` then a lazy unmount of the old root stacked on top. Where
/// the current root cannot be pivoted (an initramfs, strata itself chroot'ed) the rootfs is
/// moved over `/` instead and entered with `chroot`. Called in the forked child.
///
/// # Safety
/// Syscalls only, on a CString prepared before the fork.
unsafe fn enter_root(root: &CString) -> io::Result<()> {
    // SAFETY: plain syscalls on NUL-terminated strings that outlive them.
    unsafe {
        if libc::chdir(root.as_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) == 0 {
            if libc::umount2(c".".as_ptr(), libc::MNT_DETACH) != 0 {
                return Err(io::Error::last_os_error());
            }
        } else if libc::mount(c".".as_ptr(), c"/".as_ptr(), std::ptr::null(), libc::MS_MOVE, std::ptr::null()) != 0 || libc::chroot(c".".as_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::chdir(c"/".as_ptr()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn status_of(status: std::process::ExitStatus) -> RunStatus {
    match (status.code(), status.signal()) {
        (Some(code), _) => RunStatus::Exited(code),
        (None, Some(sig)) => RunStatus::Signaled(sig),
        (None, None) => RunStatus::Exited(-1),
    }
}

/// In the middle process: wait for PID 1 of the RUN's namespace and end the same way.
///
/// # Safety
/// Called in a forked child; makes only async-signal-safe syscalls and never returns.
unsafe fn wait_and_mirror(pid: libc::pid_t) -> ! {
    // SAFETY: plain syscalls on our own process. Closing every inherited descriptor lets
    // std's exec-error pipe reach EOF once the grandchild has exec'd, so `spawn` returns.
    unsafe {
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
        let mut status = 0;
        loop {
            let rc = libc::waitpid(pid, &mut status, 0);
            if rc == pid {
                break;
            }
            if rc < 0 && *libc::__errno_location() != libc::EINTR {
                libc::_exit(127);
            }
        }
        if libc::WIFSIGNALED(status) {
            let sig = libc::WTERMSIG(status);
            libc::signal(sig, libc::SIG_DFL);
            libc::kill(libc::getpid(), sig);
            libc::_exit(128 + sig);
        }
        libc::_exit(libc::WEXITSTATUS(status))
    }
}

/// Runs `spec` with chroot isolation and waits for it; every process it left is killed.
pub fn run_chroot(spec: &RunSpec) -> io::Result<RunStatus> {
    let Some(argv0) = spec.argv.first() else {
        return Err(io::Error::other("empty command"));
    };
    let path_var = spec.env.iter().find(|(k, _)| k == "PATH").map_or(DEFAULT_PATH, |(_, v)| v.as_str());
    let program = lookup_in_image(&spec.rootfs, argv0, path_var);

    let mut stubs = Stubs::default();
    let prepared = prepare_stubs(spec, &mut stubs).and_then(|()| user_mount_steps(spec, &mut stubs));
    let user_steps = match prepared {
        Ok(s) => s,
        Err(e) => {
            stubs.remove();
            return Err(e);
        }
    };
    let mut plan = root_steps(&spec.rootfs);
    plan.extend(mount_plan(&spec.rootfs, &spec.scripts));
    plan.extend(user_steps);
    if spec.network_none {
        plan.push(MountStep::LoopbackUp);
    }
    let root = CString::new(spec.rootfs.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let cwd = CString::new(spec.cwd.as_bytes()).map_err(io::Error::other)?;
    let groups: Vec<libc::gid_t> = spec.groups.clone();
    let (uid, gid, rootless) = (spec.uid, spec.gid, spec.rootless);
    let mut unshare_flags = libc::CLONE_NEWNS | libc::CLONE_NEWUTS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC;
    if spec.network_none {
        unshare_flags |= libc::CLONE_NEWNET;
    }

    let filter = Filter::for_run();
    let last_cap = capabilities::last_cap();
    let strata_pid = std::process::id() as libc::pid_t;

    let mut cmd = Command::new(&program);
    cmd.args(&spec.argv[1..]).env_clear().envs(spec.env.iter().map(|(k, v)| (k, v)));
    if !spec.env.iter().any(|(k, _)| k == "PATH") {
        cmd.env("PATH", DEFAULT_PATH);
    }
    // SAFETY: the closure runs in the forked child before exec. It only makes syscalls on data
    // prepared before the fork (CStrings, Vecs), so it neither allocates nor takes locks.
    unsafe {
        cmd.pre_exec(move || {
            // If strata dies, the middle process goes with it (and PID 1 with that).
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            if libc::getppid() != strata_pid {
                return Err(io::Error::other("strata exited while starting the RUN"));
            }
            if libc::unshare(unshare_flags) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The new PID namespace applies to children only: fork its PID 1.
            let pid = libc::fork();
            if pid < 0 {
                return Err(io::Error::last_os_error());
            }
            if pid > 0 {
                wait_and_mirror(pid);
            }
            // If strata dies, the RUN goes with it.
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            // Nothing mounted from here on may propagate back to the host.
            if libc::mount(std::ptr::null(), c"/".as_ptr(), std::ptr::null(), libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()) != 0 {
                return Err(io::Error::last_os_error());
            }
            apply_mount_plan(&plan)?;
            enter_root(&root)?;
            if libc::chdir(cwd.as_ptr()) != 0 {
                return Err(io::Error::last_os_error());
            }
            // No exec from here on can regain a capability outside Docker's default set.
            capabilities::drop_bounding(capabilities::DOCKER_DEFAULT, last_cap)?;
            // Installed while CAP_SYS_ADMIN is still held, so no_new_privs is not needed and
            // setuid programs in the image keep working.
            filter.install()?;
            libc::setsid();
            // After a single-ID map the kernel forbids setgroups; the RUN keeps no extra groups.
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0 && !rootless {
                return Err(io::Error::last_os_error());
            }
            if libc::setgid(gid) != 0 || libc::setuid(uid) != 0 {
                return Err(io::Error::last_os_error());
            }
            capabilities::limit(capabilities::DOCKER_DEFAULT)?;
            Ok(())
        });
    }
    let result = cmd.spawn().and_then(|mut child| {
        // Killing the middle process kills PID 1 of the RUN's namespace (PDEATHSIG), and
        // with it every process of the RUN.
        let _tracked = spec.cancel.track(child.id(), false);
        child.wait()
    });
    kill_processes_rooted_at(&spec.rootfs);
    stubs.remove();
    Ok(status_of(result?))
}

/// `none` isolation: the build root is `/` of the container strata runs in. Only a private
/// mount namespace (for `--mount`s) and the image's user; every process in the RUN's
/// process group is killed when it ends.
pub fn run_none(spec: &RunSpec) -> io::Result<RunStatus> {
    let Some(argv0) = spec.argv.first() else {
        return Err(io::Error::other("empty command"));
    };
    let mut stubs = Stubs::default();
    let mut scripts = Vec::new();
    // Without CAP_SYS_ADMIN (a kaniko-style pod) mounts are emulated by copying.
    let namespaces = (spec.mounts.is_empty() && !spec.network_none) || super::can_create_namespaces();
    if spec.network_none && !namespaces {
        return Err(io::Error::other(
            "RUN --network=none needs a network namespace, which this container does not allow (no CAP_SYS_ADMIN); \
             give the build pod that capability, or drop --network=none",
        ));
    }
    let mut emulated = None;
    let mounted = if namespaces {
        user_mount_steps(spec, &mut stubs)
    } else {
        super::emulated_mounts::emulate(&spec.mounts).map(|e| {
            emulated = Some(e);
            Vec::new()
        })
    };
    let prepared = mounted.and_then(|steps| {
        if !spec.scripts.is_empty() {
            // Heredoc scripts at /dev/pipes, as under chroot, written straight into the
            // container's /dev (never captured), so no mount is needed.
            let pipes = stubs.dir(Path::new("/"), "/dev/pipes")?;
            for (name, content) in &spec.scripts {
                let file = pipes.join(name.replace('/', "_"));
                std::fs::write(&file, content)?;
                std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
                scripts.push(file);
            }
        }
        Ok(steps)
    });
    let cleanup = |stubs: Stubs, scripts: &[std::path::PathBuf], emulated: Option<super::emulated_mounts::Emulated>| {
        for f in scripts {
            let _ = std::fs::remove_file(f);
        }
        if let Some(e) = emulated {
            e.undo();
        }
        stubs.remove();
    };
    let plan = match prepared {
        Ok(p) => p,
        Err(e) => {
            cleanup(stubs, &scripts, emulated);
            return Err(e);
        }
    };
    let cwd = CString::new(spec.cwd.as_bytes()).map_err(io::Error::other)?;
    let groups: Vec<libc::gid_t> = spec.groups.clone();
    let (uid, gid, network_none) = (spec.uid, spec.gid, spec.network_none);
    let mut cmd = Command::new(argv0);
    cmd.args(&spec.argv[1..]).env_clear().envs(spec.env.iter().map(|(k, v)| (k, v)));
    // SAFETY: as in `run_chroot`: syscalls only, on data prepared before the fork.
    unsafe {
        cmd.pre_exec(move || {
            // Namespaces only when asked for: a kaniko-style container rarely has CAP_SYS_ADMIN.
            if network_none {
                if libc::unshare(libc::CLONE_NEWNET) != 0 {
                    return Err(io::Error::last_os_error());
                }
                super::devices::apply_mount_plan(&[MountStep::LoopbackUp])?;
            }
            if !plan.is_empty() {
                if libc::unshare(libc::CLONE_NEWNS) != 0 {
                    return Err(io::Error::last_os_error());
                }
                if libc::mount(std::ptr::null(), c"/".as_ptr(), std::ptr::null(), libc::MS_REC | libc::MS_PRIVATE, std::ptr::null()) != 0 {
                    return Err(io::Error::last_os_error());
                }
                apply_mount_plan(&plan)?;
            }
            if libc::chdir(cwd.as_ptr()) != 0 {
                return Err(io::Error::last_os_error());
            }
            libc::setpgid(0, 0);
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0 || libc::setgid(gid) != 0 || libc::setuid(uid) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let result = cmd.spawn().and_then(|mut child| {
        let pgid = child.id() as i32;
        let status = {
            let _tracked = spec.cancel.track(child.id(), true);
            child.wait()
        };
        // The whole process group, daemons included.
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), nix::sys::signal::Signal::SIGKILL);
        status
    });
    cleanup(stubs, &scripts, emulated);
    Ok(status_of(result?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::RunMount;

    #[test]
    fn none_runs_in_slash_with_mounts_and_kills_its_group() {
        if !nix::unistd::geteuid().is_root() {
            strata_test_support::skip("none_runs_in_slash_with_mounts_and_kills_its_group", "needs root (mount namespace)");
            return;
        }
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dir.path().join("src")).expect("mkdir");
        std::fs::write(dir.path().join("src/f"), "hello\n").expect("write");
        let target = dir.path().join("mnt").display().to_string();
        let out = dir.path().join("out").display().to_string();
        let marker = format!("sleep {}", 800_000 + std::process::id() % 100_000);
        let spec = RunSpec {
            rootfs: "/".into(),
            argv: vec!["/bin/sh".into(), "-c".into(), format!("cat {target}/f > {out}; ( {marker} & ) ; true")],
            env: vec![("PATH".into(), DEFAULT_PATH.into())],
            cwd: "/".into(),
            mounts: vec![RunMount { target: target.clone(), source: RunMountSource::Bind { host: dir.path().join("src"), readonly: true } }],
            ..Default::default()
        };
        assert_eq!(run_none(&spec).expect("run"), RunStatus::Exited(0));
        assert_eq!(std::fs::read_to_string(&out).expect("out"), "hello\n");
        assert!(!dir.path().join("mnt").exists(), "the mount target stub is removed");
        std::thread::sleep(std::time::Duration::from_millis(50));
        let left = std::fs::read_dir("/proc")
            .expect("/proc")
            .flatten()
            .filter(|e| std::fs::read(e.path().join("cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).replace('\0', " ").contains(&marker)))
            .count();
        assert_eq!(left, 0, "the RUN's background process is killed");
    }
}
