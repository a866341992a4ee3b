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
