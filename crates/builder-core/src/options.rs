//! Everything a build takes as input besides the Dockerfile text.

use std::path::PathBuf;
use strata_registry::ClientOptions;
use strata_snapshot::{Compression, LayerSizeLimit, SnapshotMode};

/// How RUN instructions are isolated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Isolation {
    /// As root: private mount namespace, chroot into the rootfs, /proc /dev /sys mounted.
    #[default]
    Chroot,
    /// As a normal user: a user namespace maps the user to root inside.
    Rootless,
    /// kaniko-style: the build root is `/`; only inside a throwaway container.
    None,
}

impl std::fmt::Display for Isolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Chroot => "chroot",
            Self::Rootless => "rootless",
            Self::None => "none",
        })
    }
}

/// Inputs of one build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Path of the Dockerfile.
    pub dockerfile: PathBuf,
    /// Build context directory.
    pub context: PathBuf,
    /// Image references to push to.
    pub destinations: Vec<String>,
    /// Build and write outputs, but push nothing.
    pub no_push: bool,
    /// `--build-arg` values, already resolved.
    pub build_args: Vec<(String, String)>,
    /// `--target` stage.
    pub target: Option<String>,
    /// `--label` values added to the final image.
    pub labels: Vec<(String, String)>,
    /// Write the image as an OCI layout into this directory too.
    pub oci_layout_path: Option<PathBuf>,
    /// Write the image as a `docker load` tarball (docker-archive) at this path too.
    pub tar_path: Option<PathBuf>,
    /// Write the manifest digest to this file.
    pub digest_file: Option<PathBuf>,
    /// RUN isolation.
    pub isolation: Isolation,
    /// How changes are detected after RUN.
    pub snapshot_mode: SnapshotMode,
    /// Largest uncompressed size of one base or cached layer (`--max-layer-size`).
    pub max_layer_size: LayerSizeLimit,
    /// One layer for the whole stage instead of one per instruction.
    pub single_snapshot: bool,
    /// Layer compression.
    pub compression: Compression,
    /// Timestamps fixed (SOURCE_DATE_EPOCH or 0) for byte-identical images.
    pub reproducible_epoch: Option<i64>,
    /// Where strata keeps its blob cache and build directories.
    pub work_dir: PathBuf,
    /// Registry access settings.
    pub registry: ClientOptions,
    /// `--secret`s for `RUN --mount=type=secret`.
    pub secrets: Vec<crate::secrets::SecretSpec>,
    /// `--force`: allow `none` isolation outside a container.
    pub force: bool,
    /// Where `RUN --mount=type=cache` directories persist (default `<work_dir>/run-cache`).
    pub cache_dir: Option<PathBuf>,
    /// Paths never captured in a layer nor removed between stages when the build root is `/`
    /// (kaniko's `--ignore-path`); strata's own files and mount points are always kept.
    pub ignore_paths: Vec<PathBuf>,
    /// `--custom-platform`: the platform built for (`os/arch[/variant]`); the host's when None.
    pub platform: Option<String>,
    /// `--cache`: reuse RUN layers of earlier builds (None: every RUN runs).
    pub cache: Option<CacheOptions>,
    /// The most bytes one `ADD <url>` may download (a server's answer has no descriptor to
    /// bound it); default [`DEFAULT_MAX_DOWNLOAD_SIZE`].
    pub max_download_size: u64,
    /// Stops the build when cancelled (the CLI cancels it on SIGTERM and SIGINT).
    pub cancel: crate::Cancel,
    /// Push the image under its digest only (one platform of a multi-platform build: the
    /// index takes the destinations' tags).
    pub push_by_digest: bool,
    /// How many platforms of a multi-platform build are built at once (None: as many as the
    /// CPUs this process may use, `std::thread::available_parallelism`; 1: one after another).
    pub platform_jobs: Option<usize>,
    /// Keep every layer of the image in the work dir's blob store, even those still only in a
    /// registry (set for each platform of a multi-platform tarball or OCI layout).
    pub local_layers: bool,
}

/// The default cap on one `ADD <url>` download: 8 GiB.
pub const DEFAULT_MAX_DOWNLOAD_SIZE: u64 = 8 << 30;

/// Layer cache settings.
#[derive(Debug, Clone)]
pub struct CacheOptions {
    /// Repository holding cache entries (`registry/path`); default `<first destination>/cache`
    /// when pushing, else the work dir only.
    pub repo: Option<String>,
    /// Entries older than this are misses (kaniko's default: two weeks).
    pub ttl: std::time::Duration,
}

impl Default for CacheOptions {
    fn default() -> Self {
        Self { repo: None, ttl: std::time::Duration::from_secs(336 * 3600) }
    }
}

impl BuildOptions {
    /// Options for building `dockerfile` in `context` with defaults for everything else.
    pub fn new(dockerfile: PathBuf, context: PathBuf) -> Self {
        Self {
            dockerfile,
            context,
            destinations: Vec::new(),
            no_push: false,
            build_args: Vec::new(),
            target: None,
            labels: Vec::new(),
            oci_layout_path: None,
            tar_path: None,
            digest_file: None,
            isolation: Isolation::default(),
            snapshot_mode: SnapshotMode::default(),
            max_layer_size: LayerSizeLimit::default(),
            single_snapshot: false,
            compression: Compression::default(),
            reproducible_epoch: None,
            work_dir: crate::work_dir::default_work_dir(),
            registry: ClientOptions::default(),
            secrets: Vec::new(),
            force: false,
            cache_dir: None,
            ignore_paths: Vec::new(),
            cache: None,
            platform: None,
            max_download_size: DEFAULT_MAX_DOWNLOAD_SIZE,
            cancel: crate::Cancel::default(),
            push_by_digest: false,
            platform_jobs: None,
            local_layers: false,
        }
    }
}

impl BuildOptions {
    /// The directory holding `RUN --mount=type=cache` contents.
    pub fn run_cache_dir(&self) -> PathBuf {
        self.cache_dir.clone().unwrap_or_else(|| self.work_dir.join("run-cache"))
    }
}
