//! One OCI index from images already pushed, one per platform (Harness builds each architecture
//! in its own stage and tags them apart): each image's platform is read from its config, an
//! index among the sources contributes its entries, two images of one platform are refused, and
//! images in another repository are copied into the destination's first (blobs mounted where
//! the registry allows, else streamed).

use crate::client::{Client, PushBlob, PushImage};
use crate::digest::sha256_digest;
use crate::manifest::{Descriptor, Manifest, Platform, media};
use crate::{Error, Reference};

/// One image of the index: its descriptor, where it was read, and its manifest.
struct Member {
    descriptor: Descriptor,
    source: Reference,
    raw: Vec<u8>,
    manifest: Manifest,
}

/// A manifest or index as fetched, with the fields both can have.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Either {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(serde::Deserialize)]
struct ConfigPlatform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

fn protocol(r: &Reference, message: String) -> Error {
    Error::Protocol { registry: r.registry.clone(), repository: r.repository.clone(), action: format!("join {}", r.manifest_ref()), message }
}

/// The image manifest `digest` (or the tag) of `r`, parsed, with its raw bytes.
async fn image_manifest(client: &Client, r: &Reference, reference: &str, size: Option<u64>) -> Result<(Vec<u8>, String, Manifest), Error> {
    let ep = client.endpoint(&r.registry).await?;
    let (raw, ct) = crate::pull::fetch_manifest(client, &ep, r, reference, size).await?;
    let manifest: Manifest = serde_json::from_slice(&raw).map_err(|e| protocol(r, format!("{reference} is not an image manifest: {e}")))?;
    let mt = if ct.is_empty() || ct == "application/json" { manifest.media_type.clone().unwrap_or_else(|| media::OCI_MANIFEST.into()) } else { ct };
    Ok((raw, mt, manifest))
}

/// The images `r` names: itself, or each entry of the index it is.
async fn members_of(client: &Client, r: &Reference) -> Result<Vec<Member>, Error> {
    let ep = client.endpoint(&r.registry).await?;
    let (raw, ct) = crate::pull::fetch_manifest(client, &ep, r, r.manifest_ref(), None).await?;
    let either: Either = serde_json::from_slice(&raw).map_err(|e| protocol(r, format!("the manifest is not JSON: {e}")))?;
    let mt = if ct.is_empty() || ct == "application/json" { either.media_type.clone().unwrap_or_default() } else { ct };
    if mt == media::OCI_INDEX || mt == media::DOCKER_LIST || (!either.manifests.is_empty() && mt.is_empty()) {
        let mut out = Vec::new();
        for d in either.manifests {
            let Some(platform) = d.platform.clone() else {
                return Err(protocol(r, format!("its index entry {} has no platform", d.digest)));
            };
            let (raw, mt, manifest) = image_manifest(client, r, &d.digest, Some(d.size)).await?;
            let descriptor = Descriptor { media_type: mt, digest: d.digest.clone(), size: d.size, platform: Some(platform), annotations: Default::default() };
            out.push(Member { descriptor, source: r.clone(), raw, manifest });
        }
        return Ok(out);
    }
    let manifest: Manifest = serde_json::from_slice(&raw).map_err(|e| protocol(r, format!("not an image manifest or index: {e}")))?;
    let mt = if mt.is_empty() { manifest.media_type.clone().unwrap_or_else(|| media::OCI_MANIFEST.into()) } else { mt };
    let config_bytes = crate::pull::get_blob_bytes(client, r, &manifest.config.digest, manifest.config.size).await?;
    let config: ConfigPlatform = serde_json::from_slice(&config_bytes).map_err(|e| protocol(r, format!("its config is not JSON: {e}")))?;
    if config.os.is_empty() || config.architecture.is_empty() {
        return Err(protocol(r, "its config names no os and architecture, so its platform is unknown".into()));
    }
    let platform = Platform { os: config.os, architecture: config.architecture, variant: config.variant.filter(|v| !v.is_empty()) };
    let descriptor =
        Descriptor { media_type: mt, digest: sha256_digest(&raw), size: raw.len() as u64, platform: Some(platform), annotations: Default::default() };
    Ok(vec![Member { descriptor, source: r.clone(), raw, manifest }])
}

/// Pushes one OCI index of the images `sources` name to every destination; returns its digest.
pub(crate) async fn join_index(client: &Client, sources: &[Reference], destinations: &[Reference]) -> Result<String, Error> {
    let mut members: Vec<Member> = Vec::new();
    for r in sources {
        for m in members_of(client, r).await? {
            let platform = m.descriptor.platform.clone().map(|p| p.to_string()).unwrap_or_default();
            if let Some(first) = members.iter().find(|o| o.descriptor.platform == m.descriptor.platform) {
                return Err(Error::Options(format!(
                    "{} and {} are both {platform} images: an index holds one image per platform (join images built for different platforms)",
                    first.source, m.source
                )));
            }
            members.push(m);
        }
    }
    if members.is_empty() {
        return Err(Error::Options("nothing to join: name the images (one per platform)".into()));
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": media::OCI_INDEX,
        "manifests": members.iter().map(|m| &m.descriptor).collect::<Vec<_>>(),
    });
    let index = serde_json::to_vec(&index).map_err(|e| Error::Options(format!("cannot serialise the index: {e}")))?;
    let scratch = tempfile_dir()?;
    let mut digest = String::new();
    for dest in destinations {
        for m in &members {
            if m.source.registry == dest.registry && m.source.repository == dest.repository {
                continue;
            }
            // Another repository: the image is copied in under its digest first.
            let src = m.source.with_digest(&m.descriptor.digest);
            let mut blobs = Vec::new();
            for d in std::iter::once(&m.manifest.config).chain(&m.manifest.layers) {
                client.add_mount_source(&d.digest, &src);
                blobs.push(PushBlob { digest: d.digest.clone(), size: d.size, path: scratch.join(d.digest.trim_start_matches("sha256:")) });
            }
            let image = PushImage { blobs, manifest: m.raw.clone(), manifest_media_type: m.descriptor.media_type.clone() };
            client.push_image(&dest.with_digest(&m.descriptor.digest), &image).await?;
        }
        let image = PushImage { blobs: Vec::new(), manifest: index.clone(), manifest_media_type: media::OCI_INDEX.into() };
        digest = client.push_image(dest, &image).await?;
    }
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(digest)
}

/// A fresh private directory for blobs copied between registries.
fn tempfile_dir() -> Result<std::path::PathBuf, Error> {
    let dir = std::env::temp_dir().join(format!(
        "strata-join-{}-{}",
        std::process::id(),
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir).map_err(|source| Error::Io { path: dir.clone(), source })?;
    Ok(dir)
}
