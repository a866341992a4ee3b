//! Whether strata runs inside a container, which `none` isolation requires: it builds into
//! `/` itself, so outside a throwaway container it would rewrite the host.

use std::path::Path;

/// What hints of a container were found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ContainerHints {
    /// `/.dockerenv` exists.
    pub dockerenv: bool,
    /// `/run/.containerenv` (podman, buildah) exists.
    pub containerenv: bool,
    /// The `container` environment variable (systemd's convention; podman, lxc).
    pub container_var: Option<String>,
    /// `/proc/1/cgroup` names docker, kubepods, containerd, lxc or libpod.
    pub cgroup: bool,
    /// `KUBERNETES_SERVICE_HOST` is set, as in every Kubernetes pod (with cgroup v2 and a
    /// cgroup namespace a pod's /proc/1/cgroup says only `0::/`).
    pub kubernetes: bool,
}

impl ContainerHints {
    /// Reads the hints below `root` (normally `/`), from `container_var` and from the
    /// environment's `KUBERNETES_SERVICE_HOST`.
    pub fn gather(root: &Path, container_var: Option<String>) -> Self {
        Self { kubernetes: std::env::var_os("KUBERNETES_SERVICE_HOST").is_some_and(|v| !v.is_empty()), ..Self::gather_files(root, container_var) }
    }

    /// The hints below `root` and from `container_var` only.
    fn gather_files(root: &Path, container_var: Option<String>) -> Self {
        let cgroup_text = std::fs::read_to_string(root.join("proc/1/cgroup")).unwrap_or_default();
        Self {
            dockerenv: root.join(".dockerenv").exists(),
            containerenv: root.join("run/.containerenv").exists(),
            container_var: container_var.filter(|v| !v.is_empty()),
            cgroup: ["docker", "kubepods", "containerd", "lxc", "libpod", "crio"].iter().any(|k| cgroup_text.contains(k)),
            kubernetes: false,
        }
    }

    /// Whether any hint says "container".
    pub fn in_container(&self) -> bool {
        self.dockerenv || self.containerenv || self.container_var.is_some() || self.cgroup || self.kubernetes
    }
}

/// Whether this process runs inside a container.
pub fn running_in_container() -> bool {
    ContainerHints::gather(Path::new("/"), std::env::var("container").ok()).in_container()
}

/// `--isolation none` asked for outside a container, without `--force`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--isolation none builds into / and would overwrite this machine's files; it runs only inside a \
     throwaway container (none detected: no /.dockerenv, /run/.containerenv, $container, $KUBERNETES_SERVICE_HOST or container cgroup). \
     Use --isolation chroot (root) or rootless, or pass --force if this really is a disposable machine"
)]
pub struct NotInContainer;

/// Refuses `none` isolation outside a container unless `force`; the message names the fix.
pub fn check_none_isolation(force: bool) -> Result<(), NotInContainer> {
    check_with(&ContainerHints::gather(Path::new("/"), std::env::var("container").ok()), force)
}

fn check_with(hints: &ContainerHints, force: bool) -> Result<(), NotInContainer> {
    if force || hints.in_container() { Ok(()) } else { Err(NotInContainer) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_is_refused_outside_a_container() {
        let empty = tempfile::tempdir().expect("tempdir");
        let hints = ContainerHints::gather_files(empty.path(), None);
        assert!(!hints.in_container());
        let err = check_with(&hints, false).expect_err("refused");
        assert!(err.to_string().contains("--force"), "{err}");
        assert!(check_with(&hints, true).is_ok(), "--force overrides");
    }

    #[test]
    fn each_hint_counts() {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::write(root.path().join(".dockerenv"), "").expect("write");
        assert!(check_with(&ContainerHints::gather_files(root.path(), None), false).is_ok());

        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(root.path().join("run")).expect("mkdir");
        std::fs::write(root.path().join("run/.containerenv"), "").expect("write");
        assert!(ContainerHints::gather_files(root.path(), None).in_container());

        let root = tempfile::tempdir().expect("tempdir");
        assert!(ContainerHints::gather_files(root.path(), Some("podman".into())).in_container());
        assert!(!ContainerHints::gather_files(root.path(), Some(String::new())).in_container());

        std::fs::create_dir_all(root.path().join("proc/1")).expect("mkdir");
        std::fs::write(root.path().join("proc/1/cgroup"), "0::/kubepods/besteffort/pod1234\n").expect("write");
        assert!(ContainerHints::gather_files(root.path(), None).in_container());

        // A Kubernetes pod on cgroup v2: /proc/1/cgroup says "0::/", the service env says pod.
        std::fs::write(root.path().join("proc/1/cgroup"), "0::/\n").expect("write");
        let bare = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(bare.path().join("proc/1")).expect("mkdir");
        std::fs::write(bare.path().join("proc/1/cgroup"), "0::/\n").expect("write");
        let pod = ContainerHints { kubernetes: true, ..ContainerHints::gather_files(bare.path(), None) };
        assert!(!ContainerHints::gather_files(bare.path(), None).in_container());
        assert!(pod.in_container());
    }
}
