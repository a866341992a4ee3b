//! Build errors: each names the Dockerfile line, path or registry involved.

use std::path::PathBuf;

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile could not be read.
    #[error("cannot read Dockerfile {path}: {source} (check --dockerfile and --context)")]
    DockerfileMissing { path: PathBuf, source: std::io::Error },
    /// The Dockerfile is not valid.
    #[error(transparent)]
    Dockerfile(#[from] strata_dockerfile::Error),
    /// A RUN command exited non-zero.
    #[error("{file}:{line}: RUN {command} failed with exit code {code}")]
    RunFailed { file: String, line: usize, command: String, code: i32 },
    /// The build was stopped from outside (a signal, [`crate::Cancel::cancel`]).
    #[error("the build was stopped before it finished; its running RUN was killed and its scratch files removed")]
    Cancelled,
    /// A RUN command was killed by a signal.
    #[error("{file}:{line}: RUN {command} was killed by signal {signal}")]
    RunKilled { file: String, line: usize, command: String, signal: i32 },
    /// An instruction cannot be carried out.
    #[error("{file}:{line}: {instruction}: {message}")]
    Instruction { file: String, line: usize, instruction: String, message: String },
    /// The build context is unusable.
    #[error("build context {path}: {message}")]
    Context { path: PathBuf, message: String },
    /// Registry failure (pull or push).
    #[error(transparent)]
    Registry(#[from] strata_registry::Error),
    /// Layer unpacking, diffing or writing failed.
    #[error(transparent)]
    Snapshot(#[from] strata_snapshot::Error),
    /// A local file operation failed.
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// A base image is unusable: its manifest or config is invalid, or it is for another platform.
    #[error("{reference}{message}")]
    BaseImage {
        /// The image reference as written.
        reference: String,
        /// What is wrong, starting with its own separator (": ..." or " is ...").
        message: String,
    },
    /// A blob kept in the work dir was damaged; it was removed so the next build fetches it again.
    #[error("{source}; the damaged blob {digest} was removed from the work dir, so the next build fetches it again")]
    DamagedBlob {
        /// The blob's digest.
        digest: String,
        /// How it showed damage.
        source: Box<BuildError>,
    },
    /// Rootless mode cannot be set up (newuidmap, /etc/subuid, user namespaces).
    #[error("rootless: {0}")]
    Rootless(String),
    /// An image tarball (push-only) cannot be read or pushed as it is.
    #[error("image tarball {}: {message}", path.display())]
    Archive {
        /// The tarball.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// One platform of a multi-platform build failed (the others were stopped).
    #[error("building for {platform}: {source}")]
    Platform {
        /// The platform, `os/arch[/variant]`.
        platform: String,
        /// Why it failed.
        source: Box<BuildError>,
    },
    /// A fault inside strata rather than in its input.
    #[error("internal error: {0} (a bug in strata: please report it with the command that failed)")]
    Internal(String),
    /// Something else about the options.
    #[error("{0}")]
    Options(String),
}

impl BuildError {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
