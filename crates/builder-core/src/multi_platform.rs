//! Several platforms in one build (`--custom-platform linux/amd64,linux/arm64`): each platform
//! is built as its own build (its own TARGETPLATFORM/TARGETARCH, bases resolved for it, cache
//! keys of its own) and pushed under its digest; then one OCI index of them, per-platform
//! manifests first, is pushed under every destination. The printed digest is the index's.

use crate::build::{BuildOutput, build_one};
use crate::error::BuildError;
use crate::options::BuildOptions;
use crate::progress::EventFn;
use strata_registry::manifest::{Descriptor, media};
use strata_registry::{Client, Platform, PushImage, Reference};

/// Builds every platform of `opts.platform` (a comma list) and pushes their index.
pub(crate) async fn build_all(opts: BuildOptions, events: Option<EventFn>) -> Result<BuildOutput, BuildError> {
    let list = opts.platform.clone().unwrap_or_default();
    let mut platforms: Vec<Platform> = Vec::new();
    for text in list.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let p: Platform = text.parse()?;
        if platforms.contains(&p) {
            return Err(BuildError::Options(format!("--custom-platform {list}: {p} is named twice")));
        }
        platforms.push(p);
    }
    if opts.tar_path.is_some() || opts.oci_layout_path.is_some() {
        return Err(BuildError::Options(format!(
            "--custom-platform {list}: a tarball or OCI layout of several platforms is not written yet; build one platform per tarball, or push and join with strata manifest"
        )));
    }
    let mut built: Vec<(Platform, BuildOutput)> = Vec::new();
    for p in &platforms {
        tracing::info!(platform = %p, "building for {p} ({} of {})", built.len() + 1, platforms.len());
        let mut one = opts.clone();
        one.platform = Some(p.to_string());
        one.push_by_digest = true;
        one.digest_file = None;
        built.push((p.clone(), build_one(one, events.clone()).await?));
    }
    let manifests: Vec<Descriptor> = built
        .iter()
        .map(|(p, out)| {
            let platform = Platform {
                os: out.config.os.clone(),
                architecture: out.config.architecture.clone(),
                variant: out.config.variant.clone().or(p.variant.clone()),
            };
            Descriptor {
                media_type: media::OCI_MANIFEST.into(),
                digest: out.digest.clone(),
                size: out.manifest.len() as u64,
                platform: Some(platform),
                annotations: Default::default(),
            }
        })
        .collect();
    let index = serde_json::json!({ "schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": manifests });
    let index = serde_json::to_vec(&index).map_err(|e| BuildError::Internal(format!("cannot serialise the index: {e}")))?;
    let digest = strata_registry::digest::sha256_digest(&index);
    let mut pushed = Vec::new();
    if !opts.no_push {
        let client = Client::new(opts.registry.clone())?;
        for dest in &opts.destinations {
            let r: Reference = dest.parse()?;
            let image = PushImage { blobs: Vec::new(), manifest: index.clone(), manifest_media_type: media::OCI_INDEX.into() };
            client.push_image(&r, &image).await?;
            if let Some(f) = &events {
                f(crate::progress::BuildEvent::Pushed { reference: dest.clone(), digest: digest.clone() });
            }
            pushed.push(dest.clone());
        }
    }
    if let Some(path) = &opts.digest_file {
        std::fs::write(path, &digest).map_err(BuildError::io(path))?;
    }
    let (_, first) = built.remove(0);
    Ok(BuildOutput { digest, config_digest: first.config_digest, manifest: index, config: first.config, pushed })
}
