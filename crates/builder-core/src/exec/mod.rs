//! Running a RUN command inside the rootfs, isolated as the chosen `Isolation` says.
//!
//! Every RUN gets its own mount, UTS and PID namespace (and a network namespace with only
//! `lo` for `--network=none`); its first process is PID 1 there, so when it ends the
//! kernel kills everything it left behind. Rootless builds run the whole of strata inside a
//! user namespace (see [`userns`]), where the same code path works unprivileged.

mod capabilities;
mod chroot;
mod cleanup;
pub mod container;
mod devices;
mod emulated_mounts;
pub mod probe;
pub(crate) mod runner;
mod seccomp;
mod stubs;
pub mod userns;

pub(crate) use chroot::{run_chroot, run_none};
pub use container::{check_none_isolation, running_in_container};
pub use probe::can_create_namespaces;
pub use userns::{enter_user_namespace_if_needed, in_user_namespace};

use std::path::PathBuf;

/// What to run and as whom.
#[derive(Debug, Clone, Default)]
pub struct RunSpec {
    /// The rootfs directory the command sees as `/`.
    pub rootfs: PathBuf,
    /// argv; `argv[0]` is looked up in the image's PATH when it has no `/`.
    pub argv: Vec<String>,
    /// The complete environment.
    pub env: Vec<(String, String)>,
    /// Working directory inside the image (absolute).
    pub cwd: String,
    /// User, group and supplementary groups inside the image.
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    /// `--network=none`: a fresh network namespace with only loopback in it.
    pub network_none: bool,
    /// Executable heredoc scripts `(name, content)`, provided read-only at `/dev/pipes/<name>`.
    pub scripts: Vec<(String, String)>,
    /// `RUN --mount`s, already prepared on the host side.
    pub mounts: Vec<RunMount>,
    /// An empty host directory, outside the rootfs, where a private tmpfs holds secret files
    /// for the RUN's lifetime (needed when `mounts` has any `RunMountSource::File`).
    pub staging: Option<PathBuf>,
    /// Running inside a user namespace: tolerate what an unprivileged namespace forbids
    /// (setgroups after a single-ID map, sysfs without an own network namespace).
    pub rootless: bool,
    /// Kills the RUN when the build is cancelled.
    pub cancel: crate::Cancel,
}

/// One mount a RUN sees, from the host's point of view.
#[derive(Debug, Clone)]
pub struct RunMount {
    /// Absolute path inside the image.
    pub target: String,
    /// What is mounted there.
    pub source: RunMountSource,
}

/// Where a RUN mount's content comes from.
#[derive(Clone)]
pub enum RunMountSource {
    /// A host file or directory bound onto the target.
    Bind { host: PathBuf, readonly: bool },
    /// A fresh tmpfs; `size` in bytes.
    Tmpfs { size: Option<u64> },
    /// A file with this content (a secret), held only in a private tmpfs.
    File { content: Vec<u8>, uid: u32, gid: u32, mode: u32 },
}

impl std::fmt::Debug for RunMountSource {
    // Never print a secret's content.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Bind { host, readonly } => f.debug_struct("Bind").field("host", host).field("readonly", readonly).finish(),
            Self::Tmpfs { size } => f.debug_struct("Tmpfs").field("size", size).finish(),
            Self::File { content, uid, gid, mode } => {
                f.debug_struct("File").field("len", &content.len()).field("uid", uid).field("gid", gid).field("mode", &format_args!("{mode:o}")).finish()
            }
        }
    }
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
