//! The build's side of [`StepContext`]: what `Builder` gives the instructions it runs.

use crate::base::PulledBase;
use crate::build::Builder;
use crate::cache::{CacheKey, Hit};
use crate::context::BuildContext;
use crate::error::BuildError;
use crate::image::manifest::ImageLayer;
use crate::options::BuildOptions;
use crate::progress::BuildEvent;
use crate::stage::{BuiltStage, StageRun};
use crate::step_context::StepContext;
use std::path::{Path, PathBuf};
use strata_registry::Platform;
use strata_snapshot::{BlobStore, KeepPaths, LayerOptions};

impl StepContext for Builder {
    fn opts(&self) -> &BuildOptions {
        &self.opts
    }

    fn file_name(&self) -> &str {
        &self.file_name
    }

    fn layer_opts(&self) -> &LayerOptions {
        &self.layer_opts
    }

    fn store(&self) -> &BlobStore {
        &self.store
    }

    fn scratch_dir(&self) -> &Path {
        &self.build_dir
    }

    fn context(&self) -> &BuildContext {
        &self.context
    }

    fn runtime(&self) -> &tokio::runtime::Handle {
        &self.handle
    }

    fn emit(&self, event: BuildEvent) {
        Builder::emit(self, event);
    }

    fn runner(&self) -> &dyn crate::exec::runner::CommandRunner {
        self.runner.as_ref()
    }

    fn caching(&self) -> bool {
        self.cache.is_some()
    }

    fn cached_step(&self, stage: usize, line: usize, key: &CacheKey) -> Option<Hit> {
        Builder::cached_step(self, stage, line, key)
    }

    fn store_step(&mut self, key: &CacheKey, layer: Option<&ImageLayer>, history: &str) {
        if let Some(cache) = self.cache.as_mut() {
            cache.store(&self.client, &self.handle, &self.store, key, layer, history);
        }
    }

    fn tree_digest(&self, path: &Path) -> Result<String, BuildError> {
        self.cache_tree_digest(path)
    }

    fn resolve_stage(&self, word: &str) -> Option<usize> {
        self.plan.resolve_stage(word)
    }

    fn built_stage(&self, index: usize) -> Option<&BuiltStage> {
        self.built.get(&index)
    }

    fn stage_root(&mut self, index: usize) -> Result<Option<PathBuf>, BuildError> {
        Builder::stage_root(self, index)
    }

    fn pull(&mut self, reference: &str, platform: &Platform) -> Result<PulledBase, BuildError> {
        Builder::pull(self, reference, platform)
    }

    fn image_root(&mut self, reference: &str, platform: &Platform) -> Result<PathBuf, BuildError> {
        Builder::image_root(self, reference, platform)
    }

    fn materialize(&self, st: &mut StageRun) -> Result<(), BuildError> {
        Builder::materialize(self, st)
    }

    fn unpack(&self, layers: &[ImageLayer], dir: &Path, rootless: bool, keep: &KeepPaths) -> Result<(), BuildError> {
        Builder::unpack(self, layers, dir, rootless, keep)
    }

    fn in_place_keep(&self) -> KeepPaths {
        Builder::in_place_keep(self)
    }
}
