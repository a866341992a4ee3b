//! The COPY/ADD step: choose the sources (context, stage, image, heredocs, URLs), key them,
//! copy, and snapshot exactly the paths written.

use super::copier::{CopyFrom, CopyRequest, copy};
use super::fail;
use super::url_source as add;
use crate::error::BuildError;
use crate::stage::StageRun;
use crate::step_context::StepContext;
use crate::user::resolve_chown;
use std::path::PathBuf;
use strata_dockerfile::{Chmod, Copy, Instruction};

pub(crate) fn execute(b: &mut dyn StepContext, st: &mut StageRun, inst: &Instruction, c: &Copy, is_add: bool) -> Result<(), BuildError> {
    if c.chmod_flag.is_some() && c.chmod.is_none() {
        // The typed mode comes from StageScope::apply; an unexpanded COPY would lose it.
        return Err(fail(b, inst, "internal error: COPY/ADD reached the builder without its --chmod expanded; please report this"));
    }
    let (chmod, chmod_symbolic) = match &c.chmod {
        Some(Chmod::Octal(mode)) => (Some(*mode), None),
        Some(Chmod::Symbolic(sym)) => (None, Some(sym.clone())),
        None => (None, None),
    };
    if let Some(git) = c.sources.iter().find(|s| add::is_git(s)) {
        return Err(fail(
            b,
            inst,
            format!("{git}: ADD of a git repository is not supported yet; clone it in a RUN step or an earlier stage and COPY --from it"),
        ));
    }
    if !is_add && c.sources.iter().any(|s| add::is_url(s)) {
        return Err(fail(b, inst, "COPY cannot fetch URLs; use ADD for remote files"));
    }
    if c.checksum.is_some() && !c.sources.iter().all(|s| add::is_url(s)) {
        return Err(fail(b, inst, "--checksum is only supported for HTTP(S) sources"));
    }
    let base = CopyRequest {
        sources: Vec::new(),
        dest: c.dest.clone(),
        workdir: st.workdir(),
        owner: None,
        chmod,
        chmod_symbolic,
        exclude: c.exclude.clone(),
        parents: c.parents,
        link: c.link,
        unpack_archives: false,
        // BuildKit copies each source (and heredoc) on its own onto `dest`: no directory is implied.
        dest_is_dir: false,
    };
    let scratch = b.scratch_dir().join(format!("copy-{}-{}", st.index, inst.span.start_line));
    let result = gather(b, inst, c, is_add, &scratch).and_then(|groups| copy_step(b, st, inst, c, &base, &groups));
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// Where one group of sources is read from.
enum SourceRoot {
    /// A directory: the build context (with `.dockerignore`), or heredocs and downloads.
    Dir { root: PathBuf, context: bool },
    /// A stage of this build (`--from=<stage>`).
    Stage(usize),
    /// An image (`--from=<image>`).
    Image(String),
}

/// Sources of one kind, copied with one request.
struct Group {
    root: SourceRoot,
    sources: Vec<String>,
    unpack_archives: bool,
}

/// Every source group of the instruction, in order: heredocs, URLs (downloaded), then local
/// paths. Nothing here needs the stage's rootfs.
fn gather(b: &mut dyn StepContext, inst: &Instruction, c: &Copy, is_add: bool, scratch: &std::path::Path) -> Result<Vec<Group>, BuildError> {
    let mut groups = Vec::new();
    let mkdir = |dir: &std::path::Path| std::fs::create_dir_all(dir).map_err(BuildError::io(dir));
    // BuildKit writes each heredoc as a 0644 file named after its delimiter, then copies it.
    // Each lives alone in a directory strata names itself (`heredocs/<n>`); the delimiter is
    // only the file's name there, and only when it is one plain path component.
    for (n, h) in c.heredocs.iter().enumerate() {
        let Some(name) = crate::host_name::single_component(&h.name) else {
            return Err(fail(
                b,
                inst,
                format!(
                    "heredoc <<{:?}: COPY names the file after its heredoc, and this is not a plain file name; use a name without '/' such as <<EOF and give the path as the destination",
                    h.name
                ),
            ));
        };
        let dir = scratch.join("heredocs").join(n.to_string());
        mkdir(&dir)?;
        let path = dir.join(name);
        write_new_file(&path, h.content.as_bytes(), 0o644)?;
        groups.push(Group { root: SourceRoot::Dir { root: dir, context: false }, sources: vec![name.to_string()], unpack_archives: false });
    }
    let (urls, locals): (Vec<String>, Vec<String>) = c.sources.iter().cloned().partition(|s| is_add && add::is_url(s));
    for (i, url) in urls.iter().enumerate() {
        let one = scratch.join("downloads").join(i.to_string());
        mkdir(&one)?;
        let name = add::download(b.runtime(), url, &one, c.checksum.as_deref(), b.opts().max_download_size).map_err(|m| fail(b, inst, m))?;
        // Remote archives stay files unless `--unpack=true` asks for extraction (Dockerfile 1.17).
        groups.push(Group { root: SourceRoot::Dir { root: one, context: false }, sources: vec![name], unpack_archives: c.unpack == Some(true) });
    }
    if !locals.is_empty() {
        let root = match &c.from {
            None => SourceRoot::Dir { root: b.context().root().to_path_buf(), context: true },
            Some(word) => match b.resolve_stage(word) {
                Some(i) => SourceRoot::Stage(i),
                None => SourceRoot::Image(word.clone()),
            },
        };
        groups.push(Group { root, sources: locals, unpack_archives: is_add && c.unpack != Some(false) });
    }
    Ok(groups)
}

/// Creates `path` (which must not exist yet, and is never followed if it is a link) with
/// `content` and `mode`.
fn write_new_file(path: &std::path::Path, content: &[u8], mode: u32) -> Result<(), BuildError> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::File::options().write(true).create_new(true).mode(mode).open(path).map_err(BuildError::io(path))?;
    f.write_all(content).map_err(BuildError::io(path))?;
    // The umask may have narrowed the mode given to open.
    f.set_permissions(std::fs::Permissions::from_mode(mode)).map_err(BuildError::io(path))
}

/// The cache key of the step: the key so far, the instruction as expanded, and what its
/// sources hold (a stage by its own key, an image by its digest, files by content).
fn step_key(b: &mut dyn StepContext, st: &StageRun, inst: &Instruction, base: &CopyRequest, groups: &[Group]) -> Result<crate::cache::CacheKey, BuildError> {
    let mut sources = String::new();
    for g in groups {
        let part = match &g.root {
            SourceRoot::Dir { root, context } => {
                let from = CopyFrom { root, ignore: context.then(|| b.context().ignore()), is_rootfs: false };
                let req = CopyRequest { sources: g.sources.clone(), unpack_archives: g.unpack_archives, ..base.clone() };
                let digest = super::copier::source_digest(&from, &req).map_err(|m| fail(b, inst, m))?;
                format!("files {:?} {} {digest}", g.sources, g.unpack_archives)
            }
            SourceRoot::Stage(i) => {
                let stage = b.built_stage(*i).ok_or_else(|| fail(b, inst, format!("stage {i} has not been built before this step")))?;
                format!("stage {} {:?}", stage.cache_key.hex(), g.sources)
            }
            SourceRoot::Image(word) => {
                let image = b.pull(word, &st.platform)?;
                format!("image {} {:?}", image.digest, g.sources)
            }
        };
        sources.push_str(&part);
        sources.push('\n');
    }
    let settings = format!("{:?}", b.layer_opts());
    Ok(st.cache_key.then(&[b"COPY", inst.original.as_bytes(), sources.as_bytes(), settings.as_bytes()]))
}

/// Copies the groups into the rootfs and snapshots exactly the paths written; with `--cache`,
/// a step whose key has an entry takes the cached layer (same digest, nothing new to push),
/// and a stage not unpacked yet is not unpacked for it at all.
fn copy_step(b: &mut dyn StepContext, st: &mut StageRun, inst: &Instruction, c: &Copy, base: &CopyRequest, groups: &[Group]) -> Result<(), BuildError> {
    let history = format!("{} # buildkit", inst.original);
    let key = match b.caching() {
        true => Some(step_key(b, st, inst, base, groups)?),
        false => None,
    };
    let hit = key.as_ref().and_then(|k| b.cached_step(st.index, inst.span.start_line, k));
    if !st.is_unpacked() {
        if let (Some(hit), Some(k)) = (&hit, &key) {
            st.history_layer(history, hit.layer.clone());
            st.cache_key = k.clone();
            return Ok(());
        }
        b.materialize(st)?;
    }
    let owner = match &c.chown {
        Some(spec) => Some(
            resolve_chown(&st.rootfs, spec)
                .map_err(|m| fail(b, inst, format!("--chown={spec}: {m} (add the user to /etc/passwd first, or use numeric ids)")))?,
        ),
        None => None,
    };
    let mut written = Vec::new();
    for g in groups {
        let req = CopyRequest { sources: g.sources.clone(), owner, unpack_archives: g.unpack_archives, ..base.clone() };
        let (root, ignore, is_rootfs) = match &g.root {
            SourceRoot::Dir { root, context } => (root.clone(), *context, false),
            SourceRoot::Stage(i) => {
                let root = b.stage_root(*i)?.ok_or_else(|| fail(b, inst, format!("--from: stage {i} has not been built before this step")))?;
                (root, false, true)
            }
            SourceRoot::Image(word) => (b.image_root(word, &st.platform)?, false, true),
        };
        let from = CopyFrom { root: &root, ignore: ignore.then(|| b.context().ignore()), is_rootfs };
        written.extend(copy(&from, &req, &st.rootfs).map_err(|m| fail(b, inst, m))?);
    }
    if b.opts().single_snapshot {
        st.history_metadata(history);
        return Ok(());
    }
    let paths: Vec<PathBuf> = written.iter().map(PathBuf::from).collect();
    // A copy onto `/` may touch anything: that is a whole-tree diff.
    let changes = if written.iter().any(|p| p.trim_end_matches('/').is_empty()) { st.snapshot()?.diff()? } else { st.snapshot()?.paths(&paths)? };
    if let Some(k) = &key {
        st.cache_key = k.clone();
    }
    // Same sources: the cached layer stands for the new copy, although its files were copied
    // again with new times.
    if let Some(hit) = hit {
        st.snapshot()?.hash_pending(None)?;
        st.history_layer(history, hit.layer);
        return Ok(());
    }
    let layer = crate::stage::write_layer_event(b, st, &changes)?;
    if let Some(k) = &key {
        b.store_step(k, layer.as_ref(), &history);
    }
    st.history_layer(history, layer);
    Ok(())
}
