//! Base images: resolved once per build, config parsed, layer blobs fetched into the blob store.

use crate::error::BuildError;
use crate::image::ImageConfig;
use crate::image::manifest::ImageLayer;
use std::collections::HashMap;
use strata_registry::{Client, Platform, Reference};
use strata_snapshot::BlobStore;

/// A pulled image: its config and layers (blobs in the store, or known to the client by where they are).
#[derive(Debug, Clone)]
pub struct PulledBase {
    /// Manifest digest.
    pub digest: String,
    /// Parsed config.
    pub config: ImageConfig,
    /// Layers in order.
    pub layers: Vec<ImageLayer>,
}

/// The images pulled during one build, by reference text.
#[derive(Debug, Default)]
pub struct BaseImages {
    pulled: HashMap<String, PulledBase>,
}

impl BaseImages {
    /// Resolves `reference` for `platform` (once per build): manifest and config.
    pub fn pull(&mut self, client: &Client, handle: &tokio::runtime::Handle, reference: &str, platform: &Platform) -> Result<PulledBase, BuildError> {
        let key = format!("{reference} {platform}");
        if let Some(p) = self.pulled.get(&key) {
            return Ok(p.clone());
        }
        let r: Reference = reference.parse()?;
        let image = handle.block_on(client.get_image(&r, platform))?;
        // Digests name files in the work dir and in outputs: a hostile registry's
        // `sha256:../../x` must never get that far.
        if let Some(bad) = std::iter::once(&image.manifest.config.digest)
            .chain(image.manifest.layers.iter().map(|l| &l.digest))
            .find(|d| !strata_snapshot::is_sha256_digest(d))
        {
            return Err(BuildError::BaseImage {
                reference: reference.to_string(),
                message: format!(
                    ": the registry's manifest names the blob {bad:?}, which is not a sha256 digest (sha256: and 64 lowercase hex digits); refusing the image"
                ),
            });
        }
        let config_bytes = handle.block_on(client.get_blob_bytes(&r, &image.manifest.config.digest, image.manifest.config.size))?;
        let config: ImageConfig = serde_json::from_slice(&config_bytes)
            .map_err(|e| BuildError::BaseImage { reference: reference.to_string(), message: format!(": the image config is not valid JSON: {e}") })?;
        // A single-platform image for another platform (BuildKit refuses it too).
        if !config.architecture.is_empty() && (config.architecture != platform.architecture || (!config.os.is_empty() && config.os != platform.os)) {
            return Err(BuildError::BaseImage {
                reference: reference.to_string(),
                message: format!(
                    " is a {}/{} image, but this stage is built for {platform}; use an image (or an index) with a {platform} variant, or build with --custom-platform {}/{}",
                    config.os, config.architecture, config.os, config.architecture
                ),
            });
        }
        if config.rootfs.diff_ids.len() != image.manifest.layers.len() {
            return Err(BuildError::BaseImage {
                reference: reference.to_string(),
                message: format!(": the config lists {} diff_ids but the manifest {} layers", config.rootfs.diff_ids.len(), image.manifest.layers.len()),
            });
        }
        let mut layers = Vec::new();
        for (desc, diff_id) in image.manifest.layers.iter().zip(config.rootfs.diff_ids.iter()) {
            // Fetched when first needed (see `Builder::fetch_missing`): a build whose steps
            // all hit the cache never downloads its base's layers.
            // Noted even when the store has the blob: a damaged copy is fetched again from here.
            client.add_mount_source(&desc.digest, &r);
            layers.push(ImageLayer { digest: desc.digest.clone(), diff_id: diff_id.clone(), size: desc.size, media_type: desc.media_type.clone() });
        }
        let pulled = PulledBase { digest: image.digest, config, layers };
        self.pulled.insert(key, pulled.clone());
        Ok(pulled)
    }
}

/// Applies `layers`, in order, to `rootfs`, verifying each diff_id and leaving `keep` alone.
pub fn unpack_layers(
    store: &BlobStore,
    layers: &[ImageLayer],
    rootfs: &std::path::Path,
    rootless: bool,
    keep: &strata_snapshot::KeepPaths,
    size_limit: strata_snapshot::LayerSizeLimit,
) -> Result<(), BuildError> {
    for layer in layers {
        let path = store.path(&layer.digest);
        let file = std::fs::File::open(&path).map_err(BuildError::io(&path))?;
        let compressed_size = file.metadata().map_err(BuildError::io(&path))?.len();
        let opts = strata_snapshot::UnpackOptions {
            expected_diff_id: Some(layer.diff_id.clone()),
            layer_digest: Some(layer.digest.clone()),
            rootless,
            keep: keep.clone(),
            size_limit,
            compressed_size: Some(compressed_size),
        };
        strata_snapshot::unpack_layer(std::io::BufReader::new(file), rootfs, &opts)?;
    }
    Ok(())
}
