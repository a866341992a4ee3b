//! Assembling the OCI manifest for a built image.

use strata_registry::manifest::media;
use strata_registry::{Descriptor, Manifest};

/// A layer of the image being assembled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageLayer {
    /// `sha256:` of the compressed blob.
    pub digest: String,
    /// `sha256:` of the uncompressed tar.
    pub diff_id: String,
    /// Compressed size.
    pub size: u64,
    /// Media type of the blob.
    pub media_type: String,
}

/// The OCI manifest for `config` (its digest and size) and `layers`.
pub fn oci_manifest(config_digest: &str, config_size: u64, layers: &[ImageLayer]) -> Manifest {
    Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.to_string()),
        config: Descriptor {
            media_type: media::OCI_CONFIG.to_string(),
            digest: config_digest.to_string(),
            size: config_size,
            platform: None,
            annotations: Default::default(),
        },
        layers: layers
            .iter()
            .map(|l| Descriptor {
                media_type: oci_layer_media_type(&l.media_type),
                digest: l.digest.clone(),
                size: l.size,
                platform: None,
                annotations: Default::default(),
            })
            .collect(),
        annotations: Default::default(),
    }
}

/// Maps Docker layer media types onto their OCI equivalents (same bytes, other name).
pub fn oci_layer_media_type(media_type: &str) -> String {
    match media_type {
        "application/vnd.docker.image.rootfs.diff.tar.gzip" => "application/vnd.oci.image.layer.v1.tar+gzip".into(),
        "application/vnd.docker.image.rootfs.diff.tar" => "application/vnd.oci.image.layer.v1.tar".into(),
        other => other.to_string(),
    }
}
