//! The COPY/ADD step: choose the sources (context, stage, image, heredocs, URLs), copy, and
//! snapshot exactly the paths written.

use super::add;
use super::copy::{copy, CopyFrom, CopyRequest};
use super::chmod::SymbolicMode;
use super::fail;
use crate::build::Builder;
use crate::error::BuildError;
use crate::stage::{layer_from_changes, StageRun};
use crate::user::resolve_chown;
use std::path::PathBuf;
use strata_dockerfile::{Copy, Instruction};

/// Parses `--chmod`: an octal mode up to 07777.
pub fn parse_chmod(spec: &str) -> Result<u32, String> {
    match u32::from_str_radix(spec, 8) {
        Ok(m) if m <= 0o7777 => Ok(m),
        _ => Err(format!("--chmod={spec}: expected an octal mode such as 0755 or a symbolic one such as u=rwx,go=rx")),
    }
}

/// Parses `--chmod` in either form: (octal, symbolic).
fn parse_chmod_any(spec: &str) -> Result<(Option<u32>, Option<SymbolicMode>), String> {
    if spec.bytes().all(|b| b.is_ascii_digit()) {
        return parse_chmod(spec).map(|m| (Some(m), None));
    }
    match SymbolicMode::parse(spec) {
        Some(sym) => Ok((None, Some(sym))),
        None => parse_chmod(spec).map(|m| (Some(m), None)),
    }
}

pub(crate) fn execute(b: &mut Builder, st: &mut StageRun, inst: &Instruction, c: &Copy, is_add: bool) -> Result<(), BuildError> {
    let owner = match &c.chown {
        Some(spec) => Some(resolve_chown(&st.rootfs, spec).map_err(|m| fail(b, inst, format!("--chown={spec}: {m} (add the user to /etc/passwd first, or use numeric ids)")))?),
        None => None,
    };
    let (chmod, chmod_symbolic) = match c.chmod.as_deref() {
        Some(spec) => parse_chmod_any(spec).map_err(|m| fail(b, inst, m))?,
        None => (None, None),
    };
    if let Some(git) = c.sources.iter().find(|s| add::is_git(s)) {
        return Err(fail(b, inst, format!("{git}: ADD of a git repository is not supported yet; clone it in a RUN step or an earlier stage and COPY --from it")));
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
        owner,
        chmod,
        chmod_symbolic,
        exclude: c.exclude.clone(),
        parents: c.parents,
        link: c.link,
        unpack_archives: false,
        dest_is_dir: c.sources.len() + c.heredocs.len() > 1,
    };
    let scratch = b.build_dir.join(format!("copy-{}-{}", st.index, inst.span.start_line));
    let result = copy_all(b, st, inst, c, is_add, &base, &scratch);
    let _ = std::fs::remove_dir_all(&scratch);
    let written = result?;
    if b.opts.single_snapshot {
        st.history_metadata(format!("{} # buildkit", inst.original));
        return Ok(());
    }
    let paths: Vec<PathBuf> = written.iter().map(PathBuf::from).collect();
    // A copy onto `/` may touch anything: that is a whole-tree diff.
    let changes = if written.iter().any(|p| p.trim_end_matches('/').is_empty()) { st.snapshotter.diff()? } else { st.snapshotter.paths(&paths)? };
    let history = format!("{} # buildkit", inst.original);
    if b.cache.is_some() {
        // What was copied, by content and metadata but not time, decides this step's key and
        // so every later one's. Same content: the cached layer (same digest, nothing new to
        // push) stands for it, although the files were copied again with new times.
        let content = crate::cache::key::changes_digest(&st.rootfs, &changes)?;
        let settings = format!("{:?}", b.layer_opts);
        st.cache_key = st.cache_key.then(&[b"COPY", inst.original.as_bytes(), content.as_bytes(), settings.as_bytes()]);
        if let Some(hit) = b.cache.as_ref().and_then(|c| c.lookup(&b.client, &b.handle, &b.store, &st.cache_key)) {
            b.emit(crate::progress::BuildEvent::CacheHit { stage: st.index, line: inst.span.start_line, source: hit.source.clone() });
            st.history_layer(history, hit.layer);
            return Ok(());
        }
    }
    let layer = layer_from_changes(&st.rootfs, &changes, &b.layer_opts, &b.store)?;
    if let Some(l) = &layer {
        b.emit(crate::progress::BuildEvent::LayerWritten { digest: l.digest.clone(), size: l.size });
    }
    if let Some(cache) = b.cache.as_mut() {
        cache.store(&b.client, &b.handle, &b.store, &st.cache_key, layer.as_ref(), &history);
    }
    st.history_layer(history, layer);
    Ok(())
}

/// Every source group of the instruction, in order: heredocs, URLs, then local paths.
fn copy_all(b: &mut Builder, st: &mut StageRun, inst: &Instruction, c: &Copy, is_add: bool, base: &CopyRequest, scratch: &std::path::Path) -> Result<Vec<String>, BuildError> {
    let mut written = Vec::new();
    let mkdir = |dir: &std::path::Path| std::fs::create_dir_all(dir).map_err(BuildError::io(dir));
    if !c.heredocs.is_empty() {
        // BuildKit writes each heredoc as a 0644 file named after its delimiter, then copies it.
        let dir = scratch.join("heredocs");
        mkdir(&dir)?;
        let mut names = Vec::new();
        for h in &c.heredocs {
            let path = dir.join(&h.name);
            std::fs::write(&path, &h.content).map_err(BuildError::io(&path))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).map_err(BuildError::io(&path))?;
            names.push(h.name.clone());
        }
        let from = CopyFrom { root: &dir, ignore: None, is_rootfs: false };
        let req = CopyRequest { sources: names, ..base.clone() };
        written.extend(copy(&from, &req, &st.rootfs).map_err(|m| fail(b, inst, m))?);
    }
    let (urls, locals): (Vec<String>, Vec<String>) = c.sources.iter().cloned().partition(|s| is_add && add::is_url(s));
    if !urls.is_empty() {
        let dir = scratch.join("downloads");
        for (i, url) in urls.iter().enumerate() {
            let one = dir.join(i.to_string());
            mkdir(&one)?;
            let name = add::download(&b.handle, url, &one, c.checksum.as_deref()).map_err(|m| fail(b, inst, m))?;
            let from = CopyFrom { root: &one, ignore: None, is_rootfs: false };
            // Remote archives stay files unless `--unpack=true` asks for extraction (Dockerfile 1.17).
            let req = CopyRequest { sources: vec![name], unpack_archives: c.unpack == Some(true), ..base.clone() };
            written.extend(copy(&from, &req, &st.rootfs).map_err(|m| fail(b, inst, m))?);
        }
    }
    if !locals.is_empty() {
        let unpack = is_add && c.unpack != Some(false);
        let req = CopyRequest { sources: locals, unpack_archives: unpack, ..base.clone() };
        match &c.from {
            None => {
                let from = CopyFrom { root: b.context.root(), ignore: Some(b.context.ignore()), is_rootfs: false };
                written.extend(copy(&from, &req, &st.rootfs).map_err(|m| fail(b, inst, m))?);
            }
            Some(word) => {
                let root = source_root(b, inst, word, &st.platform)?;
                let from = CopyFrom { root: &root, ignore: None, is_rootfs: true };
                written.extend(copy(&from, &req, &st.rootfs).map_err(|m| fail(b, inst, m))?);
            }
        }
    }
    Ok(written)
}

/// The rootfs `--from=word` names: a built stage, or an image pulled and unpacked for it.
fn source_root(b: &mut Builder, inst: &Instruction, word: &str, platform: &strata_registry::Platform) -> Result<PathBuf, BuildError> {
    if let Some(i) = b.plan.resolve_stage(word) {
        return b
            .stage_root(i)?
            .ok_or_else(|| fail(b, inst, format!("--from={word}: stage {i} has not been built before this step")));
    }
    b.image_root(word, platform)
}

#[cfg(test)]
mod tests {
    #[test]
    fn chmod_octal_only() {
        assert_eq!(super::parse_chmod("0755"), Ok(0o755));
        assert_eq!(super::parse_chmod("4755"), Ok(0o4755));
        assert!(super::parse_chmod("u+x").is_err());
        assert!(super::parse_chmod("17777").is_err());
        assert!(matches!(super::parse_chmod_any("u+x"), Ok((None, Some(_)))));
        assert_eq!(super::parse_chmod_any("640"), Ok((Some(0o640), None)));
        assert!(super::parse_chmod_any("nonsense").is_err());
    }
}
