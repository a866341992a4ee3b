//! The work dir: private to the user strata runs as (0700), and a directory of its own for
//! each build under `builds/`, held by a lock for as long as the build runs. A build that
//! died (killed, OOM) leaves its directory unlocked; the next build removes it.

use crate::error::BuildError;
use nix::fcntl::{Flock, FlockArg};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Name of the lock file each build holds in its directory.
const LOCK: &str = ".lock";

/// This build's own directory under `<work dir>/builds`, locked until dropped.
#[derive(Debug)]
pub(crate) struct BuildDir {
    path: PathBuf,
    _lock: Flock<std::fs::File>,
}

impl BuildDir {
    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// Makes `work_dir` private (creating it 0700, or narrowing an existing one to 0700), removes
/// the directories of dead builds, and creates this build's directory.
pub(crate) fn prepare(work_dir: &Path) -> Result<BuildDir, BuildError> {
    // The platforms of one multi-platform build prepare their directories side by side: one at
    // a time, or one's collection could take another's directory, created but not yet locked.
    static PREPARING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let _one_at_a_time = PREPARING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    private_dir(work_dir)?;
    let builds = work_dir.join("builds");
    private_dir(&builds)?;
    collect_dead_builds(&builds);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = builds.join(format!("{}-{nanos}-{n}", std::process::id()));
    std::fs::DirBuilder::new().mode(0o700).create(&path).map_err(BuildError::io(&path))?;
    let lock_path = path.join(LOCK);
    let file = std::fs::File::options().write(true).create_new(true).open(&lock_path).map_err(BuildError::io(&lock_path))?;
    let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| BuildError::io(&lock_path)(e.into()))?;
    Ok(BuildDir { path, _lock: lock })
}

/// Creates `dir` 0700, or checks an existing one: it must belong to this user, and group and
/// others lose any access they had (any local account could otherwise run a setuid binary of
/// the image being built, or read its layers).
fn private_dir(dir: &Path) -> Result<(), BuildError> {
    match std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) => return Err(BuildError::io(dir)(e)),
    }
    let meta = std::fs::metadata(dir).map_err(BuildError::io(dir))?;
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(BuildError::Options(format!(
            "work dir {}: owned by uid {}, not by this user (uid {me}); give strata a work dir of its own with --work-dir",
            dir.display(),
            meta.uid()
        )));
    }
    if meta.mode() & 0o077 != 0 {
        tracing::warn!("work dir {}: mode {:o} lets other users in; narrowing it to 0700", dir.display(), meta.mode() & 0o7777);
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(BuildError::io(dir))?;
    }
    Ok(())
}

/// Prefix of directories renamed aside to be deleted in the background.
const TRASH: &str = ".trash-";

/// Moves `dir` (a build directory) aside under `builds/` and deletes it on a background
/// thread, so the caller does not wait for a large tree to go. If the process exits first,
/// the next build's collection finishes the job.
pub(crate) fn remove_in_background(dir: &Path) {
    let Some(builds) = dir.parent() else { return };
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let trash = builds.join(format!("{TRASH}{}-{nanos}", std::process::id()));
    if std::fs::rename(dir, &trash).is_err() {
        let _ = std::fs::remove_dir_all(dir);
        return;
    }
    delete_on_thread(trash);
}

/// Deletes an already renamed-aside directory on a background thread.
fn delete_on_thread(dir: PathBuf) {
    let spawned = std::thread::Builder::new().name("strata-scratch-rm".into()).spawn(move || {
        let _ = std::fs::remove_dir_all(&dir);
    });
    if let Err(e) = spawned {
        tracing::debug!("no thread to remove the scratch tree in the background ({e}); the next build removes it");
    }
}

/// Removes every build directory whose lock no live build holds, and trash left behind.
fn collect_dead_builds(builds: &Path) {
    let Ok(entries) = std::fs::read_dir(builds) else { return };
    for entry in entries.flatten() {
        let dir = entry.path();
        if entry.file_name().to_string_lossy().starts_with(TRASH) {
            // Renamed aside by a finished build whose process exited before deleting it.
            delete_on_thread(dir);
            continue;
        }
        let Ok(file) = std::fs::File::open(dir.join(LOCK)) else {
            // No lock file: a build of an older strata, or one killed before it locked.
            // Only directories old enough that no build can still be starting go.
            if entry.metadata().and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|a| a.as_secs() > 600)) {
                remove_dead(&dir);
            }
            continue;
        };
        if let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            remove_dead(&dir);
            drop(lock);
        }
    }
}

fn remove_dead(dir: &Path) {
    tracing::info!("removing {}, left by a build that is no longer running", dir.display());
    // Renamed aside at once, deleted while this build goes on.
    remove_in_background(dir);
}

/// `/var/lib/strata` for root, `$XDG_DATA_HOME/strata` (or `~/.local/share/strata`) otherwise.
pub(crate) fn default_work_dir() -> PathBuf {
    // Root of a rootless build's user namespace is still the user outside: use their dirs.
    if nix::unistd::geteuid().is_root() && !crate::exec::in_user_namespace() {
        return PathBuf::from("/var/lib/strata");
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME") {
        return PathBuf::from(d).join("strata");
    }
    match std::env::var_os("HOME") {
        Some(h) => PathBuf::from(h).join(".local/share/strata"),
        None => std::env::temp_dir().join("strata"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dead_builds_go_live_ones_stay_and_the_dir_is_private() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let work = tmp.path().join("work");
        std::fs::create_dir(&work).expect("mkdir");
        std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let live = prepare(&work).expect("first build");
        // A dead build: its lock file is there but nobody holds it.
        let dead = work.join("builds/1-1");
        std::fs::create_dir_all(dead.join("stage-0/usr")).expect("mkdir");
        std::fs::write(dead.join(LOCK), "").expect("lock file");
        let second = prepare(&work).expect("second build");
        assert!(live.path().is_dir(), "a live build's directory stays");
        assert!(second.path().is_dir());
        assert!(!dead.exists(), "a dead build's directory is removed");
        assert_eq!(std::fs::metadata(&work).expect("meta").mode() & 0o777, 0o700);
        assert_eq!(std::fs::metadata(second.path()).expect("meta").mode() & 0o777, 0o700);
    }
}
