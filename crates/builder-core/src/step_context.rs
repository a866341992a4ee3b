//! What an instruction may ask of the build it is part of: a narrow interface between the
//! instructions (`instructions/`, `stage.rs`) and the build that runs them (`build.rs`).
//!
//! The build implements it; a test double implements it over temporary directories, so RUN,
//! COPY and WORKDIR can be unit-tested without root, a registry or a cache.

use crate::base::PulledBase;
use crate::cache::{CacheKey, Hit};
use crate::context::BuildContext;
use crate::error::BuildError;
use crate::image::manifest::ImageLayer;
use crate::options::BuildOptions;
use crate::progress::BuildEvent;
use crate::stage::{BuiltStage, StageRun};
use std::path::{Path, PathBuf};
use strata_registry::Platform;
use strata_snapshot::{BlobStore, KeepPaths, LayerOptions};

/// The build's services as a step sees them.
pub(crate) trait StepContext {
    /// The build's options.
    fn opts(&self) -> &BuildOptions;
    /// The Dockerfile's name, for error messages.
    fn file_name(&self) -> &str;
    /// How layers are written (compression, reproducible times).
    fn layer_opts(&self) -> &LayerOptions;
    /// The blob store layers are written to.
    fn store(&self) -> &BlobStore;
    /// This build's scratch directory, outside every rootfs.
    fn scratch_dir(&self) -> &Path;
    /// The build context.
    fn context(&self) -> &BuildContext;
    /// The async runtime downloads run on.
    fn runtime(&self) -> &tokio::runtime::Handle;
    /// Reports progress.
    fn emit(&self, event: BuildEvent);
    /// How RUN executes its commands, chosen once per build.
    fn runner(&self) -> &dyn crate::exec::runner::CommandRunner;

    /// Whether a layer cache is in use (`--cache`).
    fn caching(&self) -> bool;
    /// The cached result for `key` (None without a cache or on a miss); a hit is reported for
    /// `line` of stage `stage`.
    fn cached_step(&self, stage: usize, line: usize, key: &CacheKey) -> Option<Hit>;
    /// Stores a step's result under `key` (a no-op without a cache).
    fn store_step(&mut self, key: &CacheKey, layer: Option<&ImageLayer>, history: &str);
    /// A content digest of the directory tree at `path`, for cache keys.
    fn tree_digest(&self, path: &Path) -> Result<String, BuildError>;

    /// The stage index a `--from` or `from=` word names, if it names a stage.
    fn resolve_stage(&self, word: &str) -> Option<usize>;
    /// A finished stage.
    fn built_stage(&self, index: usize) -> Option<&BuiltStage>;
    /// The root directory of finished stage `index` (brought back from its layers if needed).
    fn stage_root(&mut self, index: usize) -> Result<Option<PathBuf>, BuildError>;
    /// An image pulled for `platform` (once per build).
    fn pull(&mut self, reference: &str, platform: &Platform) -> Result<PulledBase, BuildError>;
    /// The root directory of an image pulled and unpacked for `--from` or `from=`.
    fn image_root(&mut self, reference: &str, platform: &Platform) -> Result<PathBuf, BuildError>;
    /// Unpacks a stage started lazily into its root (a no-op when it holds its files).
    fn materialize(&self, st: &mut StageRun) -> Result<(), BuildError>;
    /// Applies `layers` to the stage root `dir`.
    fn unpack(&self, layers: &[ImageLayer], dir: &Path, rootless: bool, keep: &KeepPaths) -> Result<(), BuildError>;
    /// What unpacking leaves alone (the container's own files when building in `/`).
    fn in_place_keep(&self) -> KeepPaths;
}
