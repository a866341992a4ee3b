//! End to end: a root RUN is a sandbox, not a chroot. Each test builds on the busybox base
//! from the local registry with the real strata binary, attacks the host from a RUN (the
//! double-chroot escape, mount, unshare, /proc/sysrq-trigger, a device node of the host's
//! disk) and asserts that a sentinel outside the build stays untouched and that every
//! attempt was refused; the RUN's capabilities and seccomp state are read from its own
//! /proc/self/status and compared with Docker's defaults.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use strata_tests::*;

/// Docker's default capability set, as /proc/<pid>/status prints it.
const DOCKER_CAPS: &str = "00000000a80425fb";

fn root_only(test: &str) -> Option<TestEnv> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        strata_test_support::skip(test, "needs root (chroot isolation)");
        return None;
    }
    test_env(test)
}

/// The value of `field` (e.g. `CapEff:`) in a saved /proc/self/status.
fn status_field(status: &str, field: &str) -> String {
    status.lines().find_map(|l| l.strip_prefix(field)).map(|v| v.trim().to_string()).unwrap_or_else(|| panic!("no {field} in:\n{status}"))
}

#[test]
fn root_run_keeps_only_dockers_capabilities_under_a_seccomp_filter() {
    let Some(env) = root_only("root_run_keeps_only_dockers_capabilities_under_a_seccomp_filter") else { return };
    let case = LayoutCase::new(
        "ARG BASE\nFROM $BASE\n\
         RUN cat /proc/self/status > /status-root && mkdir -m 777 /out\n\
         USER 1000:1000\n\
         RUN cat /proc/self/status > /out/status-user\n",
    );
    let run = case.build(&env, &[], &[]);
    assert!(run.ok, "build failed:\n{}", run.stderr);
    let img = case.unpack();
    let root = std::fs::read_to_string(img.rootfs.join("status-root")).expect("status-root");
    for field in ["CapEff:", "CapPrm:", "CapBnd:"] {
        assert_eq!(status_field(&root, field), DOCKER_CAPS, "root {field}");
    }
    assert_eq!(status_field(&root, "CapInh:"), "0000000000000000");
    assert_eq!(status_field(&root, "CapAmb:"), "0000000000000000");
    assert_eq!(status_field(&root, "Seccomp:"), "2", "a seccomp filter is installed");
    assert_eq!(status_field(&root, "NoNewPrivs:"), "0", "setuid programs keep working, as under Docker");
    let user = std::fs::read_to_string(img.rootfs.join("out/status-user")).expect("status-user");
    assert_eq!(status_field(&user, "CapEff:"), "0000000000000000", "a non-root RUN has no capabilities");
    assert_eq!(status_field(&user, "CapPrm:"), "0000000000000000");
    assert_eq!(status_field(&user, "CapBnd:"), DOCKER_CAPS);
}

/// The classic double-chroot escape: chroot into a subdirectory without entering it, climb
/// with `..`, chroot there. Under a plain chroot this reaches the host's `/`; after
/// `pivot_root` with the old root detached it reaches only the image's.
const ESCAPE_C: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc < 2) return 2;
    mkdir("/jail", 0755);
    if (chroot("/jail") != 0) perror("chroot jail");
    for (int i = 0; i < 256; i++) chdir("..");
    if (chroot(".") != 0) perror("chroot .");
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/sentinel", argv[1]);
    if (stat(path, &st) == 0) printf("ESCAPED: the host's sentinel is visible\n");
    snprintf(path, sizeof path, "%s/owned", argv[1]);
    int fd = open(path, O_CREAT | O_WRONLY, 0644);
    if (fd >= 0) { write(fd, "owned\n", 6); close(fd); printf("ESCAPED: wrote %s\n", path); }
    printf("escape attempt done\n");
    return 0;
}
"#;

/// Compiles the escape program statically into `dir/escape`; None (after a skip message)
/// without a C compiler that links statically.
fn compile_escape(dir: &Path, test: &str) -> Option<PathBuf> {
    let src = dir.join("escape.c");
    std::fs::write(&src, ESCAPE_C).expect("write escape.c");
    let bin = dir.join("escape");
    let ok = Command::new("gcc").args(["-static", "-O0", "-o"]).arg(&bin).arg(&src).status().is_ok_and(|s| s.success());
    std::fs::remove_file(&src).expect("rm escape.c");
    if !ok {
        strata_test_support::skip(test, "gcc -static is not available (install gcc and libc6-dev)");
        return None;
    }
    Some(bin)
}

#[test]
fn attacks_from_a_root_run_do_not_reach_the_host() {
    let test = "attacks_from_a_root_run_do_not_reach_the_host";
    let Some(env) = root_only(test) else { return };
    let sentinel_dir = tempfile::Builder::new().prefix("strata-sentinel-").tempdir_in("/tmp").expect("sentinel dir");
    let sentinel = sentinel_dir.path().join("sentinel");
    std::fs::write(&sentinel, "untouched\n").expect("sentinel");
    let host = sentinel_dir.path().display().to_string();
    // The host's root filesystem as a block device number: a RUN that could open it could
    // read every file of the machine.
    let root_dev = std::fs::metadata("/").expect("stat /").dev();
    let (major, minor) = (libc::major(root_dev), libc::minor(root_dev));
    let case = LayoutCase::new(&format!(
        "ARG BASE\nFROM $BASE\n\
         COPY escape /escape\n\
         RUN /escape {host} > /r-escape 2>&1; \
             ( mount -t tmpfs none /mnt && echo MOUNTED || echo refused ) > /r-mount 2>&1; \
             ( unshare -m true && echo UNSHARED || echo refused ) > /r-unshare 2>&1; \
             ( echo h > /proc/sysrq-trigger && echo WROTE-SYSRQ || echo refused ) > /r-sysrq 2>&1; \
             ( mknod /hostdisk b {major} {minor} ; head -c 512 /hostdisk > /dev/null && echo READ-HOST-DISK || echo refused ) > /r-mknod 2>&1; \
             rm -f /hostdisk; ls /dev > /r-dev; \
             ( echo pwned > {host}/owned-directly && echo WROTE-HOST || echo refused ) > /r-direct 2>&1\n\
         RUN --mount=type=cache,target=/cache ( mknod /cache/disk b {major} {minor} ; head -c 512 /cache/disk > /dev/null && echo READ-HOST-DISK || echo refused ) > /r-cache-mknod 2>&1; rm -f /cache/disk\n"
    ));
    let Some(_) = compile_escape(&case.ctx(), test) else { return };
    let run = case.build(&env, &[], &[]);
    assert!(run.ok, "build failed:\n{}", run.stderr);
    let img = case.unpack();
    let read = |name: &str| std::fs::read_to_string(img.rootfs.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let escape = read("r-escape");
    assert!(escape.contains("escape attempt done") && !escape.contains("ESCAPED"), "double chroot: {escape}");
    for (file, what) in [
        ("r-mount", "mount"),
        ("r-unshare", "unshare"),
        ("r-sysrq", "sysrq-trigger"),
        ("r-mknod", "host disk"),
        ("r-direct", "host path"),
        ("r-cache-mknod", "host disk through a cache mount"),
    ] {
        let text = read(file);
        assert!(text.trim_end().ends_with("refused"), "{what} was not refused: {text}");
    }
    let dev: Vec<String> = read("r-dev").lines().map(str::to_string).collect();
    for name in &dev {
        assert!(
            ["fd", "full", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin", "stdout", "tty", "urandom", "zero"].contains(&name.as_str()),
            "/dev holds only the minimal set, not the host's: {dev:?}"
        );
    }
    assert_eq!(std::fs::read_to_string(&sentinel).expect("sentinel"), "untouched\n", "the sentinel is untouched");
    let left: Vec<_> = std::fs::read_dir(sentinel_dir.path()).expect("ls").flatten().map(|e| e.file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from("sentinel")], "nothing was written beside the sentinel");
}
