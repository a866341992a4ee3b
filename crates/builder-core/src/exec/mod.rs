//! Running a RUN command inside the rootfs, isolated as the chosen `Isolation` says.

mod chroot;
mod cleanup;
mod devices;

pub use chroot::run_chroot;

use std::path::PathBuf;

/// What to run and as whom.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// The rootfs directory the command sees as `/`.
    pub rootfs: PathBuf,
    /// argv; argv[0] is looked up in the image's PATH when it has no `/`.
    pub argv: Vec<String>,
    /// The complete environment.
    pub env: Vec<(String, String)>,
    /// Working directory inside the image (absolute).
    pub cwd: String,
    /// User, group and supplementary groups inside the image.
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    /// `--network=none`: a fresh network namespace with nothing in it.
    pub network_none: bool,
    /// Executable heredoc scripts `(name, content)`, provided read-only at `/dev/pipes/<name>`.
    pub scripts: Vec<(String, String)>,
}

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    /// Exited with this code.
    Exited(i32),
    /// Killed by this signal.
    Signaled(i32),
}

/// The PATH used when the image sets none (BuildKit's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
