//! The state of one stage while it is built: its rootfs, config, layers and snapshotter.

use crate::error::BuildError;
use crate::image::manifest::ImageLayer;
use crate::image::{HistoryEntry, ImageConfig};
use crate::step_context::StepContext;
use std::path::PathBuf;
use strata_dockerfile::StageScope;
use strata_snapshot::{Changes, Snapshotter};

/// A finished stage: what later stages may start from or copy out of.
#[derive(Debug)]
pub struct BuiltStage {
    /// The stage's rootfs directory; None when it was built in `/` and is brought back from
    /// its layers only if a later step needs its files.
    pub rootfs: Option<PathBuf>,
    /// Its final config.
    pub config: ImageConfig,
    /// Its layers, base layers first.
    pub layers: Vec<ImageLayer>,
    /// The cache key after its last instruction.
    pub cache_key: crate::cache::CacheKey,
    /// Its ARG values in effect at its end, which a stage built on it sees (as in BuildKit).
    pub args: Vec<(String, String)>,
}

/// A stage being built.
#[derive(Debug)]
pub struct StageRun {
    /// Index of the stage in the Dockerfile.
    pub index: usize,
    /// The rootfs directory.
    pub rootfs: PathBuf,
    /// The config so far.
    pub config: ImageConfig,
    /// The layers so far.
    pub layers: Vec<ImageLayer>,
    /// Change tracking for the rootfs; None while the stage's layers are not unpacked there
    /// yet (with `--cache`, a stage starts without its files until a step misses the cache).
    pub snapshotter: Option<Snapshotter>,
    /// ARG/ENV scope for expansion.
    pub scope: StageScope,
    /// Whether CMD was set in this stage (ENTRYPOINT resets only an inherited CMD).
    pub cmd_set_here: bool,
    /// Created time for history entries.
    pub created: String,
    /// The cache key so far (kept up to date only with `--cache`).
    pub cache_key: crate::cache::CacheKey,
    /// The platform the stage is built for.
    pub platform: strata_registry::Platform,
}

impl StageRun {
    /// Whether the rootfs holds the stage's files (see [`StageRun::snapshotter`]).
    pub fn is_unpacked(&self) -> bool {
        self.snapshotter.is_some()
    }

    /// The change tracker of the unpacked rootfs.
    pub fn snapshot(&mut self) -> Result<&mut Snapshotter, BuildError> {
        self.snapshotter.as_mut().ok_or_else(|| BuildError::Internal(format!("stage {} was used before its files were unpacked", self.index)))
    }

    /// The shell for shell-form commands: the config's SHELL or `/bin/sh -c`.
    pub fn shell(&self) -> Vec<String> {
        self.config.config.shell.clone().unwrap_or_else(|| vec!["/bin/sh".into(), "-c".into()])
    }

    /// The working directory (`/` when unset).
    pub fn workdir(&self) -> String {
        match self.config.config.working_dir.as_deref() {
            Some(w) if !w.is_empty() => w.to_string(),
            _ => "/".to_string(),
        }
    }

    /// Records a history entry for an instruction that changed only metadata.
    pub fn history_metadata(&mut self, created_by: String) {
        self.config.history.push(HistoryEntry {
            created: Some(self.created.clone()),
            created_by: Some(created_by),
            comment: Some("buildkit.dockerfile.v0".into()),
            empty_layer: true,
            ..Default::default()
        });
    }

    /// Adds a layer (when `layer` is Some) and its history entry.
    pub fn history_layer(&mut self, created_by: String, layer: Option<ImageLayer>) {
        let empty_layer = layer.is_none();
        if let Some(l) = layer {
            self.config.rootfs.diff_ids.push(l.diff_id.clone());
            self.layers.push(l);
        }
        self.config.history.push(HistoryEntry {
            created: Some(self.created.clone()),
            created_by: Some(created_by),
            comment: Some("buildkit.dockerfile.v0".into()),
            empty_layer,
            ..Default::default()
        });
    }
}

/// Turns a change set into a layer in the blob store (None when nothing changed), and says so;
/// the stage's snapshotter records the content hashes the layer writer computed.
pub(crate) fn write_layer_event(b: &dyn StepContext, st: &mut StageRun, changes: &Changes) -> Result<Option<ImageLayer>, BuildError> {
    let started = std::time::Instant::now();
    let (layer, hashes) = if changes.is_empty() {
        (None, None)
    } else {
        let info = strata_snapshot::write_layer(&st.rootfs, changes, b.layer_opts(), b.store())?;
        let hashes = info.content_hashes;
        (Some(ImageLayer { digest: info.digest, diff_id: info.diff_id, size: info.size, media_type: info.media_type }), Some(hashes))
    };
    st.snapshot()?.hash_pending(hashes.as_ref())?;
    if let Some(l) = &layer {
        b.emit(crate::progress::BuildEvent::LayerWritten { digest: l.digest.clone(), size: l.size, seconds: started.elapsed().as_secs_f64() });
    }
    Ok(layer)
}

/// Diffs the whole rootfs against its last snapshot, and says how it went.
pub(crate) fn diff_event(b: &dyn StepContext, st: &mut StageRun, line: usize) -> Result<Changes, BuildError> {
    let started = std::time::Instant::now();
    let snapshotter = st.snapshot()?;
    let changes = snapshotter.diff()?;
    let (mode, scanned) = (format!("{:?}", snapshotter.mode()).to_lowercase(), snapshotter.indexed());
    b.emit(crate::progress::BuildEvent::Snapshotted { stage: st.index, line, mode, scanned, changes: changes.len(), seconds: started.elapsed().as_secs_f64() });
    Ok(changes)
}

/// Turns a change set into a layer in the blob store, or None when nothing changed.
pub fn layer_from_changes(
    rootfs: &std::path::Path,
    changes: &Changes,
    opts: &strata_snapshot::LayerOptions,
    store: &strata_snapshot::BlobStore,
) -> Result<Option<ImageLayer>, BuildError> {
    if changes.is_empty() {
        return Ok(None);
    }
    let info = strata_snapshot::write_layer(rootfs, changes, opts, store)?;
    Ok(Some(ImageLayer { digest: info.digest, diff_id: info.diff_id, size: info.size, media_type: info.media_type }))
}
