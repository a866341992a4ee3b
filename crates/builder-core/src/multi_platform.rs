//! Several platforms in one build (`--custom-platform linux/amd64,linux/arm64`): each platform
//! is built as its own build (its own TARGETPLATFORM/TARGETARCH, bases resolved for it, cache
//! keys of its own, its own build directory and rootfs trees) and pushed under its digest; then
//! one OCI index of them, per-platform manifests first, is pushed under every destination and
//! written to the tarball and OCI layout asked for. The printed digest is the index's.
//!
//! Platforms build side by side, as many at once as the CPUs this process may use
//! (`--platform-jobs` overrides it; 1 builds them one after another). The first platform to
//! fail stops the others (their running RUN killed, their scratch removed), is waited for, and
//! its error is the build's, naming the platform.

use crate::build::{BuildOutput, build_one};
use crate::error::BuildError;
use crate::options::BuildOptions;
use crate::output;
use crate::progress::{BuildEvent, EventFn};
use crate::{Cancel, Isolation};
use strata_registry::manifest::{Descriptor, Manifest, media};
use strata_registry::{Client, Platform, PushImage, Reference};
use strata_snapshot::BlobStore;

/// Builds every platform of `opts.platform` (a comma list) and pushes and writes their index.
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
    let jobs = platform_jobs(&opts, platforms.len(), std::thread::available_parallelism().map_or(1, |n| n.get()));
    tracing::info!(jobs, "building {} platforms, {} at a time", platforms.len(), jobs);
    let mut built = build_platforms(&opts, &platforms, jobs, events.as_ref()).await?;
    let images = platform_images(&platforms, &built)?;
    let manifests: Vec<Descriptor> = images
        .iter()
        .map(|i| Descriptor {
            media_type: media::OCI_MANIFEST.into(),
            digest: i.manifest_digest.clone(),
            size: i.manifest_size,
            platform: Some(i.platform.clone()),
            annotations: Default::default(),
        })
        .collect();
    let index = serde_json::json!({ "schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": manifests });
    let index = serde_json::to_vec(&index).map_err(|e| BuildError::Internal(format!("cannot serialise the index: {e}")))?;
    let store = BlobStore::open(&opts.work_dir.join("blobs"))?;
    let digest = store.put_bytes(&index)?;
    let blob = output::IndexBlob { digest: &digest, size: index.len() as u64 };
    if let Some(dir) = &opts.oci_layout_path {
        let contents = output::index_layout(&images, &blob, opts.destinations.first());
        output::write_oci_layout(&store, dir, &contents)?;
    }
    if let Some(path) = &opts.tar_path {
        let contents = output::index_archive(&images, &blob, &opts.destinations);
        let (store, path) = (store.clone(), path.clone());
        tokio::task::spawn_blocking(move || output::write_docker_archive(&store, &path, &contents))
            .await
            .map_err(|e| BuildError::Internal(format!("writing the tarball stopped: {e}")))??;
    }
    let mut pushed = Vec::new();
    if !opts.no_push {
        let client = Client::new(opts.registry.clone())?;
        for dest in &opts.destinations {
            let r: Reference = dest.parse()?;
            let image = PushImage { blobs: Vec::new(), manifest: index.clone(), manifest_media_type: media::OCI_INDEX.into() };
            tokio::select! {
                done = client.push_image(&r, &image) => done?,
                () = opts.cancel.cancelled() => return Err(BuildError::Cancelled),
            };
            if let Some(f) = &events {
                f(BuildEvent::Pushed { reference: dest.clone(), digest: digest.clone() });
            }
            pushed.push(dest.clone());
        }
    }
    if let Some(path) = &opts.digest_file {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(BuildError::io(parent))?;
        }
        std::fs::write(path, &digest).map_err(BuildError::io(path))?;
    }
    let first = built.remove(0);
    Ok(BuildOutput { digest, config_digest: first.config_digest, manifest: index, config: first.config, pushed })
}

/// How many platforms build at once: `--platform-jobs`, else the CPUs this process may use
/// (`cpus`), never more than there are platforms; one at a time when the build root is `/`
/// (`--isolation none`: there is only one).
fn platform_jobs(opts: &BuildOptions, platforms: usize, cpus: usize) -> usize {
    if opts.isolation == Isolation::None {
        return 1;
    }
    opts.platform_jobs.unwrap_or(cpus).clamp(1, platforms.max(1))
}

/// One platform's build options: its platform, pushed by digest only, no outputs of its own
/// (the index's are written after all platforms), its layers kept locally when a tarball or
/// layout needs them, and a cancel switch of its own (so a failing sibling can stop it).
fn platform_options(opts: &BuildOptions, p: &Platform, cancel: Cancel) -> BuildOptions {
    let mut one = opts.clone();
    one.platform = Some(p.to_string());
    one.push_by_digest = true;
    one.digest_file = None;
    one.tar_path = None;
    one.oci_layout_path = None;
    one.local_layers = opts.tar_path.is_some() || opts.oci_layout_path.is_some();
    one.cancel = cancel;
    one
}

/// Events of platform `p`'s build, tagged with it.
fn tagged_events(events: Option<&EventFn>, p: &Platform) -> Option<EventFn> {
    let f = events?.clone();
    let platform = p.to_string();
    Some(std::sync::Arc::new(move |event| f(BuildEvent::ForPlatform { platform: platform.clone(), event: Box::new(event) })))
}

/// Builds the platforms, at most `jobs` at once, in their order; returns their outputs in that
/// order, or the first failure (the rest stopped and waited for).
async fn build_platforms(opts: &BuildOptions, platforms: &[Platform], jobs: usize, events: Option<&EventFn>) -> Result<Vec<BuildOutput>, BuildError> {
    let cancels: Vec<Cancel> = platforms.iter().map(|_| Cancel::new()).collect();
    // A cancel of the whole build (SIGTERM) reaches every platform's build.
    let forward = {
        let (parent, children) = (opts.cancel.clone(), cancels.clone());
        tokio::spawn(async move {
            parent.cancelled().await;
            for c in children {
                c.cancel();
            }
        })
    };
    let mut set = tokio::task::JoinSet::new();
    let mut next = 0;
    let start = |set: &mut tokio::task::JoinSet<(usize, Result<BuildOutput, BuildError>)>, i: usize| {
        let p = &platforms[i];
        tracing::info!(platform = %p, "building for {p} ({} of {})", i + 1, platforms.len());
        let one = platform_options(opts, p, cancels[i].clone());
        let events = tagged_events(events, p);
        // Log lines of the platform's build (not only its events) name it.
        let span = tracing::info_span!("platform", platform = %p);
        set.spawn(tracing::Instrument::instrument(async move { (i, build_one(one, events).await) }, span));
    };
    while next < platforms.len() && set.len() < jobs {
        start(&mut set, next);
        next += 1;
    }
    let mut outputs: Vec<Option<BuildOutput>> = platforms.iter().map(|_| None).collect();
    let mut failure: Option<BuildError> = None;
    while let Some(joined) = set.join_next().await {
        let (i, result) = match joined {
            Ok(r) => r,
            Err(e) => {
                failure.get_or_insert(BuildError::Internal(format!("a platform's build task failed: {e}")));
                cancels.iter().for_each(Cancel::cancel);
                continue;
            }
        };
        match result {
            Ok(out) => outputs[i] = Some(out),
            Err(e) => {
                if failure.is_none() {
                    // Stopped from outside: the whole build was cancelled, not one platform.
                    failure = Some(match e {
                        BuildError::Cancelled => BuildError::Cancelled,
                        e => BuildError::Platform { platform: platforms[i].to_string(), source: Box::new(e) },
                    });
                    for (j, c) in cancels.iter().enumerate() {
                        if j != i {
                            c.cancel();
                        }
                    }
                }
            }
        }
        if failure.is_none() && next < platforms.len() {
            start(&mut set, next);
            next += 1;
        }
    }
    forward.abort();
    if opts.cancel.is_cancelled() {
        return Err(BuildError::Cancelled);
    }
    if let Some(e) = failure {
        return Err(e);
    }
    outputs.into_iter().map(|o| o.ok_or_else(|| BuildError::Internal("a platform's build left no output".into()))).collect()
}

/// Each platform's image as the index and the outputs name it: its platform from its config
/// (the variant from the flag when the config has none), its blobs from its manifest.
fn platform_images(platforms: &[Platform], built: &[BuildOutput]) -> Result<Vec<output::PlatformImage>, BuildError> {
    platforms
        .iter()
        .zip(built)
        .map(|(p, out)| {
            let manifest: Manifest =
                serde_json::from_slice(&out.manifest).map_err(|e| BuildError::Internal(format!("the manifest built for {p} does not parse: {e}")))?;
            Ok(output::PlatformImage {
                platform: Platform {
                    os: out.config.os.clone(),
                    architecture: out.config.architecture.clone(),
                    variant: out.config.variant.clone().or(p.variant.clone()),
                },
                manifest_digest: out.digest.clone(),
                manifest_size: out.manifest.len() as u64,
                config_digest: manifest.config.digest,
                layers: manifest.layers.into_iter().map(|l| l.digest).collect(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_follow_the_cpus_the_flag_and_the_isolation() {
        let mut opts = BuildOptions::new("Dockerfile".into(), ".".into());
        assert_eq!(platform_jobs(&opts, 2, 1), 1, "one CPU: one after another");
        assert_eq!(platform_jobs(&opts, 2, 8), 2, "never more than the platforms");
        assert_eq!(platform_jobs(&opts, 3, 2), 2);
        opts.platform_jobs = Some(1);
        assert_eq!(platform_jobs(&opts, 2, 8), 1, "--platform-jobs 1 forces one at a time");
        opts.platform_jobs = Some(0);
        assert_eq!(platform_jobs(&opts, 2, 8), 1);
        opts.platform_jobs = None;
        opts.isolation = Isolation::None;
        assert_eq!(platform_jobs(&opts, 2, 8), 1, "one / to build in");
    }

    #[test]
    fn each_platform_builds_alone_and_writes_no_output_of_its_own() {
        let mut opts = BuildOptions::new("Dockerfile".into(), ".".into());
        opts.tar_path = Some("image.tar".into());
        opts.digest_file = Some("digest".into());
        let parent_cancel = opts.cancel.clone();
        let p: Platform = "linux/arm64".parse().expect("platform");
        let one = platform_options(&opts, &p, Cancel::new());
        assert_eq!(one.platform.as_deref(), Some("linux/arm64"));
        assert!(one.push_by_digest && one.local_layers);
        assert!(one.tar_path.is_none() && one.oci_layout_path.is_none() && one.digest_file.is_none());
        one.cancel.cancel();
        assert!(!parent_cancel.is_cancelled(), "a platform stopped does not stop the caller's switch");
    }
}
