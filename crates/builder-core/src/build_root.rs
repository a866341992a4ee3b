//! Where each stage's filesystem lives: a fresh directory under the work dir (`chroot`,
//! `rootless`), or `/` itself (`none`, kaniko style, inside a throwaway container).
//!
//! With `/` as the build root, strata's own files must survive every stage change and never
//! reach a layer: the work dir, the build context, the running binary, credentials, the
//! files named by options, the kernel's file systems and every mount point. Those are the
//! [`keep_paths`]; [`clear`] empties `/` of everything else before a stage starts.

use crate::error::BuildError;
use crate::options::BuildOptions;
use std::path::{Path, PathBuf};
use strata_snapshot::KeepPaths;

/// Paths under `/` that always belong to the container, never to the image.
const CONTAINER_PATHS: &[&str] = &[
    "/proc",
    "/sys",
    "/dev",
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
    "/etc/mtab",
    "/.dockerenv",
    "/run/.containerenv",
];

/// Environment variables naming files the registry client may read during the build.
const FILE_VARS: &[&str] = &[
    "DOCKER_CONFIG",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
];

/// Every path a build with `/` as its root must leave alone (absolute, canonical where they exist).
pub fn keep_paths(opts: &BuildOptions) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = CONTAINER_PATHS.iter().map(PathBuf::from).collect();
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
