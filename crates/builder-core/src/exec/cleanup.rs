//! Making sure no process of a RUN outlives it.

use std::path::Path;

/// Kills every process whose root directory is `rootfs` (a RUN's leftovers, daemons included).
pub fn kill_processes_rooted_at(rootfs: &Path) {
    let Ok(canonical) = rootfs.canonicalize() else { return };
    for _round in 0..10 {
        let mut found = false;
        let Ok(entries) = std::fs::read_dir("/proc") else { return };
        for entry in entries.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
            if std::fs::read_link(entry.path().join("root")).is_ok_and(|root| root == canonical) {
                found = true;
                tracing::debug!(pid, "killing a process left behind by RUN");
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
        }
        if !found {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
