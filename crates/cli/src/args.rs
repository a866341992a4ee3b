//! Command-line arguments, named after kaniko's flags where they mean the same (kaniko's own
//! command line is rewritten onto these first: see `kaniko_flags`).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// strata: build OCI images from Dockerfiles without a daemon, and push them.
#[derive(Debug, Parser)]
#[command(name = "strata", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build an image and push it (kaniko's executor).
    Build(Box<BuildArgs>),
    /// Print the resolved build plan as JSON without building.
    Plan(PlanArgs),
    /// Push an image tarball written earlier (`build --tar-path`, `docker save`, an OCI archive)
    /// to the destinations, with the same registry and auth flags as `build`: `--source-tar FILE`.
    Push(Box<BuildArgs>),
    /// Join images already pushed, one per platform (`--image REF`, repeatable), into one OCI
    /// index pushed to the destinations (each image's platform is read from its config).
    Manifest(Box<BuildArgs>),
}

/// The inputs shared by `build` and `plan`.
#[derive(Debug, Args, Clone)]
pub struct InputArgs {
    /// Path of the Dockerfile (relative paths are taken from the context).
    #[arg(short = 'f', long, default_value = "Dockerfile")]
    pub dockerfile: PathBuf,
    /// Build context: a directory, or a tar archive (plain, gzip, bzip2, xz or zstd; also
    /// written `tar://PATH`) whose Dockerfile may be inside it.
    #[arg(short = 'c', long, default_value = ".")]
    pub context: PathBuf,
    /// A directory within the context to use as the context (kaniko's flag).
    #[arg(long, value_name = "PATH")]
    pub context_sub_path: Option<PathBuf>,
    /// Build argument `KEY=VALUE`, or `KEY` to take the value from the environment.
    #[arg(long = "build-arg", value_name = "KEY[=VALUE]")]
    pub build_args: Vec<String>,
    /// Stage to build (name or index); the last stage by default.
    #[arg(long)]
    pub target: Option<String>,
}

/// Snapshot modes.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SnapshotModeArg {
    /// Compare file contents.
    Full,
    /// Compare metadata only (mode, size, owner, mtime).
    Redo,
    /// Compare mtimes only.
    Time,
}

/// Layer compression.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum CompressionArg {
    Gzip,
    Zstd,
    None,
}

/// RUN isolation.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum IsolationArg {
    /// Pick `chroot` as root and `rootless` otherwise.
    Auto,
    Chroot,
    Rootless,
    None,
}

/// `strata build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub input: InputArgs,
    /// Where to push the image (repeatable).
    #[arg(short = 'd', long = "destination", value_name = "REF")]
    pub destinations: Vec<String>,
    /// Build only; push nothing.
    #[arg(long)]
    pub no_push: bool,
    /// Also write the image as an OCI layout in this directory.
    #[arg(long, value_name = "DIR")]
    pub oci_layout_path: Option<PathBuf>,
    /// Also write the image as a `docker load` tarball (docker-archive) at this path.
    #[arg(long, value_name = "FILE")]
    pub tar_path: Option<PathBuf>,
    /// `strata push`: the image tarball to push (its blobs are checked against their digests).
    #[arg(long, value_name = "FILE")]
    pub source_tar: Option<PathBuf>,
    /// `strata manifest`: an image to join into the index (repeatable; an index gives its entries).
    #[arg(long = "image", value_name = "REF")]
    pub images: Vec<String>,
    /// Write the image manifest digest to this file.
    #[arg(long, value_name = "FILE")]
    pub digest_file: Option<PathBuf>,
    /// Write `REPO@DIGEST` of each destination to this file, one per line.
    #[arg(long, value_name = "FILE")]
    pub image_name_with_digest_file: Option<PathBuf>,
    /// Write `REPO:TAG@DIGEST` of each destination to this file, one per line.
    #[arg(long, value_name = "FILE")]
    pub image_name_tag_with_digest_file: Option<PathBuf>,
    /// Label `KEY=VALUE` for the image (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Reach registries over plain HTTP.
    #[arg(long)]
    pub insecure: bool,
    /// A registry reached over plain HTTP (repeatable).
    #[arg(long = "insecure-registry", value_name = "HOST[:PORT]")]
    pub insecure_registries: Vec<String>,
    /// Do not verify registries' TLS certificates.
    #[arg(long)]
    pub skip_tls_verify: bool,
    /// A registry whose TLS certificate is not verified (repeatable).
    #[arg(long = "skip-tls-verify-registry", value_name = "HOST[:PORT]")]
    pub skip_tls_verify_registries: Vec<String>,
    /// Pull (base images, cache) over plain HTTP from any registry; pushes keep HTTPS.
    #[arg(long)]
    pub insecure_pull: bool,
    /// Do not verify TLS certificates when pulling; pushes still verify.
    #[arg(long)]
    pub skip_tls_verify_pull: bool,
    /// How long one attempt of an AWS call (credentials, STS, ECR) may take, as a Go duration; three attempts at most.
    #[arg(long, value_name = "DURATION", env = "STRATA_AWS_TIMEOUT", default_value = "60s")]
    pub aws_timeout: String,
    /// `REGISTRY=PATH` of a CA certificate (PEM) to trust for that registry (repeatable).
    #[arg(long = "registry-certificate", value_name = "REGISTRY=PATH")]
    pub registry_certificates: Vec<String>,
    /// `REGISTRY=CERT.pem,KEY.pem`: a client certificate for mutual TLS with that registry (repeatable).
    #[arg(long = "registry-client-cert", value_name = "REGISTRY=CERT,KEY")]
    pub registry_client_certs: Vec<String>,
    /// A mirror tried first for docker.io images (repeatable).
    #[arg(long = "registry-mirror", value_name = "HOST")]
    pub registry_mirrors: Vec<String>,
    /// `FROM=TO` registry host rewrite (repeatable).
    #[arg(long = "registry-map", value_name = "FROM=TO")]
    pub registry_maps: Vec<String>,
    /// Retries for registry requests that fail transiently.
    #[arg(long = "push-retry", default_value_t = 3)]
    pub push_retry: u32,
    /// How changes are detected after RUN.
    #[arg(long, value_enum, default_value = "full")]
    pub snapshot_mode: SnapshotModeArg,
    /// Largest uncompressed size of one base or cached layer: a ratio to its compressed size
    /// (`100x`, at least 1 GiB), a size (`200GiB`, `500MB`) or `none`; a gzip bomb stops there.
    #[arg(long = "max-layer-size", value_name = "LIMIT", default_value = "100x", value_parser = strata_snapshot::LayerSizeLimit::parse)]
    pub max_layer_size: strata_snapshot::LayerSizeLimit,
    /// One layer for the whole final stage.
    #[arg(long)]
    pub single_snapshot: bool,
    /// Layer compression.
    #[arg(long, value_enum, default_value = "gzip")]
    pub compression: CompressionArg,
    /// Compression level (gzip 0-9, default 1 as kaniko; zstd 1-22, default 3).
    #[arg(long)]
    pub compression_level: Option<i32>,
    /// Byte-identical images for identical inputs (timestamps from SOURCE_DATE_EPOCH, else 0).
    #[arg(long)]
    pub reproducible: bool,
    /// How RUN is isolated.
    #[arg(long, value_enum, default_value = "auto")]
    pub isolation: IsolationArg,
    /// Where strata keeps its blob cache and build directories.
    #[arg(long, value_name = "DIR", env = "STRATA_WORK_DIR")]
    pub work_dir: Option<PathBuf>,
    /// A secret for `RUN --mount=type=secret`: `id=ID,src=PATH` or `id=ID,env=VAR` (repeatable).
    #[arg(long = "secret", value_name = "id=ID,src=PATH|env=VAR")]
    pub secrets: Vec<String>,
    /// Allow `--isolation none` outside a container (it builds into / of this machine).
    #[arg(long)]
    pub force: bool,
    /// Where `RUN --mount=type=cache` directories persist (default: <work-dir>/run-cache). Not
    /// kaniko's `--cache-dir` (its base-image cache), which strata ignores with a warning.
    #[arg(long, value_name = "DIR")]
    pub run_cache_dir: Option<PathBuf>,
    /// The platform to build for, `os/arch[/variant]` (default: the host's); base images are
    /// pulled for it. RUN steps for another architecture need binfmt emulation.
    #[arg(long = "custom-platform", visible_alias = "platform", value_name = "OS/ARCH")]
    pub custom_platform: Option<String>,
    /// Reuse the layers of earlier builds' RUN, COPY, ADD and WORKDIR steps (kept in the work dir
    /// and in the cache repository); a stage is unpacked only from its first miss on.
    #[arg(long)]
    pub cache: bool,
    /// Repository for cache entries (default `<first destination>/cache` when pushing).
    #[arg(long, value_name = "REGISTRY/REPO")]
    pub cache_repo: Option<String>,
    /// Cache entries older than this are not used: `336h` (the default), `30m`, `1h30m`, `45s`; a bare number is hours.
    #[arg(long, value_name = "DURATION")]
    pub cache_ttl: Option<String>,
    /// With `--isolation none`: a path of the container that is never captured in a layer nor
    /// removed between stages (repeatable; strata's own files and mount points always are).
    #[arg(long = "ignore-path", value_name = "PATH")]
    pub ignore_paths: Vec<PathBuf>,
    /// The most one `ADD <url>` may download: `8GiB` (the default), `512MiB`, bytes.
    #[arg(long, value_name = "SIZE", value_parser = crate::size::parse_size)]
    pub max_download_size: Option<u64>,
    /// Log level: error, warn, info, debug, trace.
    #[arg(short = 'v', long, default_value = "info")]
    pub verbosity: String,
    /// Log format: text, color or json.
    #[arg(long, default_value = "text")]
    pub log_format: String,
}

/// `strata plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub input: InputArgs,
}
