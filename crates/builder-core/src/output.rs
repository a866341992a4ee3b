//! Outputs of a build: registry pushes, OCI layout directories and `docker load` tarballs.

mod tarball;

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

/// Writes (or adds to) an OCI image layout at `dir`, tagged with the first destination's tag.
pub(crate) fn write_oci_layout(
    store: &BlobStore,
    dir: &Path,
    manifest_digest: &str,
    manifest: &[u8],
    config_digest: &str,
    layers: &[ImageLayer],
    first_destination: Option<&String>,
) -> Result<(), BuildError> {
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).map_err(BuildError::io(&blobs))?;
    let layout = dir.join("oci-layout");
    std::fs::write(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#).map_err(BuildError::io(&layout))?;
    let mut digests: Vec<&str> = layers.iter().map(|l| l.digest.as_str()).collect();
    digests.push(config_digest);
    digests.push(manifest_digest);
    for d in digests {
        let src = store.path(d);
        let dst = dir.join("blobs/sha256").join(d.trim_start_matches("sha256:"));
        if dst.exists() {
            continue;
        }
        if std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst).map_err(BuildError::io(&dst))?;
        }
    }
    let tag = first_destination.and_then(|d| d.parse::<Reference>().ok()).and_then(|r| r.tag).unwrap_or_else(|| "latest".to_string());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": [{
            "mediaType": media::OCI_MANIFEST,
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag}
        }]
    });
    let index_path = dir.join("index.json");
    let bytes = serde_json::to_vec(&index).map_err(|e| BuildError::Internal(format!("cannot serialise the OCI index: {e}")))?;
    std::fs::write(&index_path, bytes).map_err(BuildError::io(&index_path))
}
