//! The build: plan the stages, start each from its base, run its instructions, assemble
//! the target's image, and write it to every output.

use crate::base::BaseImages;
use crate::cache::CacheKey;
use crate::context::BuildContext;
use crate::error::BuildError;
use crate::image::ImageConfig;
use crate::image::manifest::{ImageLayer, oci_manifest};
use crate::options::BuildOptions;
use crate::output;
use crate::progress::{BuildEvent, EventFn};
use crate::stage::{BuiltStage, StageRun};
use std::collections::HashMap;
use std::path::PathBuf;
use strata_dockerfile::{BuildPlan, Dockerfile, Instruction, PlanOptions, StageBase, StageScope};
use strata_registry::manifest::media;
use strata_registry::{Client, Platform};
use strata_snapshot::{BlobStore, LayerOptions, Snapshotter};

/// What a finished build produced.
#[derive(Debug, Clone)]
pub struct BuildOutput {
    /// `sha256:` digest of the image manifest.
    pub digest: String,
    /// `sha256:` digest of the image config.
    pub config_digest: String,
    /// The manifest bytes.
    pub manifest: Vec<u8>,
    /// The final config.
    pub config: ImageConfig,
    /// References the image was pushed to.
    pub pushed: Vec<String>,
}

/// Builds the image `opts` describe; `events` receives progress. Several platforms
/// (`linux/amd64,linux/arm64`) are built one after the other and pushed as one index.
pub async fn build(opts: BuildOptions, events: Option<EventFn>) -> Result<BuildOutput, BuildError> {
    if opts.platform.as_deref().is_some_and(|p| p.contains(',')) {
        return crate::multi_platform::build_all(opts, events).await;
    }
    build_one(opts, events).await
}

/// Builds the image for one platform.
pub(crate) async fn build_one(opts: BuildOptions, events: Option<EventFn>) -> Result<BuildOutput, BuildError> {
    let handle = tokio::runtime::Handle::current();
    // The blocking thread keeps the caller's span (a platform of several).
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(|| Builder::new(opts, events, handle)?.run()))
        .await
        .map_err(|e| BuildError::Internal(format!("the build task failed: {e}")))?
}

/// Everything shared by the stages of one build.
pub(crate) struct Builder {
    pub(crate) opts: BuildOptions,
    pub(crate) events: Option<EventFn>,
    pub(crate) handle: tokio::runtime::Handle,
    pub(crate) client: std::sync::Arc<Client>,
    pub(crate) store: BlobStore,
    pub(crate) build_dir: PathBuf,
    /// Holds this build's directory against the next build's garbage collection.
    _build_dir_lock: crate::work_dir::BuildDir,
    pub(crate) file_name: String,
    pub(crate) dockerfile: Dockerfile,
    pub(crate) plan: BuildPlan,
    pub(crate) plan_opts: PlanOptions,
    pub(crate) context: BuildContext,
    pub(crate) built: HashMap<usize, BuiltStage>,
    pub(crate) bases: BaseImages,
    pub(crate) layer_opts: LayerOptions,
    pub(crate) created: String,
    /// Set when the build root is `/` (`--isolation none`): what must survive and stay out of layers.
    pub(crate) in_place: Option<InPlaceRoot>,
    /// The layer cache, with `--cache`.
    pub(crate) cache: Option<crate::cache::LayerCache>,
    /// Content digests of bind-mount sources already walked in this build (the context,
    /// finished stages and pulled images do not change while it runs).
    pub(crate) tree_digests: std::sync::Mutex<HashMap<PathBuf, String>>,
    /// Runs RUN commands with the build's isolation.
    pub(crate) runner: Box<dyn crate::exec::runner::CommandRunner>,
}

/// The paths a build in `/` leaves alone, as unpack and clear want them and as the snapshotter does.
pub(crate) struct InPlaceRoot {
    keep: strata_snapshot::KeepPaths,
    ignore: Vec<PathBuf>,
    /// The container's own files, moved aside at the first stage and moved back at the end.
    saved: Option<crate::build_root::SavedRoot>,
}

impl Builder {
    fn new(opts: BuildOptions, events: Option<EventFn>, handle: tokio::runtime::Handle) -> Result<Self, BuildError> {
        let build_dir_lock = crate::work_dir::prepare(&opts.work_dir)?;
        let context = BuildContext::open_in(&opts.context, &opts.dockerfile, &opts.work_dir)?;
        // A tar context may carry the Dockerfile inside it (`docker build - < ctx.tar`).
        let source = strata_dockerfile::source::read(&opts.dockerfile)
            .or_else(|e| context.dockerfile_inside(&opts.context, &opts.dockerfile).map(|p| strata_dockerfile::source::read(&p)).unwrap_or(Err(e)))
            .map_err(|source| BuildError::DockerfileMissing { path: opts.dockerfile.clone(), source })?;
        let file_name = opts.dockerfile.file_name().map_or_else(|| "Dockerfile".into(), |n| n.to_string_lossy().into_owned());
        if source.lossy
            && let Some(f) = &events
        {
            f(BuildEvent::Warning(format!("{file_name} is not UTF-8; its invalid bytes read as U+FFFD, as Docker's image config would store them")));
        }
        let text = source.text;
        let dockerfile = strata_dockerfile::parse(&text, &file_name)?;
        let plan_opts =
            PlanOptions { build_args: opts.build_args.clone(), target: opts.target.clone(), target_platform: opts.platform.clone(), build_platform: None };
        let plan = strata_dockerfile::plan(&dockerfile, &plan_opts)?;
        // Transfers (pulls, pushes, cache entries) reach the caller as build events, unless
        // the caller asked the registry client for them directly.
        let mut registry = opts.registry.clone();
        if registry.progress.is_none()
            && let Some(f) = events.clone()
        {
            registry.progress = Some(std::sync::Arc::new(move |e| f(BuildEvent::Transfer(e))));
        }
        let cache = layer_cache(&opts)?;
        // A cache repository strata creates gets an expiry policy, so that it never reaches ECR's
        // 10,000 images per repository (an existing one keeps its own policy; see the README).
        if let (Some(c), Some(r)) = (&opts.cache, cache.as_ref().and_then(|c| c.repository())) {
            registry.ecr.lifecycle_on_create.push((r.repository.clone(), crate::cache::expiry_policy(c.ttl)));
        }
        let client = std::sync::Arc::new(Client::new(registry)?);
        let store = BlobStore::open(&opts.work_dir.join("blobs"))?;
        let build_dir = build_dir_lock.path().to_path_buf();
        let in_place = (opts.isolation == crate::Isolation::None).then(|| {
            let ignore = crate::build_root::keep_paths(&opts);
            tracing::debug!(?ignore, "building in /; these paths are kept");
            InPlaceRoot { keep: strata_snapshot::KeepPaths::new(ignore.iter().cloned()), ignore, saved: None }
        });
        let layer_opts = LayerOptions {
            compression: opts.compression,
            reproducible_epoch: opts.reproducible_epoch,
            // Full mode's index takes the hashes of what the layer writer reads anyway.
            content_hashes: opts.snapshot_mode == strata_snapshot::SnapshotMode::Full,
        };
        let created = match opts.reproducible_epoch {
            Some(epoch) => crate::clock::rfc3339(epoch),
            None => crate::clock::rfc3339(crate::clock::now_secs()),
        };
        let runner = crate::exec::runner::for_isolation(opts.isolation);
        Ok(Self {
            bases: BaseImages::default(),
            opts,
            events,
            handle,
            client,
            store,
            build_dir,
            _build_dir_lock: build_dir_lock,
            file_name,
            dockerfile,
            plan,
            plan_opts,
            context,
            built: HashMap::new(),
            layer_opts,
            created,
            in_place,
            cache,
            tree_digests: Default::default(),
            runner,
        })
    }

    pub(crate) fn emit(&self, event: BuildEvent) {
        if let Some(f) = &self.events {
            f(event);
        }
    }

    fn run(mut self) -> Result<BuildOutput, BuildError> {
        for warning in self.plan.warnings.clone() {
            self.emit(BuildEvent::Warning(warning.message));
        }
        let mut result = self.check_isolation().and_then(|()| self.check_destinations()).and_then(|()| self.run_stages());
        // With `/` as the build root: give the container back as it was.
        if let Some(in_place) = &mut self.in_place
            && let Some(saved) = in_place.saved.take()
            && let Err(e) = saved.restore(&in_place.keep)
        {
            tracing::error!("giving the container its files back failed: {e}");
            result = result.and(Err(e));
        }
        // Cache entries of the steps that ran are worth keeping even when a later one failed.
        if let Some(cache) = &mut self.cache {
            cache.finish(&self.handle);
        }
        // The rootfs trees are scratch space; the blob store keeps what is worth keeping. A
        // finished build's result does not wait for a large tree to be deleted (1.1 s for a
        // 100k-file RUN): it is renamed aside and deleted in the background.
        if result.is_ok() {
            crate::work_dir::remove_in_background(&self.build_dir);
        } else {
            let _ = std::fs::remove_dir_all(&self.build_dir);
        }
        result
    }

    /// `none` isolation empties `/` between stages: refuse it outside a container unless forced.
    fn check_isolation(&self) -> Result<(), BuildError> {
        if self.in_place.is_some() {
            crate::exec::check_none_isolation(self.opts.force).map_err(|e| BuildError::Options(e.to_string()))?;
            // Without /proc the mount points (and strata's own binary) cannot be told apart
            // from the image's files, and emptying / would fail on them or remove them.
            if std::fs::metadata("/proc/self/mountinfo").is_err() {
                return Err(BuildError::Options(
                    "--isolation none needs /proc mounted in the container (to find its mount points); mount proc or use --isolation chroot".into(),
                ));
            }
        }
        Ok(())
    }

    /// Fails before any work when a destination is unreachable or refuses our credentials
    /// (a HEAD under push scope), as kaniko does, so a long build does not end in a 401.
    fn check_destinations(&self) -> Result<(), BuildError> {
        if self.opts.no_push {
            return Ok(());
        }
        const PROBE: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
        for dest in &self.opts.destinations {
            let r: strata_registry::Reference = dest.parse()?;
            self.handle.block_on(self.client.blob_exists(&r, PROBE))?;
        }
        Ok(())
    }

    fn run_stages(&mut self) -> Result<BuildOutput, BuildError> {
        let stages = self.plan.stages.clone();
        let target = self.plan.target;
        for planned in &stages {
            let rootfs = match &mut self.in_place {
                Some(in_place) => {
                    if in_place.saved.is_none() {
                        in_place.saved = Some(crate::build_root::save(&in_place.keep)?);
                    } else {
                        crate::build_root::clear(&in_place.keep)?;
                    }
                    PathBuf::from("/")
                }
                None => self.build_dir.join(format!("stage-{}", planned.index)),
            };
            std::fs::create_dir_all(&rootfs).map_err(BuildError::io(&rootfs))?;
            let base_label = match &planned.base {
                StageBase::Scratch => "scratch".to_string(),
                StageBase::Image(r) => r.clone(),
                StageBase::Stage(i) => format!("stage {i}"),
            };
            self.emit(BuildEvent::StageStarted { index: planned.index, name: planned.name.clone(), base: base_label });
            let platform = self.stage_platform(planned.platform.as_deref())?;
            let (config, layers, base_key, unpacked) = self.start_from_base(planned.index, &planned.base, &rootfs, &platform)?;
            let snapshotter = match unpacked {
                true => Some(self.snapshotter_for(&rootfs)?),
                false => None,
            };
            let mut scope = StageScope::new(&self.dockerfile, &self.plan_opts, planned.index, &config.env_pairs());
            // BuildKit's stage state keeps its ARG values in the environment a stage built on it
            // starts from: they expand there and RUN sees them (not the image config).
            if let StageBase::Stage(i) = &planned.base
                && let Some(parent) = self.built.get(i)
            {
                scope.inherit_args(&parent.args);
            }
            let mut st = StageRun {
                index: planned.index,
                rootfs,
                config,
                layers,
                snapshotter,
                scope,
                cmd_set_here: false,
                created: self.created.clone(),
                cache_key: base_key,
                platform,
            };
            // ONBUILD triggers of the base run first, and the new image does not inherit them.
            let triggers = st.config.config.on_build.take().unwrap_or_default();
            let mut instructions: Vec<Instruction> = if triggers.is_empty() {
                Vec::new()
            } else {
                let source = match &planned.base {
                    StageBase::Image(r) => format!("{r} ONBUILD"),
                    StageBase::Stage(i) => format!("stage {i} ONBUILD"),
                    StageBase::Scratch => "ONBUILD".to_string(),
                };
                strata_dockerfile::parse_onbuild_triggers(&triggers, &source)?
            };
            instructions.extend(self.dockerfile.stages.get(planned.index).map(|s| s.instructions.clone()).unwrap_or_default());
            for inst in &instructions {
                self.opts.cancel.check()?;
                let expanded = st.scope.apply(inst)?;
                self.emit(BuildEvent::Step { stage: planned.index, line: inst.span.start_line, text: expanded.original.clone() });
                crate::instructions::execute(self, &mut st, &expanded)?;
            }
            // A stage whose files were never needed made no changes to them.
            if self.opts.single_snapshot && st.is_unpacked() {
                let last_line = instructions.last().map_or(0, |i| i.span.start_line);
                let changes = crate::stage::diff_event(self, &mut st, last_line)?;
                let layer = crate::stage::write_layer_event(self, &mut st, &changes)?;
                st.history_layer("strata single snapshot".into(), layer);
            }
            // In `/` the next stage replaces this one; its layers can bring it back when needed.
            // A stage never unpacked (every step hit the cache) has only its layers too.
            let rootfs = if self.in_place.is_some() || !st.is_unpacked() { None } else { Some(st.rootfs) };
            let args = st.scope.args_in_effect();
            self.built.insert(planned.index, BuiltStage { rootfs, config: st.config, layers: st.layers, cache_key: st.cache_key, args });
        }
        let final_stage = self.built.remove(&target).ok_or_else(|| BuildError::Internal(format!("target stage {target} was not built")))?;
        self.finish(final_stage)
    }

    /// Change tracking for a stage root that holds its files.
    fn snapshotter_for(&self, rootfs: &std::path::Path) -> Result<Snapshotter, BuildError> {
        let ignore = self.in_place.as_ref().map(|s| s.ignore.clone()).unwrap_or_default();
        Ok(Snapshotter::new(rootfs, self.opts.snapshot_mode, ignore)?)
    }

    /// The layer cache's entry for `key` (None without `--cache` or on a miss); a hit is
    /// reported for `line` of stage `stage`.
    pub(crate) fn cached_step(&self, stage: usize, line: usize, key: &CacheKey) -> Option<crate::cache::Hit> {
        let hit = self.cache.as_ref()?.lookup(&self.client, &self.handle, &self.store, key)?;
        self.emit(BuildEvent::CacheHit { stage, line, source: hit.source.clone() });
        Some(hit)
    }

    /// Unpacks the layers of a stage started lazily into its root, when its first step misses
    /// the cache (a no-op when the root holds its files already).
    pub(crate) fn materialize(&self, st: &mut StageRun) -> Result<(), BuildError> {
        if st.is_unpacked() {
            return Ok(());
        }
        tracing::info!(stage = st.index, layers = st.layers.len(), "a step needs the stage's files: unpacking its layers");
        let rootless = self.opts.isolation == crate::Isolation::Rootless;
        self.unpack(&st.layers, &st.rootfs, rootless, &self.in_place_keep())?;
        st.snapshotter = Some(self.snapshotter_for(&st.rootfs)?);
        Ok(())
    }

    /// Fills `rootfs` from the stage's base and returns the starting config, layers and key,
    /// and whether the root holds the base's files. An image's files are not unpacked yet:
    /// the first step that needs them does (see [`Builder::materialize`]), so a build of FROM
    /// and metadata only copies the base's blobs from registry to registry (mounted, or
    /// streamed while they download) and never unpacks them.
    fn start_from_base(
        &mut self,
        child: usize,
        base: &StageBase,
        rootfs: &std::path::Path,
        platform: &Platform,
    ) -> Result<(ImageConfig, Vec<ImageLayer>, CacheKey, bool), BuildError> {
        match base {
            StageBase::Scratch => {
                let mut config = ImageConfig {
                    architecture: platform.architecture.clone(),
                    os: platform.os.clone(),
                    variant: platform.variant.clone(),
                    ..Default::default()
                };
                config.set_env("PATH", crate::exec::DEFAULT_PATH);
                // BuildKit's empty image (dockerfile2llb emptyImage) says WorkingDir "/".
                config.config.working_dir = Some("/".into());
                Ok((config, Vec::new(), CacheKey::base("scratch", &platform.to_string()), true))
            }
            StageBase::Image(reference) => {
                let image = self.pull(reference, platform)?;
                let mut config = image.config.clone();
                if config.env_var("PATH").is_none() {
                    config.set_env("PATH", crate::exec::DEFAULT_PATH);
                }
                Ok((config, image.layers.clone(), CacheKey::base("image", &image.digest), false))
            }
            StageBase::Stage(i) => {
                // The only stage built on it takes its tree over instead of copying it; should
                // a later step still want its files, they come back from its layers.
                let hand_over = self.only_user(*i, child);
                let parent = self.built.get(i).ok_or_else(|| BuildError::Internal(format!("stage {i} was not built before its use")))?;
                let (config, layers, key, dir) =
                    (parent.config.clone(), parent.layers.clone(), CacheKey::base("stage", parent.cache_key.hex()), parent.rootfs.clone());
                // A parent without a tree (built in `/`, or never unpacked): its layers are
                // unpacked when a step needs them, as an image's.
                let unpacked = dir.is_some() && self.in_place.is_none();
                match dir {
                    _ if !unpacked => {}
                    Some(dir) if hand_over => {
                        std::fs::rename(&dir, rootfs).map_err(BuildError::io(&dir))?;
                        tracing::debug!(stage = i, "stage tree handed over to stage {child}");
                        if let Some(parent) = self.built.get_mut(i) {
                            parent.rootfs = None;
                        }
                    }
                    Some(dir) => copy_tree(&dir, rootfs)?,
                    None => {}
                }
                Ok((config, layers, key, unpacked))
            }
        }
    }

    /// Fetches the blobs of `layers` that are not in the store yet (base layers and cached
    /// layers are only noted where they are until something reads them).
    pub(crate) fn fetch_missing(&self, layers: &[ImageLayer]) -> Result<(), BuildError> {
        self.each_fetched(layers, |_| Ok(()))
    }

    /// Applies `layers`, in order, to `dir`, leaving `keep` alone; downloading the later
    /// layers overlaps unpacking the earlier ones.
    ///
    /// A blob that was already in the store and turns out damaged (it does not decompress, or
    /// its diff_id is wrong) is removed, the tree emptied, and everything unpacked once more
    /// with that blob fetched again: one bad file in the work dir never breaks every later build.
    pub(crate) fn unpack(&self, layers: &[ImageLayer], dir: &std::path::Path, rootless: bool, keep: &strata_snapshot::KeepPaths) -> Result<(), BuildError> {
        let stored: Vec<&str> = layers.iter().filter(|l| self.store.contains(&l.digest)).map(|l| l.digest.as_str()).collect();
        let once =
            || self.each_fetched(layers, |l| crate::base::unpack_layers(&self.store, std::slice::from_ref(l), dir, rootless, keep, self.opts.max_layer_size));
        match once() {
            Err(e) if dir != std::path::Path::new("/") => match damaged_blob(&e).filter(|d| stored.contains(d)) {
                Some(digest) if self.client.knows_blob(digest) => {
                    tracing::warn!("blob {digest} in the work dir is damaged ({e}); removing it and fetching it again");
                    let bad = self.store.path(digest);
                    std::fs::remove_file(&bad).map_err(BuildError::io(&bad))?;
                    empty_dir(dir)?;
                    once()
                }
                Some(digest) => {
                    let bad = self.store.path(digest);
                    let _ = std::fs::remove_file(&bad);
                    Err(BuildError::DamagedBlob { digest: digest.to_string(), source: Box::new(e) })
                }
                None => Err(e),
            },
            r => r,
        }
    }

    /// Calls `each` on every layer in order, as soon as its blob is in the store. Missing blobs
    /// are fetched in the background, several at a time: one connection rarely fills the link
    /// to a remote registry.
    fn each_fetched(&self, layers: &[ImageLayer], mut each: impl FnMut(&ImageLayer) -> Result<(), BuildError>) -> Result<(), BuildError> {
        let mut fetching = self.start_fetches(layers);
        let result = layers.iter().try_for_each(|l| {
            if let Some(task) = fetching.remove(&l.digest) {
                self.opts.cancel.block_on(&self.handle, task)?.map_err(|e| BuildError::Internal(format!("the download of {} stopped: {e}", l.digest)))??;
            }
            each(l)
        });
        // After a failure, the downloads still under way are of no use.
        for task in fetching.into_values() {
            task.abort();
        }
        result
    }

    /// Background downloads of the blobs of `layers` missing from the store, by digest.
    fn start_fetches(&self, layers: &[ImageLayer]) -> HashMap<String, tokio::task::JoinHandle<Result<(), strata_registry::Error>>> {
        let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(self.opts.registry.max_concurrent_uploads.max(1)));
        let mut fetching = HashMap::new();
        for l in layers {
            if self.store.contains(&l.digest) || fetching.contains_key(&l.digest) {
                continue;
            }
            let (client, slots, digest, size, dest) = (self.client.clone(), slots.clone(), l.digest.clone(), l.size, self.store.path(&l.digest));
            let task = self.handle.spawn(async move {
                let _slot = slots.acquire_owned().await;
                // Boxed: the download's future is deep, and the task need not hold it inline.
                Box::pin(client.get_known_blob(&digest, size, &dest)).await
            });
            fetching.insert(l.digest.clone(), task);
        }
        fetching
    }

    /// The platform a stage is built for: its `FROM --platform`, else `--custom-platform`, else the host's.
    fn stage_platform(&self, from_flag: Option<&str>) -> Result<Platform, BuildError> {
        match from_flag.or(self.opts.platform.as_deref()) {
            Some(p) => p.parse::<Platform>().map_err(|e| BuildError::Options(format!("{}: {e}", self.file_name))),
            None => Ok(Platform::host()),
        }
    }

    /// The cache-key digest of the tree at `path`, walked once per build.
    pub(crate) fn cache_tree_digest(&self, path: &std::path::Path) -> Result<String, BuildError> {
        if let Some(d) = self.tree_digests.lock().ok().and_then(|m| m.get(path).cloned()) {
            return Ok(d);
        }
        let d = crate::cache::key::tree_digest(path)?;
        if let Ok(mut m) = self.tree_digests.lock() {
            m.insert(path.to_path_buf(), d.clone());
        }
        Ok(d)
    }

    /// What unpacking into the stage's root must leave alone (nothing unless the root is `/`).
    pub(crate) fn in_place_keep(&self) -> strata_snapshot::KeepPaths {
        self.in_place.as_ref().map(|s| s.keep.clone()).unwrap_or_default()
    }

    /// Pulls `reference` for `platform` (once per build).
    pub(crate) fn pull(&mut self, reference: &str, platform: &Platform) -> Result<crate::base::PulledBase, BuildError> {
        self.bases.pull(&self.client, &self.handle, reference, platform)
    }

    /// The directory holding image `reference` for `platform`, unpacked once per build (the
    /// source of `COPY --from=<image>` and `RUN --mount=from=<image>`).
    pub(crate) fn image_root(&mut self, reference: &str, platform: &Platform) -> Result<PathBuf, BuildError> {
        let dir = self.build_dir.join(format!("from-{}-{}", reference.replace(['/', ':', '@'], "_"), platform.to_string().replace('/', "_")));
        if !dir.exists() {
            std::fs::create_dir_all(&dir).map_err(BuildError::io(&dir))?;
            let image = self.pull(reference, platform)?;
            self.unpack(&image.layers, &dir, self.opts.isolation == crate::Isolation::Rootless, &Default::default())?;
            // Cache keys name the image by its digest instead of walking its files.
        }
        Ok(dir)
    }

    /// Whether `child` is the only stage of the plan that depends on stage `parent`.
    fn only_user(&self, parent: usize, child: usize) -> bool {
        self.plan.stages.iter().filter(|s| s.index != child).all(|s| !s.deps.contains(&parent))
    }

    /// The directory holding built stage `i`'s files (unpacked from its layers when the stage
    /// was built in `/` and has been replaced since); None when it has not been built.
    pub(crate) fn stage_root(&mut self, i: usize) -> Result<Option<PathBuf>, BuildError> {
        let Some(stage) = self.built.get(&i) else {
            return Ok(None);
        };
        if let Some(dir) = &stage.rootfs {
            return Ok(Some(dir.clone()));
        }
        let dir = self.build_dir.join(format!("stage-{i}"));
        std::fs::create_dir_all(&dir).map_err(BuildError::io(&dir))?;
        let rootless = self.opts.isolation == crate::Isolation::Rootless;
        let layers = stage.layers.clone();
        tracing::info!(stage = i, layers = layers.len(), "a later step reads this stage: unpacking its layers");
        self.unpack(&layers, &dir, rootless, &Default::default())?;
        if let Some(s) = self.built.get_mut(&i) {
            s.rootfs = Some(dir.clone());
        }
        Ok(Some(dir))
    }

    /// Writes config and manifest, then every output.
    fn finish(&mut self, stage: BuiltStage) -> Result<BuildOutput, BuildError> {
        // Cache entries first: pushed while the build ran, mostly done by now, and the
        // destination push then mounts their layers instead of uploading them again.
        if let Some(cache) = &mut self.cache {
            cache.finish(&self.handle);
        }
        let mut config = stage.config;
        if !self.opts.labels.is_empty() {
            let labels = config.config.labels.get_or_insert_with(Default::default);
            for (k, v) in &self.opts.labels {
                labels.insert(k.clone(), v.clone());
            }
        }
        config.created = Some(self.created.clone());
        let config_bytes = config.to_canonical_json().map_err(|e| BuildError::Internal(format!("cannot serialise the image config: {e}")))?;
        let config_digest = self.store.put_bytes(&config_bytes)?;
        let manifest = oci_manifest(&config_digest, config_bytes.len() as u64, &stage.layers);
        let manifest_bytes = serde_json::to_vec(&manifest).map_err(|e| BuildError::Internal(format!("cannot serialise the manifest: {e}")))?;
        let digest = self.store.put_bytes(&manifest_bytes)?;
        if self.opts.oci_layout_path.is_some() || self.opts.tar_path.is_some() || self.opts.local_layers {
            self.fetch_missing(&stage.layers)?;
        }
        if let Some(dir) = &self.opts.oci_layout_path {
            let contents = output::image_layout(&digest, &manifest_bytes, &config_digest, &stage.layers, self.opts.destinations.first());
            output::write_oci_layout(&self.store, dir, &contents)?;
        }
        if let Some(path) = &self.opts.tar_path {
            let image = output::TarballImage {
                manifest_digest: &digest,
                manifest: &manifest_bytes,
                config_digest: &config_digest,
                layers: &stage.layers,
                destinations: &self.opts.destinations,
            };
            output::write_docker_archive(&self.store, path, &image.contents())?;
        }
        let mut pushed = Vec::new();
        if !self.opts.no_push {
            let pusher = output::Pusher { client: &self.client, handle: &self.handle, cancel: &self.opts.cancel, store: &self.store };
            for dest in &self.opts.destinations {
                // One platform of several: pushed under its digest; the index gets the tags.
                let dest = if self.opts.push_by_digest { by_digest(dest, &digest)? } else { dest.clone() };
                let dest = &dest;
                output::push(&pusher, dest, &manifest_bytes, media::OCI_MANIFEST, &config_digest, config_bytes.len() as u64, &stage.layers)?;
                self.emit(BuildEvent::Pushed { reference: dest.clone(), digest: digest.clone() });
                pushed.push(dest.clone());
            }
        }
        if let Some(path) = &self.opts.digest_file {
            // With the build root at `/` the final stage may lack the directory.
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(BuildError::io(parent))?;
            }
            std::fs::write(path, &digest).map_err(BuildError::io(path))?;
        }
        Ok(BuildOutput { digest, config_digest, manifest: manifest_bytes, config, pushed })
    }
}

/// The layer cache `opts.cache` asks for: entries in `<work dir>/cache/steps` and in the cache
/// repository (given, or `<first destination>/cache` when pushing).
fn layer_cache(opts: &BuildOptions) -> Result<Option<crate::cache::LayerCache>, BuildError> {
    let Some(c) = &opts.cache else { return Ok(None) };
    let repo = match (&c.repo, opts.no_push, opts.destinations.first()) {
        (Some(r), _, _) => Some(r.clone()),
        (None, false, Some(dest)) => {
            let d: strata_registry::Reference = dest.parse()?;
            Some(format!("{}/{}/cache", d.registry, d.repository))
        }
        _ => None,
    };
    let repo = match repo {
        Some(text) => {
            let mut r: strata_registry::Reference = text.parse().map_err(|e| BuildError::Options(format!("--cache-repo {text}: {e}")))?;
            if r.tag.is_some() || r.digest.is_some() {
                return Err(BuildError::Options(format!("--cache-repo {text}: give a repository without a tag or digest (entries are tagged by key)")));
            }
            r.tag = None;
            Some(r)
        }
        None => None,
    };
    if opts.single_snapshot {
        tracing::warn!("--cache has no effect with --single-snapshot (RUN steps make no layers of their own)");
        return Ok(None);
    }
    Ok(Some(crate::cache::LayerCache::new(opts.work_dir.join("cache/steps"), repo, c.ttl)))
}

/// Copies a stage's rootfs for a child stage, keeping every attribute (`cp -a`).
fn copy_tree(from: &std::path::Path, to: &std::path::Path) -> Result<(), BuildError> {
    let status = std::process::Command::new("cp").arg("-a").arg(format!("{}/.", from.display())).arg(to).status().map_err(BuildError::io(to))?;
    if !status.success() {
        return Err(BuildError::Io {
            path: to.to_path_buf(),
            source: std::io::Error::other(format!("cp -a {} {} failed ({status})", from.display(), to.display())),
        });
    }
    Ok(())
}

/// The digest of the layer whose blob `e` shows damaged (undecodable, or the wrong diff_id).
fn damaged_blob(e: &BuildError) -> Option<&str> {
    use strata_snapshot::Error as S;
    match e {
        BuildError::Snapshot(S::InLayer { digest, source }) => match source.as_ref() {
            S::DiffIdMismatch { .. } => Some(digest),
            S::Archive { source } if source.kind() != std::io::ErrorKind::StorageFull && source.raw_os_error() != Some(libc::ENOSPC) => Some(digest),
            _ => None,
        },
        _ => None,
    }
}

/// Removes everything inside `dir`, keeping `dir` itself.
fn empty_dir(dir: &std::path::Path) -> Result<(), BuildError> {
    for entry in std::fs::read_dir(dir).map_err(BuildError::io(dir))? {
        let path = entry.map_err(BuildError::io(dir))?.path();
        let removed = match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path),
            _ => std::fs::remove_file(&path),
        };
        removed.map_err(BuildError::io(&path))?;
    }
    Ok(())
}

/// `dest` with its tag replaced by `digest` (`registry/repo@sha256:...`).
fn by_digest(dest: &str, digest: &str) -> Result<String, BuildError> {
    let r: strata_registry::Reference = dest.parse()?;
    Ok(format!("{}/{}@{digest}", r.registry, r.repository))
}
