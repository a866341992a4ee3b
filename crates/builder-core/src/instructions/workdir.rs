//! WORKDIR: relative to the previous one, created if missing with its missing parents (0755,
//! owned by the current user as BuildKit's file operations resolve it).

use super::fail;
use crate::error::BuildError;
use crate::stage::{StageRun, layer_from_changes};
use crate::step_context::StepContext;
use crate::user::resolve_workdir_owner;
use std::io;
use std::path::{Path, PathBuf};
use strata_dockerfile::Instruction;

/// Creates the in-image directory `dir` and its parents if missing; returns whether it made any.
pub fn ensure_dir(rootfs: &Path, dir: &str, owner: Option<(u32, u32)>) -> io::Result<bool> {
    crate::rootfs::make_dirs(rootfs, dir, owner, 0o755, &mut |_| Ok(()))
}

/// Joins a WORKDIR value onto the current one and cleans it.
pub fn join_workdir(current: &str, dir: &str) -> String {
    let joined = if dir.starts_with('/') { dir.to_string() } else { format!("{}/{}", current.trim_end_matches('/'), dir) };
    let mut parts: Vec<&str> = Vec::new();
    for p in joined.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            x => parts.push(x),
        }
    }
    format!("/{}", parts.join("/"))
}

pub(crate) fn execute(b: &mut dyn StepContext, st: &mut StageRun, inst: &Instruction, dir: &str) -> Result<(), BuildError> {
    let path = join_workdir(&st.workdir(), dir);
    st.config.config.working_dir = Some(path.clone());
    let created_by = format!("WORKDIR {path}");
    // With `--cache` (the key is already advanced past this step): whether it made a layer,
    // and which, is recorded like any step's, so a stage not unpacked yet stays so.
    let cached = b.cached_step(st.index, inst.span.start_line, &st.cache_key);
    if !st.is_unpacked() {
        if let Some(hit) = cached {
            match hit.layer {
                Some(l) => st.history_layer(created_by, Some(l)),
                None => st.history_metadata(created_by),
            }
            return Ok(());
        }
        b.materialize(st)?;
    }
    // BuildKit makes the directory with its file operation's owner rules, not RUN's: `USER
    // root` in a scratch image works, and `USER 9999` gives 9999:9999.
    let owner = match st.config.config.user.as_deref() {
        Some(u) if !u.is_empty() => Some(resolve_workdir_owner(&st.rootfs, u)),
        _ => None,
    };
    let made = ensure_dir(&st.rootfs, &path, owner).map_err(|e| fail(b, inst, format!("cannot create {path}: {e}")))?;
    let layer = if made && !b.opts().single_snapshot {
        let snapshot = st.snapshot()?;
        let changes = snapshot.paths(&[PathBuf::from(&path)])?;
        // Directories only: nothing to hash, and nothing read twice.
        snapshot.hash_pending(None)?;
        // A directory made again has a new time: the cached layer stands for it.
        match cached.as_ref().and_then(|hit| hit.layer.clone()) {
            Some(l) => Some(l),
            None => layer_from_changes(&st.rootfs, &changes, b.layer_opts(), b.store())?,
        }
    } else {
        None
    };
    if cached.is_none() && b.caching() {
        let key = st.cache_key.clone();
        b.store_step(&key, layer.as_ref(), &created_by);
    }
    match layer {
        Some(l) => st.history_layer(created_by, Some(l)),
        None => st.history_metadata(created_by),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn workdir_joins_and_cleans() {
        assert_eq!(super::join_workdir("/", "app"), "/app");
        assert_eq!(super::join_workdir("/app", "b/../c/"), "/app/c");
        assert_eq!(super::join_workdir("/app", "/x"), "/x");
    }
}
