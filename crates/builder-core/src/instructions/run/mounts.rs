//! `RUN --mount` with BuildKit's semantics, prepared on the host before the RUN starts:
//!
//! - `bind`: files of the context (or of `from=stage|image`), read-only unless `rw`; with
//!   `rw` the RUN writes into a scratch copy that is thrown away.
//! - `cache`: a directory under the strata cache dir, keyed by `id` (default: the target),
//!   kept between builds and never part of a layer; `sharing=shared|private|locked`.
//! - `tmpfs`: a fresh in-memory filesystem (`size=`).
//! - `secret`: a `--secret` as a read-only file (default `/run/secrets/<id>`, mode 0400) in a
//!   private tmpfs and/or as an environment variable (`env=`), for this RUN only.
//! - `ssh`: not supported yet.
//!
//! Targets that did not exist are created for the RUN and removed afterwards (see `stubs`).

use crate::exec::{RunMount, RunMountSource};
use crate::rootfs::resolve_in_root;
use crate::secrets::SecretSpec;
use sha2::Digest as _;
use std::path::{Path, PathBuf};
use strata_dockerfile::{CacheMount, CacheSharing, Mount};

/// Why a `RUN --mount` cannot be prepared; the RUN's line is added by the caller.
#[derive(Debug, thiserror::Error)]
pub enum MountError {
    /// `type=ssh`.
    #[error("RUN --mount=type=ssh is not supported yet (pass what the RUN needs with --secret instead)")]
    SshUnsupported,
    /// `type=cache,from=...`.
    #[error("RUN --mount=type=cache,from=... is not supported yet")]
    CacheFromUnsupported,
    /// A mount type that needs `target=` has none.
    #[error("RUN --mount=type={kind} needs a target (target=/path)")]
    NoTarget { kind: &'static str },
    /// The source cannot be resolved inside its root.
    #[error("--mount source {path:?}: {message}")]
    Source { path: String, message: String },
    /// The source does not exist in its root.
    #[error("--mount source {path:?} not found in {place}")]
    SourceMissing { path: String, place: String },
    /// The source is left out of the context by `.dockerignore`.
    #[error("--mount source {0:?} is excluded by .dockerignore")]
    Excluded(String),
    /// `from=` names no built stage, or an image that cannot be had.
    #[error("from={word}: {message}")]
    From { word: String, message: String },
    /// A `required=true` secret was not given.
    #[error("secret {0:?} is required but was not given (pass --secret id={0},src=PATH or id={0},env=VAR)")]
    SecretRequired(String),
    /// A secret's source cannot be read (the message names the source, never the value).
    #[error("{0}")]
    SecretUnreadable(String),
    /// `env=` for a secret that is not text.
    #[error("secret {0:?} is not UTF-8 and cannot be an environment variable")]
    SecretNotUtf8(String),
    /// A file operation on the host side failed.
    #[error("{what} {}: {source}", path.display())]
    Io { what: &'static str, path: PathBuf, source: std::io::Error },
    /// A cache mount's lock cannot be taken.
    #[error("locking cache {id:?}: {message}")]
    Lock { id: String, message: String },
    /// `cp -a` of a read-write bind source failed.
    #[error("copying {} for a rw bind mount failed", path.display())]
    Copy { path: PathBuf },
}

/// Wraps an I/O error with what was being done and where.
fn io_err(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> MountError {
    let path = path.to_path_buf();
    move |source| MountError::Io { what, path, source }
}

/// What the preparation needs from the build.
pub struct MountInputs<'a> {
    /// The build context directory (source of `bind` without `from`).
    pub context_root: &'a Path,
    /// The context's `.dockerignore`: ignored files are not visible to bind mounts either.
    pub context_ignore: Option<&'a crate::context::DockerIgnore>,
    /// Where cache mounts live between builds.
    pub cache_root: &'a Path,
    /// A directory for this RUN only (scratch copies, secret staging); removed afterwards.
    pub scratch: &'a Path,
    /// The build's `--secret`s.
    pub secrets: &'a [SecretSpec],
    /// The working directory, against which relative targets are resolved.
    pub workdir: &'a str,
    /// Resolves `from=` (a stage name or index, or an image) to a root directory.
    pub from_root: &'a mut dyn FnMut(&str) -> Result<PathBuf, MountError>,
}

impl std::fmt::Debug for MountInputs<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MountInputs")
            .field("context_root", &self.context_root)
            .field("cache_root", &self.cache_root)
            .field("scratch", &self.scratch)
            .field("secrets", &self.secrets.iter().map(|s| &s.id).collect::<Vec<_>>())
            .field("workdir", &self.workdir)
            .finish_non_exhaustive()
    }
}

/// Mounts ready for `RunSpec`, plus what must live until the RUN ends.
#[derive(Debug, Default)]
pub struct PreparedMounts {
    /// The mounts.
    pub mounts: Vec<RunMount>,
    /// Extra environment (secrets with `env=`); never recorded in the config.
    pub env: Vec<(String, String)>,
    /// Staging directory for secret files, when any.
    pub staging: Option<PathBuf>,
    /// The `bind` mounts' sources, by target: their content is part of the RUN's cache key.
    /// Cache, tmpfs and secret mounts are not.
    pub bind_sources: Vec<(String, BindSource)>,
    /// Cache locks held for the RUN's lifetime.
    locks: Vec<nix::fcntl::Flock<std::fs::File>>,
}

/// What a `bind` mount shows, for a cache key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindSource {
    /// A directory of the (filtered) build context, keyed by its content.
    Context(PathBuf),
    /// `source` (as written) in the stage or image `from`, keyed by what `from` is.
    From { from: String, source: String },
}

/// The bind sources of `mounts` when none reads the build context, known without preparing
/// anything (so a RUN whose stage is not unpacked can be looked up first); None otherwise.
pub fn bind_sources_without_context(mounts: &[Mount], workdir: &str) -> Option<Vec<(String, BindSource)>> {
    let mut out = Vec::new();
    for m in mounts {
        let Mount::Bind(bind) = m else { continue };
        let target = absolute_target(bind.target.as_deref()?, workdir);
        out.push((target, from_source(bind)?));
    }
    Some(out)
}

/// The identity of a bind mount with `from=`.
fn from_source(m: &strata_dockerfile::BindMount) -> Option<BindSource> {
    let from = m.from.as_deref()?;
    Some(BindSource::From { from: from.to_string(), source: m.source.as_deref().unwrap_or("/").to_string() })
}

impl PreparedMounts {
    /// Releases the cache locks (after the RUN has ended).
    pub fn release(self) {
        drop(self.locks);
    }
}

/// The absolute in-image path of a target: relative ones are taken from the workdir.
fn absolute_target(target: &str, workdir: &str) -> String {
    crate::instructions::workdir::join_workdir(workdir, target)
}

/// Prepares every mount of a RUN. Errors are messages for the RUN's line.
pub fn prepare(mounts: &[Mount], inputs: &mut MountInputs<'_>) -> Result<PreparedMounts, MountError> {
    let mut out = PreparedMounts::default();
    for (n, m) in mounts.iter().enumerate() {
        let kind = format!("{:?}", m.kind()).to_ascii_lowercase();
        let target = m.target().map(|t| absolute_target(t, inputs.workdir));
        match m {
            Mount::Ssh(_) => {
                return Err(MountError::SshUnsupported);
            }
            Mount::Bind(bind) => {
                let target = target.ok_or(MountError::NoTarget { kind: "bind" })?;
                let source = bind.source.as_deref().unwrap_or("/");
                let root = match bind.from.as_deref() {
                    Some(from) => (inputs.from_root)(from)?,
                    None => inputs.context_root.to_path_buf(),
                };
                let host = resolve_in_root(&root, source).map_err(|e| MountError::Source { path: source.to_string(), message: e.to_string() })?;
                if std::fs::symlink_metadata(&host).is_err() {
                    return Err(MountError::SourceMissing {
                        path: source.to_string(),
                        place: bind.from.as_deref().map_or("the build context".to_string(), |f| format!("{f:?}")),
                    });
                }
                let rw = !bind.read_only;
                let from_context = bind.from.is_none();
                let host = match inputs.context_ignore.filter(|ig| from_context && !ig.is_empty()) {
                    // BuildKit only ever sees the filtered context; so must the RUN.
                    Some(ignore) => filtered_context(&root, &host, ignore, &inputs.scratch.join(format!("ctx-{n}")))?,
                    None => host,
                };
                out.bind_sources.push((target.clone(), from_source(bind).unwrap_or_else(|| BindSource::Context(host.clone()))));
                let host = if rw {
                    // Writes must not reach the context or the other stage: work on a copy.
                    let copy = inputs.scratch.join(format!("bind-{n}"));
                    copy_all(&host, &copy)?;
                    copy
                } else {
                    host
                };
                out.mounts.push(RunMount { target, source: RunMountSource::Bind { host, readonly: !rw } });
            }
            Mount::Cache(cache) => {
                let target = target.ok_or(MountError::NoTarget { kind: "cache" })?;
                if cache.from.is_some() {
                    return Err(MountError::CacheFromUnsupported);
                }
                let id = cache.id.clone().unwrap_or_else(|| target.clone());
                let (dir, lock) = cache_dir(inputs, &id, cache, n)?;
                out.locks.extend(lock);
                out.mounts.push(RunMount { target, source: RunMountSource::Bind { host: dir, readonly: cache.read_only } });
            }
            Mount::Tmpfs(tmpfs) => {
                let target = target.ok_or(MountError::NoTarget { kind: "tmpfs" })?;
                out.mounts.push(RunMount { target, source: RunMountSource::Tmpfs { size: tmpfs.size } });
            }
            Mount::Secret(secret) => {
                let env = secret.env.as_deref();
                let id = match (secret.id.as_deref(), &target) {
                    (Some(id), _) => id.to_string(),
                    (None, Some(t)) => t.rsplit('/').next().unwrap_or_default().to_string(),
                    (None, None) => env.unwrap_or_default().to_string(),
                };
                let required = secret.required;
                let Some(spec) = inputs.secrets.iter().rev().find(|s| s.id == id) else {
                    if required {
                        return Err(MountError::SecretRequired(id));
                    }
                    tracing::debug!(id = %id, "secret not given; mount skipped");
                    continue;
                };
                let value = spec.load().map_err(MountError::SecretUnreadable)?;
                if let Some(var) = env {
                    let text = String::from_utf8(value.clone()).map_err(|_| MountError::SecretNotUtf8(id.clone()))?;
                    out.env.push((var.to_string(), text));
                }
                if env.is_none() || secret.target.is_some() {
                    let target = target.unwrap_or_else(|| format!("/run/secrets/{id}"));
                    let staging = inputs.scratch.join("secrets");
                    std::fs::create_dir_all(&staging).map_err(io_err("the secrets' staging directory", &staging))?;
                    out.staging = Some(staging);
                    out.mounts.push(RunMount {
                        target,
                        source: RunMountSource::File {
                            content: value,
                            uid: secret.uid.unwrap_or(0),
                            gid: secret.gid.unwrap_or(0),
                            mode: secret.mode.unwrap_or(0o400),
                        },
                    });
                }
            }
        }
        tracing::debug!(kind = %kind, "RUN --mount prepared");
    }
    Ok(out)
}

/// The cache directory for `id`, created with the mount's uid/gid/mode the first time, and
/// the lock its sharing mode asks for.
fn cache_dir(inputs: &MountInputs<'_>, id: &str, m: &CacheMount, n: usize) -> Result<(PathBuf, Option<nix::fcntl::Flock<std::fs::File>>), MountError> {
    use nix::fcntl::{Flock, FlockArg};
    let key = hex::encode(sha2::Sha256::digest(id.as_bytes()));
    let root = inputs.cache_root;
    std::fs::create_dir_all(root).map_err(io_err("cache dir", root))?;
    let dir = root.join(&key);
    let (uid, gid, mode) = (m.uid.unwrap_or(0), m.gid.unwrap_or(0), m.mode.unwrap_or(0o755));
    let make = |dir: &Path| -> Result<(), MountError> {
        if dir.is_dir() {
            return Ok(());
        }
        std::fs::create_dir_all(dir).map_err(io_err("cache dir", dir))?;
        std::os::unix::fs::chown(dir, Some(uid), Some(gid)).map_err(io_err("cache dir (chown to the mount's uid:gid)", dir))?;
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(mode)).map_err(io_err("cache dir", dir))
    };
    let lock_path = root.join(format!("{key}.lock"));
    let lock_file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(io_err("cache lock", &lock_path))?;
    match m.sharing {
        CacheSharing::Locked => {
            let lock = Flock::lock(lock_file, FlockArg::LockExclusive).map_err(|(_, e)| MountError::Lock { id: id.to_string(), message: e.to_string() })?;
            make(&dir)?;
            Ok((dir, Some(lock)))
        }
        CacheSharing::Private => match Flock::lock(lock_file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => {
                make(&dir)?;
                Ok((dir, Some(lock)))
            }
            // In use by another build: BuildKit gives this RUN a fresh, unshared directory.
            Err(_) => {
                let fresh = inputs.scratch.join(format!("cache-{n}"));
                make(&fresh)?;
                Ok((fresh, None))
            }
        },
        CacheSharing::Shared => {
            let lock = Flock::lock(lock_file, FlockArg::LockShared).map_err(|(_, e)| MountError::Lock { id: id.to_string(), message: e.to_string() })?;
            make(&dir)?;
            Ok((dir, Some(lock)))
        }
    }
}

/// A view of `source` (inside the context `root`) without the paths `.dockerignore`
/// excludes: hard links where possible (read-only mounts cannot alter them), else copies.
fn filtered_context(root: &Path, source: &Path, ignore: &crate::context::DockerIgnore, dest: &Path) -> Result<PathBuf, MountError> {
    let rel_of = |p: &Path| p.strip_prefix(root).unwrap_or(p).to_string_lossy().into_owned();
    let err = |p: &Path, e: std::io::Error| MountError::Io { what: "preparing the context for a bind mount:", path: p.to_path_buf(), source: e };
    let top = rel_of(source);
    if !top.is_empty() && ignore.is_excluded(&top) && !source.is_dir() {
        return Err(MountError::Excluded(top));
    }
    if !source.is_dir() {
        std::fs::create_dir_all(dest).map_err(|e| err(dest, e))?;
        let file = dest.join("file");
        link_or_copy(source, &file).map_err(|e| err(source, e))?;
        return Ok(file);
    }
    std::fs::create_dir_all(dest).map_err(|e| err(dest, e))?;
    let mut it = walkdir::WalkDir::new(source).sort_by_file_name().min_depth(1).into_iter();
    while let Some(entry) = it.next() {
        let entry = entry.map_err(|e| {
            let path = e.path().unwrap_or(source).to_path_buf();
            err(&path, e.into())
        })?;
        let rel = rel_of(entry.path());
        if ignore.is_excluded(&rel) {
            if entry.file_type().is_dir() && !ignore.may_reinclude_below(&rel) {
                it.skip_current_dir();
            }
            continue;
        }
        let inner = entry.path().strip_prefix(source).unwrap_or(entry.path());
        let target = dest.join(inner);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| err(parent, e))?;
        }
        let ft = entry.file_type();
        if ft.is_dir() {
            std::fs::create_dir_all(&target).map_err(|e| err(&target, e))?;
            if let Ok(m) = entry.metadata() {
                let _ = std::fs::set_permissions(&target, m.permissions());
            }
        } else if ft.is_symlink() {
            let link = std::fs::read_link(entry.path()).map_err(|e| err(entry.path(), e))?;
            std::os::unix::fs::symlink(link, &target).map_err(|e| err(&target, e))?;
        } else {
            link_or_copy(entry.path(), &target).map_err(|e| err(entry.path(), e))?;
        }
    }
    Ok(dest.to_path_buf())
}

fn link_or_copy(from: &Path, to: &Path) -> std::io::Result<()> {
    if std::fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to).map(|_| ())
}

fn copy_all(from: &Path, to: &Path) -> Result<(), MountError> {
    let status = std::process::Command::new("cp").arg("-a").arg(from).arg(to).status().map_err(io_err("copying for a rw bind mount (cp -a)", from))?;
    if !status.success() {
        return Err(MountError::Copy { path: from.to_path_buf() });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::secrets::{SecretSource, SecretSpec};
    use strata_dockerfile::{BindMount, SecretMount, TmpfsMount};

    /// Prepares `mounts` against a context with `data/f` and one file secret `tok`.
    fn prepared(dir: &Path, mounts: &[Mount]) -> Result<PreparedMounts, String> {
        let ctx = dir.join("ctx");
        std::fs::create_dir_all(ctx.join("data")).map_err(|e| e.to_string())?;
        std::fs::write(ctx.join("data/f"), "x").map_err(|e| e.to_string())?;
        std::fs::write(dir.join("tok"), "secret-value").map_err(|e| e.to_string())?;
        let secrets = vec![SecretSpec { id: "tok".into(), source: SecretSource::File(dir.join("tok")) }];
        let (cache_root, scratch) = (dir.join("cache"), dir.join("scratch"));
        let mut from_root = |w: &str| Err(MountError::From { word: w.to_string(), message: "no such stage".into() });
        let mut inputs = MountInputs {
            context_root: &ctx,
            context_ignore: None,
            cache_root: &cache_root,
            scratch: &scratch,
            secrets: &secrets,
            workdir: "/w",
            from_root: &mut from_root,
        };
        prepare(mounts, &mut inputs).map_err(|e| e.to_string())
    }

    fn cache(target: &str) -> CacheMount {
        CacheMount {
            target: Some(target.into()),
            id: None,
            sharing: CacheSharing::Shared,
            read_only: false,
            from: None,
            source: None,
            mode: None,
            uid: None,
            gid: None,
        }
    }

    #[test]
    fn typed_mounts_become_run_mounts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mounts = [
            Mount::Bind(BindMount { target: Some("src".into()), from: None, source: Some("data".into()), read_only: true }),
            Mount::Tmpfs(TmpfsMount { target: Some("/t".into()), size: Some(1 << 20) }),
            Mount::Secret(SecretMount { id: Some("tok".into()), target: None, env: Some("TOK".into()), required: true, mode: None, uid: None, gid: None }),
            Mount::Secret(SecretMount { id: Some("tok".into()), target: None, env: None, required: false, mode: None, uid: None, gid: None }),
            Mount::Secret(SecretMount { id: Some("absent".into()), target: None, env: None, required: false, mode: None, uid: None, gid: None }),
        ];
        let p = prepared(dir.path(), &mounts).expect("prepare");
        assert_eq!(p.mounts.len(), 3, "env= alone mounts no file, an optional secret not given is skipped: {:?}", p.mounts);
        assert_eq!(p.mounts[0].target, "/w/src", "relative targets are taken from the workdir");
        assert!(matches!(&p.mounts[0].source, RunMountSource::Bind { host, readonly: true } if host.join("f").is_file()));
        assert!(matches!(p.mounts[1].source, RunMountSource::Tmpfs { size: Some(0x100000) }));
        assert_eq!(p.mounts[2].target, "/run/secrets/tok");
        assert!(matches!(&p.mounts[2].source, RunMountSource::File { uid: 0, gid: 0, mode: 0o400, content } if content == b"secret-value"));
        assert_eq!(p.env, vec![("TOK".to_string(), "secret-value".to_string())]);
        assert_eq!(p.bind_sources.len(), 1);
    }

    #[test]
    fn cache_directories_take_mode_and_owner_and_sharing_locks() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut locked = cache("/c");
        (locked.id, locked.sharing, locked.mode, locked.uid, locked.gid) = (Some("x".into()), CacheSharing::Locked, Some(0o700), Some(1000), Some(1001));
        let ro = CacheMount { read_only: true, ..cache("/r") };
        let p = prepared(dir.path(), &[Mount::Cache(locked), Mount::Cache(ro)]).expect("prepare");
        let RunMountSource::Bind { host, readonly: false } = &p.mounts[0].source else { panic!("{:?}", p.mounts[0]) };
        let meta = std::fs::metadata(host).expect("cache dir");
        if nix::unistd::geteuid().is_root() {
            assert_eq!((meta.mode() & 0o7777, meta.uid(), meta.gid()), (0o700, 1000, 1001));
        }
        assert!(matches!(p.mounts[1].source, RunMountSource::Bind { readonly: true, .. }));
        assert_eq!(p.locks.len(), 2, "locked and shared caches hold a lock for the RUN");
        assert!(p.bind_sources.is_empty(), "cache mounts are not in the key");
    }

    #[test]
    fn unsupported_or_incomplete_mounts_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ssh = Mount::Ssh(strata_dockerfile::SshMount { id: None, target: None, required: false, mode: None, uid: None, gid: None });
        assert!(prepared(dir.path(), &[ssh]).expect_err("refused").contains("type=ssh is not supported yet"));
        let no_target = Mount::Tmpfs(TmpfsMount { target: None, size: None });
        assert_eq!(prepared(dir.path(), &[no_target]).expect_err("refused"), "RUN --mount=type=tmpfs needs a target (target=/path)");
        let required = Mount::Secret(SecretMount { id: Some("nope".into()), target: None, env: None, required: true, mode: None, uid: None, gid: None });
        assert!(prepared(dir.path(), &[required]).expect_err("refused").starts_with("secret \"nope\" is required but was not given"));
        let cache_from = Mount::Cache(CacheMount { from: Some("s".into()), ..cache("/c") });
        assert!(prepared(dir.path(), &[cache_from]).expect_err("refused").contains("from=... is not supported yet"));
    }

    #[test]
    fn targets() {
        assert_eq!(absolute_target("cache", "/app"), "/app/cache");
        assert_eq!(absolute_target("/x/../y/", "/app"), "/y");
        assert_eq!(absolute_target("./a", "/"), "/a");
    }
}
