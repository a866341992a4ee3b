//! Build events for a front end to draw (the CLI prints them; embedders may do anything).

use std::sync::Arc;

/// Something the build did.
#[derive(Debug, Clone)]
pub enum BuildEvent {
    /// A stage starts (`name` if it has one) from `base`.
    StageStarted { index: usize, name: Option<String>, base: String },
    /// An instruction starts (`line` in the Dockerfile, text after expansion).
    Step { stage: usize, line: usize, text: String },
    /// A layer was written (`seconds` to tar, compress and hash it).
    LayerWritten { digest: String, size: u64, seconds: f64 },
    /// A RUN's command ended successfully after `seconds`.
    Ran { stage: usize, line: usize, seconds: f64 },
    /// The rootfs was compared with its last snapshot (`mode`: full, redo or time): `scanned`
    /// entries looked at, `changes` found, in `seconds`.
    Snapshotted { stage: usize, line: usize, mode: String, scanned: usize, changes: usize, seconds: f64 },
    /// A registry transfer event.
    Transfer(strata_registry::ProgressEvent),
    /// The image was pushed to a destination.
    Pushed { reference: String, digest: String },
    /// A step's layer came from the cache (`source`: `local` or the cache repository): a RUN
    /// was not run; a COPY was, but its earlier layer (same content) stands for it.
    CacheHit { stage: usize, line: usize, source: String },
    /// A warning for the user.
    Warning(String),
    /// An event of one platform's build in a multi-platform build (platforms may build side by side).
    ForPlatform { platform: String, event: Box<BuildEvent> },
}

/// A callback receiving build events.
pub type EventFn = Arc<dyn Fn(BuildEvent) + Send + Sync>;
