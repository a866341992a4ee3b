//! Stopping a build from outside (SIGTERM in a pod, an embedder's timeout): the build checks
//! the token between instructions and while it waits on the network, and a running RUN is
//! killed at once together with its PID namespace. The build then cleans up (mounts go with
//! the RUN's namespace, its scratch tree is removed) and returns [`BuildError::Cancelled`].

use crate::error::BuildError;
use std::sync::{Arc, Mutex};

/// A handle that stops the build it was given to; clones share one state.
#[derive(Clone)]
pub struct Cancel {
    inner: Arc<Inner>,
}

struct Inner {
    flag: tokio::sync::watch::Sender<bool>,
    running: Mutex<Vec<Running>>,
}

/// A process of a RUN to kill when the build is cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Running {
    pid: i32,
    /// Kill its whole process group (`none` isolation, where there is no PID namespace).
    group: bool,
}

impl Default for Cancel {
    fn default() -> Self {
        Self { inner: Arc::new(Inner { flag: tokio::sync::watch::Sender::new(false), running: Mutex::new(Vec::new()) }) }
    }
}

impl std::fmt::Debug for Cancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cancel").field("cancelled", &self.is_cancelled()).finish()
    }
}

impl Cancel {
    /// A token nobody has cancelled yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stops the build: kills the running RUN (if any) and makes the next check fail.
    pub fn cancel(&self) {
        self.inner.flag.send_replace(true);
        let running = self.inner.running.lock().map(|r| r.clone()).unwrap_or_default();
        for r in running {
            kill(r);
        }
    }

    /// Whether [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        *self.inner.flag.borrow()
    }

    /// `Err(Cancelled)` once cancelled.
    pub(crate) fn check(&self) -> Result<(), BuildError> {
        if self.is_cancelled() { Err(BuildError::Cancelled) } else { Ok(()) }
    }

    /// Resolves once the build is cancelled.
    pub(crate) async fn cancelled(&self) {
        let mut rx = self.inner.flag.subscribe();
        let _ = rx.wait_for(|c| *c).await;
    }

    /// Runs `fut` on `handle`, giving up (and dropping it) when the build is cancelled.
    pub(crate) fn block_on<T>(&self, handle: &tokio::runtime::Handle, fut: impl std::future::Future<Output = T>) -> Result<T, BuildError> {
        self.check()?;
        handle.block_on(async {
            tokio::select! {
                out = fut => Ok(out),
                () = self.cancelled() => Err(BuildError::Cancelled),
            }
        })
    }

    /// Registers a RUN's first process (the whole group when `group`) until the guard drops;
    /// killed at once if the build is already cancelled.
    pub(crate) fn track(&self, pid: u32, group: bool) -> Tracked<'_> {
        let r = Running { pid: i32::try_from(pid).unwrap_or(i32::MAX), group };
        if let Ok(mut running) = self.inner.running.lock() {
            running.push(r);
        }
        // After the push: a cancel from now on sees it; one before it is seen here.
        if self.is_cancelled() {
            kill(r);
        }
        Tracked { cancel: self, running: r }
    }
}

/// Keeps a process registered with a [`Cancel`] while it runs.
pub(crate) struct Tracked<'a> {
    cancel: &'a Cancel,
    running: Running,
}

impl Drop for Tracked<'_> {
    fn drop(&mut self) {
        if let Ok(mut running) = self.cancel.inner.running.lock() {
            running.retain(|r| *r != self.running);
        }
    }
}

fn kill(r: Running) {
    let pid = nix::unistd::Pid::from_raw(if r.group { -r.pid } else { r.pid });
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancel_kills_the_tracked_process_and_fails_the_next_check() {
        let cancel = Cancel::new();
        assert!(cancel.check().is_ok());
        let mut child = std::process::Command::new("sleep").arg("30").spawn().expect("sleep");
        let guard = cancel.track(child.id(), false);
        let other = cancel.clone();
        std::thread::spawn(move || other.cancel());
        let status = child.wait().expect("wait");
        drop(guard);
        assert!(!status.success(), "sleep was killed");
        assert!(matches!(cancel.check(), Err(BuildError::Cancelled)));
        // A process started after the cancel is killed as soon as it is tracked.
        let mut late = std::process::Command::new("sleep").arg("30").spawn().expect("sleep");
        let _g = cancel.track(late.id(), false);
        assert!(!late.wait().expect("wait").success());
    }

    #[test]
    fn a_cancel_ends_a_pending_wait() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let cancel = Cancel::new();
        let other = cancel.clone();
        std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(50));
            other.cancel();
        });
        let handle = rt.handle().clone();
        let r = std::thread::spawn(move || cancel.block_on(&handle, std::future::pending::<()>())).join().expect("join");
        assert!(matches!(r, Err(BuildError::Cancelled)));
    }
}
