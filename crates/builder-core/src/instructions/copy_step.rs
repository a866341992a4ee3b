//! The COPY/ADD step: choose the source (context, stage, image), copy, snapshot the paths.

use super::copy::{copy, CopyFrom, CopyRequest};
use super::fail;
use crate::build::Builder;
use crate::error::BuildError;
use crate::stage::{layer_from_changes, StageRun};
use crate::user::resolve_chown;
use std::path::PathBuf;
use strata_dockerfile::{Copy, Instruction};

pub(crate) fn execute(b: &mut Builder, st: &mut StageRun, inst: &Instruction, c: &Copy, is_add: bool) -> Result<(), BuildError> {
    let owner = match &c.chown {
        Some(spec) => Some(resolve_chown(&st.rootfs, spec).map_err(|m| fail(b, inst, m))?),
        None => None,
    };
    let chmod = match &c.chmod {
        Some(m) => Some(u32::from_str_radix(m, 8).map_err(|_| fail(b, inst, format!("--chmod={m}: expected an octal mode such as 0755")))?),
        None => None,
    };
    if is_add {
        if let Some(url) = c.sources.iter().find(|s| s.starts_with("http://") || s.starts_with("https://") || s.starts_with("git@")) {
            return Err(fail(b, inst, format!("{url}: remote ADD sources are not supported yet; download them in a RUN step")));
        }
    }
    let req = CopyRequest {
        sources: c.sources.clone(),
        dest: c.dest.clone(),
        workdir: st.workdir(),
        owner,
        chmod,
        exclude: c.exclude.clone(),
    };
    let written = match &c.from {
        None => {
            let from = CopyFrom { root: b.context.root(), ignore: Some(b.context.ignore()), is_rootfs: false };
            copy(&from, &req, &st.rootfs).map_err(|m| fail(b, inst, m))?
        }
        Some(word) => {
            let root = source_root(b, inst, word)?;
            let from = CopyFrom { root: &root, ignore: None, is_rootfs: true };
            copy(&from, &req, &st.rootfs).map_err(|m| fail(b, inst, m))?
        }
    };
    if b.opts.single_snapshot {
        st.history_metadata(format!("{} # buildkit", inst.original));
        return Ok(());
    }
    let paths: Vec<PathBuf> = written.iter().map(PathBuf::from).collect();
    // A copy onto `/` may touch anything: that is a whole-tree diff.
    let changes = if written.iter().any(|p| p.trim_end_matches('/').is_empty()) { st.snapshotter.diff()? } else { st.snapshotter.paths(&paths)? };
    let layer = layer_from_changes(&st.rootfs, &changes, &b.layer_opts, &b.store)?;
    if let Some(l) = &layer {
        b.emit(crate::progress::BuildEvent::LayerWritten { digest: l.digest.clone(), size: l.size });
    }
    st.history_layer(format!("{} # buildkit", inst.original), layer);
    Ok(())
}

/// The rootfs `--from=word` names: a built stage, or an image pulled and unpacked for it.
fn source_root(b: &mut Builder, inst: &Instruction, word: &str) -> Result<PathBuf, BuildError> {
    if let Some(i) = b.plan.resolve_stage(word) {
        return b
            .built
            .get(&i)
            .map(|s| s.rootfs.clone())
            .ok_or_else(|| fail(b, inst, format!("--from={word}: stage {i} has not been built before this step")));
    }
    let dir = b.build_dir.join(format!("from-{}", word.replace(['/', ':', '@'], "_")));
    if !dir.exists() {
        std::fs::create_dir_all(&dir).map_err(BuildError::io(&dir))?;
        let events = b.events.clone();
        let image = b.bases.pull(&b.client, &b.handle, &b.store, word, &|e| {
            if let Some(f) = &events {
                f(crate::progress::BuildEvent::Transfer(e));
            }
        })?;
        crate::base::unpack_into(&b.store, &image, &dir, b.opts.isolation == crate::Isolation::Rootless)?;
    }
    Ok(dir)
}
