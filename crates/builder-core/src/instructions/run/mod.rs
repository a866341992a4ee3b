//! RUN: build the command line (shell, exec or heredoc), run it isolated, snapshot the changes.

pub mod mounts;

use super::fail;
use crate::error::BuildError;
use crate::exec::{RunSpec, RunStatus, check_none_isolation};
use crate::stage::StageRun;
use crate::step_context::StepContext;
use crate::user::resolve_user;
use mounts::{BindSource, MountInputs, prepare};
use std::path::PathBuf;
use strata_dockerfile::{Command, HeredocScript, Instruction, Network, Run};

/// The argv a RUN executes, and the executable heredoc script to provide (name, content).
pub fn command_line(shell: &[String], run: &Run) -> (Vec<String>, Option<(String, String)>) {
    match (&run.command, run.heredoc_script()) {
        (_, Some(HeredocScript::Executable { name, content })) => {
            // The script is a file of its own tmpfs named after the delimiter, as under
            // BuildKit; a delimiter that is no plain file name gets strata's name instead.
            let name = crate::host_name::single_component(&name).map_or_else(|| "script".to_string(), str::to_string);
            (vec![format!("/dev/pipes/{name}")], Some((name, content)))
        }
        (_, Some(HeredocScript::Shell(script))) => {
            let mut argv = shell.to_vec();
            argv.push(script);
            (argv, None)
        }
        (Command::Exec(args), None) => (args.clone(), None),
        (Command::Shell(text), None) => {
            let mut argv = shell.to_vec();
            argv.push(text.clone());
            (argv, None)
        }
    }
}

/// History text for a RUN, BuildKit style: `RUN |N K=V ... /bin/sh -c cmd # buildkit`.
fn created_by(argv: &[String], args: &[(String, String)]) -> String {
    let shown: Vec<String> = args.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let prefix = if shown.is_empty() { String::new() } else { format!("|{} {} ", shown.len(), shown.join(" ")) };
    format!("RUN {prefix}{} # buildkit", argv.join(" "))
}

pub(crate) fn execute(b: &mut dyn StepContext, st: &mut StageRun, inst: &Instruction, run: &Run) -> Result<(), BuildError> {
    let (argv, script) = command_line(&st.shell(), run);
    let mut env = st.config.env_pairs();
    let args = st.scope.build_args();
    for (k, v) in &args {
        if !env.iter().any(|(ek, _)| ek == k) {
            env.push((k.clone(), v.clone()));
        }
    }
    let cwd = st.workdir();
    if b.runner().isolation() == crate::Isolation::None {
        check_none_isolation(b.opts().force).map_err(|m| fail(b, inst, m))?;
        // Running in / while the stage lives elsewhere would change the wrong tree.
        if st.rootfs != std::path::Path::new("/") {
            return Err(fail(
                b,
                inst,
                format!("--isolation none runs RUN in / but this stage's root is {}; use --isolation chroot or rootless", st.rootfs.display()),
            ));
        }
    }
    if run.mounts.len() != run.mount_flags.len() {
        // The typed mounts come from StageScope::apply; an unexpanded RUN would lose them.
        return Err(fail(b, inst, "internal error: RUN reached the builder without its --mount flags expanded; please report this"));
    }
    let history = created_by(&argv, &st.scope.history_args());
    // A stage not unpacked yet, and no bind mount of the context: the key is known before any
    // mount is prepared, and a hit needs neither this stage's files nor a mounted stage's.
    let mut missed: Option<crate::cache::CacheKey> = None;
    if b.caching()
        && !st.is_unpacked()
        && let Some(binds) = mounts::bind_sources_without_context(&run.mounts, &cwd)
    {
        let key = run_key(b, st, run, &argv, &env, &cwd, &binds)?;
        if let Some(hit) = b.cached_step(st.index, inst.span.start_line, &key) {
            st.cache_key = key;
            return apply_cached(b, st, hit.layer, history);
        }
        missed = Some(key);
    }
    // A scratch directory for this RUN only, outside every rootfs.
    let scratch = b.scratch_dir().join(format!("run-{}-{}", st.index, inst.span.start_line));
    std::fs::create_dir_all(&scratch).map_err(crate::BuildError::io(&scratch))?;
    let prepared = {
        let context_root = b.context().root().to_path_buf();
        let context_ignore = b.context().ignore().clone();
        let cache_root = b.opts().run_cache_dir();
        let secrets = b.opts().secrets.clone();
        let platform = st.platform.clone();
        let mut from_root = |word: &str| mount_from_root(b, word, &platform);
        let mut inputs = MountInputs {
            context_root: &context_root,
            context_ignore: Some(&context_ignore),
            cache_root: &cache_root,
            scratch: &scratch,
            secrets: &secrets,
            workdir: &cwd,
            from_root: &mut from_root,
        };
        prepare(&run.mounts, &mut inputs)
    };
    let prepared = match prepared {
        Ok(p) => p,
        Err(m) => {
            let _ = std::fs::remove_dir_all(&scratch);
            return Err(fail(b, inst, format!("RUN --mount: {m}")));
        }
    };
    let cached = match (b.caching(), missed) {
        (true, Some(key)) => Ok((None, Some(key))),
        (true, None) => run_key(b, st, run, &argv, &env, &cwd, &prepared.bind_sources).map(|k| (b.cached_step(st.index, inst.span.start_line, &k), Some(k))),
        (false, _) => Ok((None, None)),
    };
    let result = match cached {
        Ok((Some(hit), Some(k))) => {
            st.cache_key = k;
            Ok(Hit(hit.layer))
        }
        Ok((_, key)) => run_isolated(b, st, inst, run, argv, script, env, cwd, &prepared).map(|()| Ran(key)),
        Err(e) => Err(e),
    };
    prepared.release();
    let _ = std::fs::remove_dir_all(&scratch);
    let key = match result? {
        Hit(layer) => return apply_cached(b, st, layer, history),
        Ran(key) => key,
    };
    if b.opts().single_snapshot {
        st.history_metadata(history);
        return Ok(());
    }
    let changes = crate::stage::diff_event(b, st, inst.span.start_line)?;
    let layer = crate::stage::write_layer_event(b, st, &changes)?;
    if let Some(k) = &key {
        b.store_step(k, layer.as_ref(), &history);
        st.cache_key = k.clone();
    }
    st.history_layer(history, layer);
    Ok(())
}

use Outcome::{Hit, Ran};

/// How a RUN step was satisfied.
enum Outcome {
    /// From the cache: the layer it made (None: it changed nothing).
    Hit(Option<crate::image::manifest::ImageLayer>),
    /// By running it; with the key to store its result under.
    Ran(Option<crate::cache::CacheKey>),
}

/// Runs the command in the stage's rootfs (unpacked first when the stage started lazily).
#[allow(clippy::too_many_arguments)]
fn run_isolated(
    b: &mut dyn StepContext,
    st: &mut StageRun,
    inst: &Instruction,
    run: &Run,
    argv: Vec<String>,
    script: Option<(String, String)>,
    mut env: Vec<(String, String)>,
    cwd: String,
    prepared: &mounts::PreparedMounts,
) -> Result<(), BuildError> {
    b.materialize(st)?;
    let user = resolve_user(&st.rootfs, st.config.config.user.as_deref().unwrap_or("")).map_err(|m| fail(b, inst, m))?;
    if !env.iter().any(|(k, _)| k == "HOME") {
        env.push(("HOME".into(), user.home.clone()));
    }
    super::workdir::ensure_dir(&st.rootfs, &cwd, None).map_err(|e| fail(b, inst, format!("cannot create working directory {cwd}: {e}")))?;
    if crate::exec::in_user_namespace() {
        use crate::exec::userns::id_is_mapped;
        for (file, id) in [("/proc/self/uid_map", user.uid), ("/proc/self/gid_map", user.gid)] {
            if !id_is_mapped(file, id) {
                return Err(fail(
                    b,
                    inst,
                    format!(
                        "id {id} does not exist in the rootless user namespace (only {}); give this user ranges in /etc/subuid and /etc/subgid",
                        crate::exec::userns::describe_uid_map()
                    ),
                ));
            }
        }
    }
    // Secrets given as variables come last: they are in no cache key, config or history.
    for (k, v) in &prepared.env {
        env.retain(|(ek, _)| ek != k);
        env.push((k.clone(), v.clone()));
    }
    let spec = RunSpec {
        rootfs: st.rootfs.clone(),
        argv,
        env,
        cwd,
        uid: user.uid,
        gid: user.gid,
        groups: user.groups.clone(),
        network_none: match run.network {
            Some(Network::None) => true,
            // Both share the host's network: strata's default network is the host's.
            Some(Network::Default | Network::Host) | None => false,
        },
        scripts: script.into_iter().collect(),
        mounts: prepared.mounts.clone(),
        staging: prepared.staging.clone(),
        rootless: b.runner().isolation() == crate::Isolation::Rootless || crate::exec::in_user_namespace(),
        cancel: b.opts().cancel.clone(),
    };
    let shown = match &run.command {
        Command::Shell(t) => t.clone(),
        Command::Exec(a) => format!("{a:?}"),
    };
    let started = std::time::Instant::now();
    let result = b.runner().run(&spec);
    b.opts().cancel.check()?;
    if matches!(result, Ok(RunStatus::Exited(0))) {
        b.emit(crate::progress::BuildEvent::Ran { stage: st.index, line: inst.span.start_line, seconds: started.elapsed().as_secs_f64() });
    }
    let status = result.map_err(|e| {
        let host = strata_registry::Platform::host();
        let hint = if st.platform.architecture != host.architecture {
            format!(
                " (this stage is built for {} on a {host} machine: RUN needs emulation, e.g. qemu-user-static registered with binfmt_misc, or build on a {} machine)",
                st.platform, st.platform
            )
        } else {
            String::new()
        };
        fail(b, inst, format!("cannot start {shown:?}: {e}{hint}"))
    })?;
    match status {
        RunStatus::Exited(0) => Ok(()),
        RunStatus::Exited(code) => Err(BuildError::RunFailed { file: b.file_name().to_string(), line: inst.span.start_line, command: shown, code }),
        RunStatus::Signaled(signal) => Err(BuildError::RunKilled { file: b.file_name().to_string(), line: inst.span.start_line, command: shown, signal }),
    }
}

/// The cache key of a RUN: the stage's key so far, the command as written and as run, the
/// environment (without the HOME taken from the user's passwd entry), USER and working
/// directory it runs with, the snapshot and compression
/// settings its layer depends on, and the content of its bind mounts (the mount options are in
/// the RUN as written).
#[allow(clippy::too_many_arguments)]
fn run_key(
    b: &mut dyn StepContext,
    st: &StageRun,
    run: &Run,
    argv: &[String],
    env: &[(String, String)],
    cwd: &str,
    bind_sources: &[(String, BindSource)],
) -> Result<crate::cache::CacheKey, BuildError> {
    let run_json = serde_json::to_vec(run).map_err(|e| BuildError::Internal(format!("cannot serialise RUN for its cache key: {e}")))?;
    let argv_text = argv.join("\0");
    let env_text: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    // The USER as written: what it resolves to is decided by the files the key already covers.
    let user_text = st.config.config.user.clone().unwrap_or_default();
    let settings = format!("{:?} {:?}", b.opts().snapshot_mode, b.layer_opts());
    // Bind sources by content (a stage or an image by its identity); what a cache mount holds
    // is not in the key, as in BuildKit: it changes with every run that uses it.
    let mut binds = String::new();
    for (target, source) in bind_sources {
        let what = match source {
            BindSource::Context(host) => b.tree_digest(host)?,
            BindSource::From { from, source } => format!("{} {source}", from_identity(b, from, &st.platform)?),
        };
        binds.push_str(&format!("{target} {what}\n"));
    }
    Ok(st.cache_key.then(&[
        b"RUN",
        &run_json,
        argv_text.as_bytes(),
        env_text.join("\0").as_bytes(),
        user_text.as_bytes(),
        cwd.as_bytes(),
        settings.as_bytes(),
        binds.as_bytes(),
    ]))
}

/// What `from=word` of a mount is, for a cache key: a built stage by its key, an image by its
/// manifest digest.
fn from_identity(b: &mut dyn StepContext, word: &str, platform: &strata_registry::Platform) -> Result<String, BuildError> {
    match b.resolve_stage(word) {
        Some(i) => b
            .built_stage(i)
            .map(|s| format!("stage {}", s.cache_key.hex()))
            .ok_or_else(|| BuildError::Options(format!("RUN --mount from={word}: stage {i} has not been built before this step"))),
        None => Ok(format!("image {}", b.pull(word, platform)?.digest)),
    }
}

/// Applies a cached RUN result: its layer goes into the image, and onto the rootfs unless the
/// stage has not been unpacked yet (then it is unpacked with the rest when a step needs it).
fn apply_cached(b: &dyn StepContext, st: &mut StageRun, layer: Option<crate::image::manifest::ImageLayer>, history: String) -> Result<(), BuildError> {
    if let Some(l) = &layer
        && st.is_unpacked()
    {
        let keep = b.in_place_keep();
        b.unpack(std::slice::from_ref(l), &st.rootfs, b.runner().isolation() == crate::Isolation::Rootless, &keep)?;
        // The unpacked files are the new baseline, not changes of the next step.
        let snapshot = st.snapshot()?;
        snapshot.diff()?;
        snapshot.hash_pending(None)?;
    }
    st.history_layer(history, layer);
    Ok(())
}

/// The root directory `RUN --mount=from=word` names: a built stage, or an image pulled and
/// unpacked for it (once per build).
fn mount_from_root(b: &mut dyn StepContext, word: &str, platform: &strata_registry::Platform) -> Result<PathBuf, mounts::MountError> {
    let from = |message: String| mounts::MountError::From { word: word.to_string(), message };
    if let Some(i) = b.resolve_stage(word) {
        return b.stage_root(i).map_err(|e| from(e.to_string()))?.ok_or_else(|| from(format!("stage {i} has not been built before this step")));
    }
    b.image_root(word, platform).map_err(|e| from(e.to_string()))
}
