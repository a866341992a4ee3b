//! Outputs of a build: registry pushes, OCI layout directories and `docker load` tarballs.

mod multi;
mod tarball;

pub(crate) use multi::{IndexBlob, PlatformImage, index_archive, index_layout};

pub(crate) use tarball::{TarballImage, write_docker_archive};

use crate::error::BuildError;
use crate::image::manifest::ImageLayer;
use std::path::Path;
use strata_registry::manifest::media;
use strata_registry::{PushBlob, PushImage, Reference};
use strata_snapshot::BlobStore;

/// Where a push runs: the registry client, the runtime, the cancel switch and the blobs.
pub(crate) struct Pusher<'a> {
    /// The registry client.
    pub client: &'a strata_registry::Client,
    /// The async runtime the push runs on.
    pub handle: &'a tokio::runtime::Handle,
    /// Stops the push when the build is cancelled.
    pub cancel: &'a crate::Cancel,
    /// The blobs pushed.
    pub store: &'a BlobStore,
}

/// Pushes the image to `destination`.
pub(crate) fn push(
    pusher: &Pusher<'_>,
    destination: &str,
    manifest: &[u8],
    manifest_media_type: &str,
    config_digest: &str,
    config_size: u64,
    layers: &[ImageLayer],
) -> Result<String, BuildError> {
    let r: Reference = destination.parse()?;
    let mut blobs: Vec<PushBlob> = layers.iter().map(|l| PushBlob { digest: l.digest.clone(), size: l.size, path: pusher.store.path(&l.digest) }).collect();
    blobs.push(PushBlob { digest: config_digest.to_string(), size: config_size, path: pusher.store.path(config_digest) });
    let image = PushImage { blobs, manifest: manifest.to_vec(), manifest_media_type: manifest_media_type.to_string() };
    Ok(pusher.cancel.block_on(pusher.handle, pusher.client.push_image(&r, &image))??)
}

/// What an OCI layout (or an image tarball) holds: its blobs, by digest, and the entries of
/// its `index.json`.
pub(crate) struct LayoutContents {
    /// Every blob, each once (layers, configs, manifests, an image index).
    pub blobs: Vec<String>,
    /// The descriptors `index.json` lists.
    pub entries: Vec<serde_json::Value>,
}

impl LayoutContents {
    /// `index.json`: an image index of the entries.
    pub(crate) fn index_json(&self) -> serde_json::Value {
        serde_json::json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": self.entries})
    }

    /// Adds `digest` to the blobs unless it is there (an image may repeat a layer; platforms share some).
    pub(crate) fn add_blob(&mut self, digest: &str) {
        if !self.blobs.iter().any(|b| b == digest) {
            self.blobs.push(digest.to_string());
        }
    }
}

/// The tag an OCI layout names the image by: the first destination's, else `latest`.
pub(crate) fn layout_tag(first_destination: Option<&String>) -> String {
    first_destination.and_then(|d| d.parse::<Reference>().ok()).and_then(|r| r.tag).unwrap_or_else(|| "latest".to_string())
}

/// One image's layout: its layers, config and manifest, the manifest tagged with the first destination's tag.
pub(crate) fn image_layout(
    manifest_digest: &str,
    manifest: &[u8],
    config_digest: &str,
    layers: &[ImageLayer],
    first_destination: Option<&String>,
) -> LayoutContents {
    let mut contents = LayoutContents { blobs: Vec::new(), entries: Vec::new() };
    for l in layers {
        contents.add_blob(&l.digest);
    }
    contents.add_blob(config_digest);
    contents.add_blob(manifest_digest);
    contents.entries.push(serde_json::json!({
        "mediaType": media::OCI_MANIFEST,
        "digest": manifest_digest,
        "size": manifest.len(),
        "annotations": {"org.opencontainers.image.ref.name": layout_tag(first_destination)}
    }));
    contents
}

/// Writes (or adds to) an OCI image layout at `dir`: the blobs hard-linked (or copied, streamed)
/// from the store, then `index.json`.
pub(crate) fn write_oci_layout(store: &BlobStore, dir: &Path, contents: &LayoutContents) -> Result<(), BuildError> {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).map_err(BuildError::io(&blobs))?;
    let layout = dir.join("oci-layout");
    std::fs::write(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(BuildError::io(&layout))?;
    for d in &contents.blobs {
        let src = store.path(d);
        let dst = dir.join("blobs/sha256").join(d.trim_start_matches("sha256:"));
        if dst.exists() {
            continue;
        }
        if std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst).map_err(BuildError::io(&dst))?;
        }
    }
    let index_path = dir.join("index.json");
    let bytes = serde_json::to_vec(&contents.index_json()).map_err(|e| BuildError::Internal(format!("cannot serialise the OCI index: {e}")))?;
    std::fs::write(&index_path, bytes).map_err(BuildError::io(&index_path))
}
