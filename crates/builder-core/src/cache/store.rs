//! Where cached steps live: a JSON record per key in the work dir (blobs in the blob store),
//! and, with a cache repository, an image per key in a registry (tag = key), so a CI pod that
//! starts with an empty disk still finds them. Entries older than the TTL are misses.

use super::CacheKey;
use crate::image::manifest::{ImageLayer, oci_manifest};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use strata_registry::manifest::media;
use strata_registry::{Client, Platform, PushBlob, PushImage, Reference};
use strata_snapshot::BlobStore;

/// The label (config) and annotation (manifest) holding when a remote entry was made (unix seconds).
const CREATED_LABEL: &str = "dev.strata.cache.created";

/// The annotation on an entry's layer descriptor holding the layer's diff_id.
const DIFF_ID_ANNOTATION: &str = "dev.strata.cache.diff_id";

/// What a cached step left: its layer (None: it changed no file) and when it was made.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    layer: Option<RecordLayer>,
    created: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RecordLayer {
    digest: String,
    diff_id: String,
    size: u64,
    media_type: String,
}

impl From<&ImageLayer> for RecordLayer {
    fn from(l: &ImageLayer) -> Self {
        Self { digest: l.digest.clone(), diff_id: l.diff_id.clone(), size: l.size, media_type: l.media_type.clone() }
    }
}

impl From<RecordLayer> for ImageLayer {
    fn from(l: RecordLayer) -> Self {
        Self { digest: l.digest, diff_id: l.diff_id, size: l.size, media_type: l.media_type }
    }
}

/// A cache hit: the step's layer, or None when the step changed no file.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The layer to apply and add to the image.
    pub layer: Option<ImageLayer>,
    /// Where it was found: `local` or the cache repository.
    pub source: String,
}

/// The layer cache of one build.
#[derive(Debug)]
pub struct LayerCache {
    dir: PathBuf,
    repo: Option<Reference>,
    ttl: Duration,
    pending: Vec<(String, tokio::task::JoinHandle<Result<String, strata_registry::Error>>)>,
}

impl LayerCache {
    /// The cache repository, if entries are pushed to one.
    pub fn repository(&self) -> Option<&Reference> {
        self.repo.as_ref()
    }

    /// A cache in `dir`, backed by the repository `repo` (`registry/path`, no tag) when given.
    pub fn new(dir: PathBuf, repo: Option<Reference>, ttl: Duration) -> Self {
        Self { dir, repo, ttl, pending: Vec::new() }
    }

    fn fresh(&self, created: i64) -> bool {
        crate::clock::now_secs().saturating_sub(created) <= i64::try_from(self.ttl.as_secs()).unwrap_or(i64::MAX)
    }

    fn record_path(&self, key: &CacheKey) -> PathBuf {
        self.dir.join(format!("{}.json", key.hex()))
    }

    fn tagged(&self, key: &CacheKey) -> Option<Reference> {
        self.repo.as_ref().map(|r| Reference { tag: Some(key.hex().to_string()), digest: None, ..r.clone() })
    }

    /// Looks `key` up locally, then in the cache repository (fetching the layer blob into
    /// `store`). Every failure is a miss: a cache never fails a build.
    pub fn lookup(&self, client: &Client, handle: &tokio::runtime::Handle, store: &BlobStore, key: &CacheKey) -> Option<Hit> {
        if let Some(hit) = self.lookup_local(store, key) {
            return Some(hit);
        }
        let r = self.tagged(key)?;
        match handle.block_on(self.lookup_remote(client, store, &r)) {
            Ok(Some(record)) => {
                self.write_local(key, &record);
                Some(Hit { layer: record.layer.map(Into::into), source: format!("{}/{}", r.registry, r.repository) })
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!("layer cache {}/{}: {e}; running the step", r.registry, r.repository);
                None
            }
        }
    }

    fn lookup_local(&self, store: &BlobStore, key: &CacheKey) -> Option<Hit> {
        let bytes = std::fs::read(self.record_path(key)).ok()?;
        let record: Record = serde_json::from_slice(&bytes).ok()?;
        if !self.fresh(record.created) {
            return None;
        }
        if let Some(l) = &record.layer
            && !store.contains(&l.digest)
        {
            return None;
        }
        Some(Hit { layer: record.layer.map(Into::into), source: "local".into() })
    }

    async fn lookup_remote(&self, client: &Client, store: &BlobStore, r: &Reference) -> Result<Option<Record>, strata_registry::Error> {
        let image = match client.get_image(r, &Platform::host()).await {
            Ok(i) => i,
            Err(strata_registry::Error::Http { status: 404, .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        // The manifest's annotations say all a lookup needs (one request); the config says it
        // too, for entries written without them.
        let annotated = image.manifest.annotations.get(CREATED_LABEL).and_then(|s| s.parse::<i64>().ok()).map(|created| {
            let diff_ids: Vec<String> = image.manifest.layers.iter().filter_map(|l| l.annotations.get(DIFF_ID_ANNOTATION).cloned()).collect();
            (created, diff_ids)
        });
        let (created, diff_ids) = match annotated {
            Some(a) => a,
            None => {
                let config_bytes = client.get_blob_bytes(r, &image.manifest.config.digest, image.manifest.config.size).await?;
                let config: serde_json::Value = serde_json::from_slice(&config_bytes).unwrap_or_default();
                let created = config["config"]["Labels"][CREATED_LABEL].as_str().and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
                let diff_ids =
                    config["rootfs"]["diff_ids"].as_array().map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect()).unwrap_or_default();
                (created, diff_ids)
            }
        };
        if !self.fresh(created) {
            tracing::debug!(tag = ?r.tag, "remote cache entry expired");
            return Ok(None);
        }
        let layer = match (image.manifest.layers.as_slice(), diff_ids.as_slice()) {
            ([], []) => None,
            ([desc], [_]) if !strata_snapshot::is_sha256_digest(&desc.digest) => {
                tracing::warn!(
                    "layer cache {}/{}: entry {} names the blob {:?}, which is not a sha256 digest; running the step",
                    r.registry,
                    r.repository,
                    r.tag.as_deref().unwrap_or(""),
                    desc.digest
                );
                return Ok(None);
            }
            ([desc], [diff_id]) => {
                // Fetched only if a step needs its files or a push its bytes. That happens after
                // the step is passed, when a missing blob could only fail the build: so make
                // sure here that it is there (a registry may have collected it).
                if !store.contains(&desc.digest) {
                    if !client.blob_exists(r, &desc.digest).await? {
                        tracing::warn!(
                            "layer cache {}/{}: entry {} lacks its layer {}; running the step",
                            r.registry,
                            r.repository,
                            r.tag.as_deref().unwrap_or(""),
                            desc.digest
                        );
                        return Ok(None);
                    }
                    client.add_mount_source(&desc.digest, r);
                }
                Some(RecordLayer { digest: desc.digest.clone(), diff_id: diff_id.clone(), size: desc.size, media_type: desc.media_type.clone() })
            }
            _ => return Ok(None),
        };
        Ok(Some(Record { layer, created }))
    }

    fn write_local(&self, key: &CacheKey, record: &Record) {
        let path = self.record_path(key);
        let tmp = self.dir.join(format!(".{}.{}.tmp", key.hex(), std::process::id()));
        let written = std::fs::create_dir_all(&self.dir)
            .and_then(|()| serde_json::to_vec(record).map_err(std::io::Error::other))
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!("layer cache: cannot write {}: {e}", path.display());
        }
    }

    /// Records the result of a step under `key`, locally at once and in the cache repository
    /// in the background (see [`LayerCache::finish`]).
    pub fn store(
        &mut self,
        client: &Arc<Client>,
        handle: &tokio::runtime::Handle,
        store: &BlobStore,
        key: &CacheKey,
        layer: Option<&ImageLayer>,
        created_by: &str,
    ) {
        let record = Record { layer: layer.map(RecordLayer::from), created: crate::clock::now_secs() };
        self.write_local(key, &record);
        let Some(r) = self.tagged(key) else { return };
        let host = Platform::host();
        let config = serde_json::json!({
            "architecture": host.architecture,
            "os": host.os,
            "created": crate::clock::rfc3339(record.created),
            "config": {"Labels": {CREATED_LABEL: record.created.to_string()}},
            "rootfs": {"type": "layers", "diff_ids": layer.iter().map(|l| l.diff_id.clone()).collect::<Vec<_>>()},
            "history": [{"created_by": created_by, "empty_layer": layer.is_none()}],
        });
        let pushed = serde_json::to_vec(&config).map_err(|e| e.to_string()).and_then(|bytes| {
            let digest = store.put_bytes(&bytes).map_err(|e| e.to_string())?;
            let layers: Vec<ImageLayer> = layer.into_iter().cloned().collect();
            let mut manifest = oci_manifest(&digest, bytes.len() as u64, &layers);
            manifest.annotations.insert(CREATED_LABEL.to_string(), record.created.to_string());
            for (desc, l) in manifest.layers.iter_mut().zip(&layers) {
                desc.annotations.insert(DIFF_ID_ANNOTATION.to_string(), l.diff_id.clone());
            }
            let manifest = serde_json::to_vec(&manifest).map_err(|e| e.to_string())?;
            let mut blobs: Vec<PushBlob> = layers.iter().map(|l| PushBlob { digest: l.digest.clone(), size: l.size, path: store.path(&l.digest) }).collect();
            blobs.push(PushBlob { digest: digest.clone(), size: bytes.len() as u64, path: store.path(&digest) });
            Ok(PushImage { blobs, manifest, manifest_media_type: media::OCI_MANIFEST.to_string() })
        });
        match pushed {
            Ok(image) => {
                let client = client.clone();
                let tag = format!("{}/{}:{}", r.registry, r.repository, key.hex());
                // An entry is never pushed over an existing key tag (immutable ECR repositories
                // refuse it, and the key says the entry there stands for the same step).
                let task = handle.spawn(async move {
                    match client.tag_digest(&r).await {
                        Ok(Some(existing)) => Ok(existing),
                        _ => client.push_image(&r, &image).await,
                    }
                });
                self.pending.push((tag, task));
            }
            Err(e) => tracing::warn!("layer cache: cannot prepare the entry for {}: {e}", key.hex()),
        }
    }

    /// Waits for the background pushes; a failed one is a warning, never a build failure.
    pub fn finish(&mut self, handle: &tokio::runtime::Handle) {
        for (tag, task) in self.pending.drain(..) {
            match handle.block_on(task) {
                Ok(Ok(_)) => tracing::debug!(%tag, "cache entry pushed"),
                Ok(Err(e)) => tracing::warn!("layer cache: pushing {tag} failed: {e}"),
                Err(e) => tracing::warn!("layer cache: pushing {tag} failed: {e}"),
            }
        }
    }
}
