//! The build context: a directory, or a tar archive (plain, gzip, bzip2, xz or zstd) unpacked
//! into a scratch directory under the work dir, and its `.dockerignore`.

pub mod archive;
pub mod dockerignore;
pub mod filepath_match;

use crate::error::BuildError;
pub use dockerignore::DockerIgnore;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A scratch directory removed when the last context using it is dropped.
#[derive(Debug)]
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A build context ready to be copied from.
#[derive(Debug, Clone)]
pub struct BuildContext {
    root: PathBuf,
    ignore: DockerIgnore,
    _scratch: Option<Arc<Scratch>>,
}

impl BuildContext {
    /// Opens the context `root` (a directory, or a tar archive unpacked under the system temp
    /// dir); see [`BuildContext::open_in`].
    #[cfg(test)]
    pub fn open(root: &Path, dockerfile: &Path) -> Result<Self, BuildError> {
        Self::open_in(root, dockerfile, &std::env::temp_dir())
    }

    /// Opens the context: a directory, or a tar file (also written `tar://path`) unpacked,
    /// confined, into a fresh directory under `work_dir`. The ignore file is
    /// `<dockerfile>.dockerignore` next to the Dockerfile if present, else `.dockerignore` at
    /// the context root.
    pub fn open_in(context: &Path, dockerfile: &Path, work_dir: &Path) -> Result<Self, BuildError> {
        let text = context.to_string_lossy();
        let (context, forced_tar) = match text.strip_prefix("tar://") {
            Some(p) => (PathBuf::from(p), true),
            None => (context.to_path_buf(), false),
        };
        let meta = std::fs::metadata(&context)
            .map_err(|e| BuildError::Context { path: context.clone(), message: format!("{e} (check --context: a directory or a tar archive)") })?;
        let (root, scratch) = if meta.is_dir() && !forced_tar {
            (context.clone(), None)
        } else if meta.is_file() {
            let dir = work_dir.join("contexts").join(format!("ctx-{}-{}", std::process::id(), unique()));
            std::fs::create_dir_all(&dir).map_err(BuildError::io(&dir))?;
            let scratch = Arc::new(Scratch(dir.clone()));
            if !archive::is_tar_archive(&context) {
                return Err(BuildError::Context { path: context, message: "not a directory and not a tar archive (plain, gzip, bzip2, xz or zstd)".into() });
            }
            let rootless = !nix::unistd::geteuid().is_root();
            archive::extract(&context, &dir, rootless).map_err(|e| BuildError::Context { path: context.clone(), message: e.to_string() })?;
            (dir, Some(scratch))
        } else {
            return Err(BuildError::Context { path: context, message: "neither a directory nor a tar archive".into() });
        };
        let mut specific = PathBuf::from(format!("{}.dockerignore", dockerfile.display()));
        if scratch.is_some()
            && !specific.is_file()
            && let Some(inside) = path_inside(&root, &context, &specific)
        {
            specific = inside;
        }
        let ignore_file = if specific.is_file() { specific } else { root.join(".dockerignore") };
        // Bounded and decoded like the Dockerfile: a Latin-1 .dockerignore is read, not refused.
        let ignore = match strata_dockerfile::source::read(&ignore_file).map(|s| s.text) {
            Ok(text) => DockerIgnore::parse(&text).map_err(|e| BuildError::Context {
                path: ignore_file.clone(),
                message: format!("line {}: invalid pattern {:?}: {} (fix or remove the line)", e.line, e.pattern, e.message),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => DockerIgnore::default(),
            Err(e) => return Err(BuildError::Context { path: ignore_file, message: format!("cannot read the ignore file: {e}") }),
        };
        Ok(Self { root, ignore, _scratch: scratch })
    }

    /// For a tar context, where the Dockerfile `requested` (as given, possibly under the
    /// `context` argument) lies inside the unpacked archive; None for a directory context.
    pub fn dockerfile_inside(&self, context: &Path, requested: &Path) -> Option<PathBuf> {
        self._scratch.as_ref()?;
        path_inside(&self.root, context, requested).filter(|p| p.is_file())
    }

    /// The context directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The compiled ignore rules.
    pub fn ignore(&self) -> &DockerIgnore {
        &self.ignore
    }
}

/// Where `requested` (given relative to, or under, the tar `context` argument) lies in `root`.
fn path_inside(root: &Path, context: &Path, requested: &Path) -> Option<PathBuf> {
    let strip = |p: &Path| PathBuf::from(p.to_string_lossy().trim_start_matches("tar://"));
    let (plain, requested) = (strip(context), strip(requested));
    let rel = requested.strip_prefix(&plain).unwrap_or(&requested);
    let rel = if rel.is_absolute() { Path::new(rel.file_name()?) } else { rel };
    crate::rootfs::resolve_in_root(root, &rel.to_string_lossy()).ok()
}

fn unique() -> u128 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn tar_gz_context_is_unpacked_and_removed_when_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut b = tar::Builder::new(Vec::new());
        for (name, body) in [("app/main.sh", "echo hi\n"), (".dockerignore", "secret\n"), ("secret", "s3cr3t")] {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            h.set_cksum();
            b.append_data(&mut h, name, body.as_bytes()).expect("append");
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&b.into_inner().expect("tar")).expect("gz");
        let tarball = dir.path().join("ctx.tar.gz");
        std::fs::write(&tarball, gz.finish().expect("gz")).expect("write");
        let work = dir.path().join("work");
        let ctx = BuildContext::open_in(&tarball, Path::new("Dockerfile"), &work).expect("open");
        assert_eq!(std::fs::read_to_string(ctx.root().join("app/main.sh")).expect("read"), "echo hi\n");
        assert!(ctx.root().starts_with(&work));
        assert!(ctx.ignore().is_excluded("secret"));
        let root = ctx.root().to_path_buf();
        let tar_url = PathBuf::from(format!("tar://{}", tarball.display()));
        let again = BuildContext::open_in(&tar_url, Path::new("Dockerfile"), &work).expect("tar:// form");
        drop(ctx);
        assert!(!root.exists(), "the scratch dir goes with the context");
        assert!(again.root().join("app/main.sh").is_file());
    }

    #[test]
    fn dockerfile_specific_ignore_file_wins() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(".dockerignore"), "a\n").expect("write");
        std::fs::write(dir.path().join("Dockerfile.dockerignore"), "b\n").expect("write");
        let ctx = BuildContext::open(dir.path(), &dir.path().join("Dockerfile")).expect("open");
        assert!(ctx.ignore().is_excluded("b") && !ctx.ignore().is_excluded("a"));
        let ctx = BuildContext::open(dir.path(), &dir.path().join("Other")).expect("open");
        assert!(ctx.ignore().is_excluded("a"));
        std::fs::write(dir.path().join("file"), "x").expect("write");
        assert!(BuildContext::open(&dir.path().join("file"), Path::new("Dockerfile")).is_err());
        std::fs::write(dir.path().join(".dockerignore"), "ok\n# fine\nbad[\n").expect("write");
        let err = BuildContext::open(dir.path(), &dir.path().join("Other")).expect_err("bad pattern").to_string();
        assert!(err.contains(".dockerignore") && err.contains("line 3") && err.contains("bad["), "{err}");
    }
}
