//! The seam between RUN and the kernel: one [`CommandRunner`] per build, chosen from the
//! isolation mode, runs every RUN's [`RunSpec`].

use super::{RunSpec, RunStatus};
use crate::Isolation;
use std::io;

/// Runs a RUN command as its spec says.
pub(crate) trait CommandRunner: Send + Sync {
    /// Runs `spec` to its end.
    fn run(&self, spec: &RunSpec) -> io::Result<RunStatus>;
    /// The isolation this runner gives.
    fn isolation(&self) -> Isolation;
}

/// In the stage's root with its own namespaces (root, or rootless inside a user namespace).
struct ChrootRunner {
    rootless: bool,
}

impl CommandRunner for ChrootRunner {
    fn run(&self, spec: &RunSpec) -> io::Result<RunStatus> {
        super::run_chroot(spec)
    }

    fn isolation(&self) -> Isolation {
        if self.rootless { Isolation::Rootless } else { Isolation::Chroot }
    }
}

/// In `/` of the container strata runs in (kaniko style).
struct InPlaceRunner;

impl CommandRunner for InPlaceRunner {
    fn run(&self, spec: &RunSpec) -> io::Result<RunStatus> {
        super::run_none(spec)
    }

    fn isolation(&self) -> Isolation {
        Isolation::None
    }
}

/// The runner for a build's isolation mode.
pub(crate) fn for_isolation(isolation: Isolation) -> Box<dyn CommandRunner> {
    match isolation {
        Isolation::Chroot => Box::new(ChrootRunner { rootless: false }),
        Isolation::Rootless => Box::new(ChrootRunner { rootless: true }),
        Isolation::None => Box::new(InPlaceRunner),
    }
}

/// A runner that records every spec and answers with a fixed status, for unit tests.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct RecordingRunner {
    /// The specs run so far.
    pub specs: std::sync::Mutex<Vec<RunSpec>>,
    /// What every run returns.
    pub status: RunStatus,
    /// The isolation it claims.
    pub isolation: Isolation,
}

#[cfg(test)]
impl CommandRunner for RecordingRunner {
    fn run(&self, spec: &RunSpec) -> io::Result<RunStatus> {
        self.specs.lock().map_err(|_| io::Error::other("poisoned"))?.push(spec.clone());
        Ok(self.status)
    }

    fn isolation(&self) -> Isolation {
        self.isolation
    }
}
