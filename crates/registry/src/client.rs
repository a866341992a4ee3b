//! The registry client: pulls and pushes over the OCI distribution API.

use crate::{Error, Manifest, Platform, ProgressFn, Reference};
use std::path::{Path, PathBuf};

/// Username and password for a registry; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}:<redacted>)", self.username)
    }
}

/// ECR settings (used only with the `ecr` feature, for `*.dkr.ecr.*.amazonaws.com` registries).
#[derive(Debug, Clone, Default)]
pub struct EcrOptions {
    /// AWS region; taken from the registry host when absent.
    pub region: Option<String>,
    /// Role to assume before asking for a token.
    pub assume_role: Option<String>,
    /// External id for the assumed role.
    pub external_id: Option<String>,
    /// Create the repository when it does not exist.
    pub create_repository: bool,
}

/// How the client reaches registries.
#[derive(Clone, Default)]
pub struct ClientOptions {
    /// Registries (`host[:port]`) reached over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// Every registry may be reached over plain HTTP.
    pub insecure: bool,
    /// Accept any TLS certificate (all registries).
    pub skip_tls_verify: bool,
    /// Accept any TLS certificate from these registries.
    pub skip_tls_verify_registries: Vec<String>,
    /// Extra CA certificates (PEM files) trusted for every registry.
    pub ca_certs: Vec<PathBuf>,
    /// Mirrors tried first for docker.io (`host[:port][/path]`).
    pub registry_mirrors: Vec<String>,
    /// Host rewrites `from -> to` applied to every request.
    pub registry_maps: Vec<(String, String)>,
    /// Explicit credentials per registry host.
    pub credentials: Vec<(String, Credentials)>,
    /// Directory holding docker's `config.json` (`DOCKER_CONFIG`); `~/.docker` when absent.
    pub docker_config_dir: Option<PathBuf>,
    /// Retries for transient failures.
    pub retries: u32,
    /// ECR settings.
    pub ecr: EcrOptions,
    /// Progress callback.
    pub progress: Option<ProgressFn>,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("insecure_registries", &self.insecure_registries)
            .field("insecure", &self.insecure)
            .field("skip_tls_verify", &self.skip_tls_verify)
            .field("registry_maps", &self.registry_maps)
            .finish_non_exhaustive()
    }
}

/// An image manifest resolved for one platform.
#[derive(Debug, Clone)]
pub struct PulledImage {
    /// Digest of the platform manifest.
    pub digest: String,
    /// Media type of the platform manifest.
    pub media_type: String,
    /// The manifest bytes as served.
    pub raw: Vec<u8>,
    /// The parsed manifest.
    pub manifest: Manifest,
}

/// A blob to push, read from a file.
#[derive(Debug, Clone)]
pub struct PushBlob {
    pub digest: String,
    pub size: u64,
    pub path: PathBuf,
}

/// An image to push: its blobs (config included) and its manifest.
#[derive(Debug, Clone)]
pub struct PushImage {
    pub blobs: Vec<PushBlob>,
    pub manifest: Vec<u8>,
    pub manifest_media_type: String,
}

/// A registry client with its connection pool, token cache and options.
#[derive(Debug)]
pub struct Client {
    _opts: ClientOptions,
}

impl Client {
    /// Makes a client.
    pub fn new(opts: ClientOptions) -> Result<Self, Error> {
        Ok(Self { _opts: opts })
    }

    /// Resolves `r` to the manifest for `platform` (through an index if needed).
    pub async fn get_image(&self, r: &Reference, platform: &Platform) -> Result<PulledImage, Error> {
        let _ = (r, platform);
        Err(Error::Unimplemented)
    }

    /// Small blob (a config) into memory, verified.
    pub async fn get_blob_bytes(&self, r: &Reference, digest: &str) -> Result<Vec<u8>, Error> {
        let _ = (r, digest);
        Err(Error::Unimplemented)
    }

    /// Streams a blob to `dest` (atomically, verified against `digest`).
    pub async fn get_blob_to_file(&self, r: &Reference, digest: &str, dest: &Path) -> Result<(), Error> {
        let _ = (r, digest, dest);
        Err(Error::Unimplemented)
    }

    /// Pushes every blob missing at `r`, then the manifest under `r`'s tag (or digest); returns the manifest digest.
    pub async fn push_image(&self, r: &Reference, image: &PushImage) -> Result<String, Error> {
        let _ = (r, image);
        Err(Error::Unimplemented)
    }
}
