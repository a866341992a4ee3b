//! The registry client: pulls and pushes over the OCI distribution API.

use crate::auth::AuthCache;
use crate::transport::Endpoint;
use crate::{Error, Manifest, Platform, ProgressEvent, ProgressFn, Reference};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    /// AWS region of the STS session and of repository creation (kaniko-ecr's `PLUGIN_REGION`);
    /// the registry host's when absent. Tokens always come from each registry's own region.
    pub region: Option<String>,
    /// Role to assume before asking for a token.
    pub assume_role: Option<String>,
    /// External id for the assumed role.
    pub external_id: Option<String>,
    /// Create the repository when it does not exist.
    pub create_repository: bool,
    /// Scan images on push: set at creation, and on an existing repository when creating is on
    /// (drone-ecr's `PLUGIN_SCAN_ON_PUSH`).
    pub scan_on_push: bool,
    /// Tags of a repository strata creates can be overwritten (`Some(false)`: IMMUTABLE).
    pub tags_mutable: Option<bool>,
    /// Lifecycle policies (repository name, policy JSON) put on a repository when strata
    /// creates it (the layer cache's expiry); an existing repository keeps its own.
    pub lifecycle_on_create: Vec<(String, String)>,
    /// How long one attempt of an AWS call may take (three attempts at most); 60 s when absent.
    pub api_timeout: Option<Duration>,
}

/// How blobs are uploaded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UploadMode {
    /// Monolithic for ECR and for blobs up to one chunk; chunked (resumable) above that elsewhere.
    #[default]
    Auto,
    /// Always one `PUT` with the whole blob.
    Monolithic,
    /// Always `PATCH` chunks of `chunk_size` bytes, resuming from the registry's `Range` after a failure.
    Chunked,
}

/// How the client reaches registries.
#[derive(Clone)]
pub struct ClientOptions {
    /// Registries (`host[:port]`) reached over plain HTTP.
    pub insecure_registries: Vec<String>,
    /// Every registry may be reached over plain HTTP.
    pub insecure: bool,
    /// Accept any TLS certificate (all registries).
    pub skip_tls_verify: bool,
    /// Pulls (base images, cache lookups, blobs read from elsewhere) may use plain HTTP from
    /// every registry; pushes keep HTTPS (kaniko's `--insecure-pull`).
    pub insecure_pull: bool,
    /// Pulls accept any TLS certificate; pushes still verify (kaniko's `--skip-tls-verify-pull`).
    pub skip_tls_verify_pull: bool,
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
    /// Retries for transient failures (connect errors, resets, stalls, 5xx, 429); default 3.
    pub retries: u32,
    /// ECR settings.
    pub ecr: EcrOptions,
    /// Progress callback.
    pub progress: Option<ProgressFn>,
    /// Extra CA certificates (PEM files) trusted for one registry host (`host[:port]`).
    pub registry_ca_certs: Vec<(String, PathBuf)>,
    /// Client certificates per registry host: `(host, certificate PEM, key PEM)`.
    pub client_certs: Vec<(String, PathBuf, PathBuf)>,
    /// A request that moves no bytes for this long fails (and is retried); default 60 s.
    pub stall_timeout: Duration,
    /// Blobs uploaded at the same time; default 4.
    pub max_concurrent_uploads: usize,
    /// Monolithic or chunked uploads.
    pub upload_mode: UploadMode,
    /// Bytes per `PATCH` in chunked uploads; default 32 MiB.
    pub chunk_size: u64,
    /// First retry delay; later ones double (with jitter) up to 30 s; default 200 ms.
    pub retry_base_delay: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            insecure_registries: Vec::new(),
            insecure: false,
            skip_tls_verify: false,
            insecure_pull: false,
            skip_tls_verify_pull: false,
            skip_tls_verify_registries: Vec::new(),
            ca_certs: Vec::new(),
            registry_mirrors: Vec::new(),
            registry_maps: Vec::new(),
            credentials: Vec::new(),
            docker_config_dir: None,
            retries: 3,
            ecr: EcrOptions::default(),
            progress: None,
            registry_ca_certs: Vec::new(),
            client_certs: Vec::new(),
            stall_timeout: Duration::from_secs(60),
            max_concurrent_uploads: 4,
            upload_mode: UploadMode::Auto,
            chunk_size: 32 << 20,
            retry_base_delay: Duration::from_millis(200),
        }
    }
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("insecure_registries", &self.insecure_registries)
            .field("insecure", &self.insecure)
            .field("skip_tls_verify", &self.skip_tls_verify)
            .field("insecure_pull", &self.insecure_pull)
            .field("skip_tls_verify_pull", &self.skip_tls_verify_pull)
            .field("registry_maps", &self.registry_maps)
            .field("registry_mirrors", &self.registry_mirrors)
            .field("credentials", &self.credentials)
            .field("retries", &self.retries)
            .field("upload_mode", &self.upload_mode)
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

/// A registry client with its connection pools, token cache and options.
#[derive(Debug)]
pub struct Client {
    pub(crate) opts: ClientOptions,
    pub(crate) endpoints: Mutex<HashMap<String, Arc<Endpoint>>>,
    pub(crate) auth: AuthCache,
    /// Where each blob digest was last seen (registry, repository): cross-repository mount sources.
    pub(crate) blob_sources: Mutex<HashMap<String, (String, String)>>,
    /// ECR repositories already checked or created.
    #[cfg_attr(not(feature = "ecr"), allow(dead_code))]
    pub(crate) ecr_repos_checked: Mutex<std::collections::HashSet<String>>,
}

impl Client {
    /// Makes a client.
    pub fn new(opts: ClientOptions) -> Result<Self, Error> {
        crate::transport::install_crypto_provider();
        for (from, to) in &opts.registry_maps {
            if from.is_empty() || to.is_empty() || to.contains("://") {
                return Err(Error::Options(format!("registry map {from}={to}: expected FROM=TO with host[:port] on both sides")));
            }
        }
        Ok(Self {
            opts,
            endpoints: Mutex::new(HashMap::new()),
            auth: AuthCache::default(),
            blob_sources: Mutex::new(HashMap::new()),
            ecr_repos_checked: Mutex::new(Default::default()),
        })
    }

    /// The options this client was made with.
    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    /// Resolves `r` to the manifest for `platform` (through an index if needed).
    pub async fn get_image(&self, r: &Reference, platform: &Platform) -> Result<PulledImage, Error> {
        crate::pull::get_image(self, r, platform).await
    }

    /// A small blob (a config) into memory: exactly `size` bytes, at most [`crate::limits::MAX_CONFIG_BYTES`], verified.
    pub async fn get_blob_bytes(&self, r: &Reference, digest: &str, size: u64) -> Result<Vec<u8>, Error> {
        crate::pull::get_blob_bytes(self, r, digest, size).await
    }

    /// Streams a blob to `dest` (atomically, exactly `size` bytes, verified against `digest`).
    pub async fn get_blob_to_file(&self, r: &Reference, digest: &str, size: u64, dest: &Path) -> Result<(), Error> {
        crate::pull::get_blob_to_file(self, r, digest, size, dest).await
    }

    /// Pushes every blob missing at `r`, then the manifest under `r`'s tag (or digest); returns the manifest digest.
    pub async fn push_image(&self, r: &Reference, image: &PushImage) -> Result<String, Error> {
        crate::push::push_image(self, r, image).await
    }

    /// Pushes the image under every reference: blobs once per repository (mounted across
    /// repositories of one registry), then only the manifest for further tags; returns the digest.
    pub async fn push_image_tags(&self, refs: &[Reference], image: &PushImage) -> Result<String, Error> {
        let mut digest = crate::digest::sha256_digest(&image.manifest);
        let mut done: Vec<(&str, &str)> = Vec::new();
        for r in refs {
            if done.contains(&(r.registry.as_str(), r.repository.as_str())) {
                let ep = self.endpoint(&r.registry).await?;
                crate::push::push_manifest(self, &ep, r, image, &digest).await?;
            } else {
                digest = self.push_image(r, image).await?;
                done.push((&r.registry, &r.repository));
            }
        }
        Ok(digest)
    }

    /// Records that `digest` exists in `source` (same registry), so a push elsewhere mounts it.
    pub fn add_mount_source(&self, digest: &str, source: &Reference) {
        if let Ok(mut m) = self.blob_sources.lock() {
            m.insert(digest.to_string(), (source.registry.clone(), source.repository.clone()));
        }
    }

    /// Whether a pull or [`Client::add_mount_source`] has said where `digest` is.
    pub fn knows_blob(&self, digest: &str) -> bool {
        self.blob_sources.lock().is_ok_and(|m| m.contains_key(digest))
    }

    /// Downloads `digest` to `dest` from the repository a pull or [`Client::add_mount_source`]
    /// last saw it in: a blob known by where it is is fetched only when it is needed.
    pub async fn get_known_blob(&self, digest: &str, size: u64, dest: &Path) -> Result<(), Error> {
        self.get_known_blob_tee(digest, size, dest, None).await
    }

    /// [`Client::get_known_blob`], also handing the bytes to `tee` as they arrive.
    pub(crate) async fn get_known_blob_tee(
        &self,
        digest: &str,
        size: u64,
        dest: &Path,
        tee: Option<&tokio::sync::Mutex<crate::pull::Tee>>,
    ) -> Result<(), Error> {
        let source = self.blob_sources.lock().ok().and_then(|m| m.get(digest).cloned());
        let Some((registry, repository)) = source else {
            return Err(Error::Io {
                path: dest.to_path_buf(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, format!("blob {digest} is neither here nor known to be in any registry")),
            });
        };
        let r = Reference { registry, repository, tag: None, digest: None };
        crate::pull::get_blob_to_file_tee(self, &r, digest, size, dest, tee).await
    }

    /// Applies an ECR lifecycle policy and a repository policy (JSON texts) to the repository of
    /// `r`, creating it first when creating is on, as drone-ecr and kaniko-ecr do before a build
    /// (also one that pushes nothing). Not an ECR registry: nothing to do.
    #[cfg(feature = "ecr")]
    pub async fn apply_ecr_policies(&self, r: &Reference, lifecycle_policy: Option<&str>, repository_policy: Option<&str>) -> Result<(), Error> {
        let ep = self.endpoint(&r.registry).await?;
        if !ep.is_ecr {
            return Ok(());
        }
        if self.opts.ecr.create_repository {
            crate::ecr::ensure_repository(self, &ep.name, &r.repository).await?;
        }
        crate::ecr::put_policies(self, &ep.name, &r.repository, lifecycle_policy, repository_policy).await
    }

    /// Pushes one OCI index of the images `sources` name (one per platform, each read from its
    /// config; an index among them gives its entries) to every destination; returns its digest.
    pub async fn join_index(&self, sources: &[Reference], destinations: &[Reference]) -> Result<String, Error> {
        crate::join::join_index(self, sources, destinations).await
    }

    /// The manifest digest the tag of `r` names, or None when the tag does not exist.
    pub async fn tag_digest(&self, r: &Reference) -> Result<Option<String>, Error> {
        let ep = self.endpoint(&r.registry).await?;
        crate::push::tag_digest(self, &ep, &r.repository, r.tag.as_deref().unwrap_or("latest")).await
    }

    /// Whether `digest` exists in `r`'s repository (a `HEAD` request).
    pub async fn blob_exists(&self, r: &Reference, digest: &str) -> Result<bool, Error> {
        let ep = self.endpoint(&r.registry).await?;
        crate::push::blob_exists(self, &ep, &r.repository, digest).await
    }

    pub(crate) fn emit(&self, ev: ProgressEvent) {
        if let Some(p) = &self.opts.progress {
            p(ev);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// Callers spawn these futures on a multi-threaded runtime: they must stay `Send`.
    #[test]
    fn client_and_futures_are_send_and_sync() {
        fn sync<T: Send + Sync>() {}
        sync::<Client>();
        let Ok(client) = Client::new(ClientOptions::default()) else { panic!("client") };
        let r = Reference { registry: "127.0.0.1:1".into(), repository: "a".into(), tag: None, digest: None };
        let image = PushImage { blobs: vec![], manifest: vec![], manifest_media_type: String::new() };
        assert_send(&client.get_image(&r, &Platform::host()));
        assert_send(&client.get_blob_bytes(&r, "sha256:x", 1));
        assert_send(&client.get_blob_to_file(&r, "sha256:x", 1, Path::new("/x")));
        assert_send(&client.push_image(&r, &image));
        assert_send(&client.push_image_tags(std::slice::from_ref(&r), &image));
    }
}
