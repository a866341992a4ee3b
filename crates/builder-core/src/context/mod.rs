//! The build context: a directory (or an unpacked tarball) and its `.dockerignore`.

pub mod dockerignore;

use crate::error::BuildError;
pub use dockerignore::DockerIgnore;
use std::path::{Path, PathBuf};

/// A build context ready to be copied from.
#[derive(Debug, Clone)]
pub struct BuildContext {
    root: PathBuf,
    ignore: DockerIgnore,
}

impl BuildContext {
    /// Opens the context directory `root`; the ignore file is `<dockerfile>.dockerignore` next
    /// to the Dockerfile if present, else `.dockerignore` at the context root.
    pub fn open(root: &Path, dockerfile: &Path) -> Result<Self, BuildError> {
        let meta = std::fs::metadata(root).map_err(|e| BuildError::Context {
            path: root.to_path_buf(),
            message: format!("{e} (check --context)"),
        })?;
        if !meta.is_dir() {
            return Err(BuildError::Context { path: root.to_path_buf(), message: "not a directory".into() });
        }
        let specific = PathBuf::from(format!("{}.dockerignore", dockerfile.display()));
        let ignore_file = if specific.is_file() { specific } else { root.join(".dockerignore") };
        let ignore = match std::fs::read_to_string(&ignore_file) {
            Ok(text) => DockerIgnore::parse(&text).map_err(|e| BuildError::Context {
                path: ignore_file.clone(),
                message: format!("line {}: invalid pattern {:?}: {}", e.line, e.pattern, e.message),
            })?,
            Err(_) => DockerIgnore::default(),
        };
        Ok(Self { root: root.to_path_buf(), ignore })
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
