//! Where each stage's filesystem lives: a fresh directory under the work dir (`chroot`,
//! `rootless`), or `/` itself (`none`, kaniko style, inside a throwaway container).
//!
//! With `/` as the build root, strata's own files must survive every stage change and never
//! reach a layer: the work dir, the build context, the running binary, credentials, the
//! files named by options, the kernel's file systems and every mount point. Those are the
//! [`keep_paths`]; [`clear`] empties `/` of everything else before a stage starts.
//!
//! Unlike kaniko, strata gives the container back as it found it: before the first stage the
//! container's own files are moved (renamed, so it costs nothing) into [`SAVED_DIR`] on the
//! same file system, and after the build, successful or not, the build's files are removed and
//! the container's moved back. A job that runs more steps in the same container after strata
//! (GitLab, Tekton) still finds its tools.

use crate::error::BuildError;
use crate::options::BuildOptions;
use std::path::{Path, PathBuf};
use strata_snapshot::KeepPaths;

/// Paths under `/` that always belong to the container, never to the image.
const CONTAINER_PATHS: &[&str] =
    &["/proc", "/sys", "/dev", "/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/etc/mtab", "/.dockerenv", "/run/.containerenv"];

/// Environment variables naming files the registry client may read during the build.
const FILE_VARS: &[&str] = &["DOCKER_CONFIG", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "SSL_CERT_FILE", "SSL_CERT_DIR"];

/// Where the container's own files wait while a build uses `/` (with the process id appended).
pub const SAVED_DIR: &str = "/.strata-container";

/// The saved-files directory of this process.
pub fn saved_dir() -> PathBuf {
    PathBuf::from(format!("{SAVED_DIR}-{}", std::process::id()))
}

/// Every path a build with `/` as its root must leave alone (absolute, canonical where they exist).
pub fn keep_paths(opts: &BuildOptions) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = CONTAINER_PATHS.iter().map(PathBuf::from).collect();
    paths.push(saved_dir());
    paths.push(opts.work_dir.clone());
    paths.push(opts.run_cache_dir());
    paths.push(opts.context.clone());
    paths.push(opts.dockerfile.clone());
    paths.extend(opts.ignore_paths.iter().cloned());
    paths.extend(opts.oci_layout_path.iter().cloned());
    paths.extend(opts.tar_path.iter().cloned());
    paths.extend(opts.digest_file.iter().cloned());
    if let Ok(exe) = std::env::current_exe() {
        paths.push(exe);
    }
    for s in &opts.secrets {
        if let crate::secrets::SecretSource::File(p) = &s.source {
            paths.push(p.clone());
        }
    }
    let r = &opts.registry;
    paths.extend(r.ca_certs.iter().cloned());
    paths.extend(r.registry_ca_certs.iter().map(|(_, p)| p.clone()));
    for (_, cert, key) in &r.client_certs {
        paths.push(cert.clone());
        paths.push(key.clone());
    }
    paths.extend(r.docker_config_dir.iter().cloned());
    paths.extend(FILE_VARS.iter().filter_map(std::env::var_os).map(PathBuf::from));
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
        paths.push(home.join(".docker"));
        paths.push(home.join(".aws"));
    }
    paths.extend(strata_snapshot::mounts::mounts_below(Path::new("/")).into_iter().map(|m| Path::new("/").join(m)));
    let mut out: Vec<PathBuf> = paths
        .into_iter()
        .filter_map(|p| std::path::absolute(&p).ok())
        .map(|p| std::fs::canonicalize(&p).unwrap_or(p))
        .filter(|p| p != Path::new("/"))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Removes everything from `/` except `keep` (kaniko's "deleting filesystem" between stages).
pub fn clear(keep: &KeepPaths) -> Result<(), BuildError> {
    let root = Path::new("/");
    let dir = strata_snapshot::rootdir::Root::open(root).map_err(BuildError::io(root))?;
    strata_snapshot::rootdir::clear_dir_except(dir.fd(), Path::new(""), keep, &mut |_| false).map_err(BuildError::io(root))
}

/// The container's own files, moved aside while the build uses `/`.
#[derive(Debug)]
pub struct SavedRoot {
    dir: PathBuf,
    /// Directories left in place because they hold kept paths: their metadata as found.
    skeleton: Vec<(PathBuf, std::fs::Permissions, u32, u32)>,
}

/// Moves everything in `/` that is not kept into [`saved_dir`]; directories that hold kept
/// paths stay (emptied of the rest) and are noted so their metadata can be given back.
pub fn save(keep: &KeepPaths) -> Result<SavedRoot, BuildError> {
    let dir = saved_dir();
    std::fs::create_dir(&dir).map_err(BuildError::io(&dir))?;
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).map_err(BuildError::io(&dir))?;
    let mut saved = SavedRoot { dir: dir.clone(), skeleton: Vec::new() };
    save_children(Path::new("/"), &dir, Path::new(""), keep, &mut saved.skeleton)?;
    Ok(saved)
}

fn save_children(
    from: &Path,
    to: &Path,
    rel: &Path,
    keep: &KeepPaths,
    skeleton: &mut Vec<(PathBuf, std::fs::Permissions, u32, u32)>,
) -> Result<(), BuildError> {
    use std::os::unix::fs::MetadataExt;
    for entry in std::fs::read_dir(from).map_err(BuildError::io(from))? {
        let entry = entry.map_err(BuildError::io(from))?;
        let (src, child_rel) = (entry.path(), rel.join(entry.file_name()));
        if keep.is_kept(&child_rel) {
            continue;
        }
        let dst = to.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&src).map_err(BuildError::io(&src))?;
        if keep.holds_kept(&child_rel) && meta.is_dir() {
            std::fs::create_dir(&dst).map_err(BuildError::io(&dst))?;
            skeleton.push((src.clone(), meta.permissions(), meta.uid(), meta.gid()));
            save_children(&src, &dst, &child_rel, keep, skeleton)?;
        } else {
            std::fs::rename(&src, &dst).map_err(BuildError::io(&src))?;
        }
    }
    Ok(())
}

impl SavedRoot {
    /// Removes the build's files from `/` and moves the container's back.
    pub fn restore(self, keep: &KeepPaths) -> Result<(), BuildError> {
        clear(keep)?;
        restore_children(&self.dir, Path::new("/"))?;
        for (dir, perms, uid, gid) in self.skeleton.iter().rev() {
            let _ = std::os::unix::fs::lchown(dir, Some(*uid), Some(*gid));
            let _ = std::fs::set_permissions(dir, perms.clone());
        }
        std::fs::remove_dir_all(&self.dir).map_err(BuildError::io(&self.dir))
    }
}

fn restore_children(from: &Path, to: &Path) -> Result<(), BuildError> {
    for entry in std::fs::read_dir(from).map_err(BuildError::io(from))? {
        let entry = entry.map_err(BuildError::io(from))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let src_is_dir = entry.file_type().map_err(BuildError::io(&src))?.is_dir();
        if src_is_dir && std::fs::symlink_metadata(&dst).is_ok_and(|m| m.is_dir()) {
            restore_children(&src, &dst)?;
        } else {
            std::fs::rename(&src, &dst).map_err(BuildError::io(&src))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_build_s_own_files_and_the_kernel_s() {
        let mut opts = BuildOptions::new("/workspace/Dockerfile".into(), "/workspace".into());
        opts.work_dir = "/kaniko".into();
        opts.ignore_paths = vec!["/var/run/secrets".into(), "relative/ignored".into()];
        let keep = keep_paths(&opts);
        for p in ["/proc", "/dev", "/sys", "/etc/resolv.conf", "/kaniko", "/workspace", "/var/run/secrets"] {
            assert!(keep.iter().any(|k| k == Path::new(p)), "{p} kept: {keep:?}");
        }
        assert!(!keep.iter().any(|k| k.is_relative() || k == Path::new("/")), "{keep:?}");
        let exe = std::fs::canonicalize(std::env::current_exe().expect("exe")).expect("canonical");
        assert!(keep.contains(&exe), "the running binary is kept");
    }
}
