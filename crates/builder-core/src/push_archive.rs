//! Push-only: an image tarball written earlier (strata's `--tar-path`, `docker save`, an OCI
//! archive) pushed as it is, for Harness's build → scan → push flow.
//!
//! The tarball is read once, front to back: every file goes into the blob store, hashed on the
//! way (a `blobs/sha256/<hex>` entry must hash to its name), and `index.json` / `manifest.json`
//! are kept (capped). An OCI index names the manifest to push, byte for byte, so the pushed
//! digest is the built one; an index of several platforms (a multi-platform `--tar-path`) has
//! each platform's manifest pushed by digest first, then the index under the tags, byte for
//! byte. A `docker save` tarball without an index (Docker before 25) gets an
//! OCI manifest made from its `manifest.json`, its layers gzip or plain tar as they are. Every
//! blob the manifest names must be in the tarball with the size the manifest says; nothing is
//! pushed otherwise.

use crate::error::BuildError;
use crate::progress::{BuildEvent, EventFn};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use strata_registry::manifest::{Descriptor, Manifest, media};
use strata_registry::{Client, ClientOptions, PushBlob, PushImage, Reference};
use strata_snapshot::BlobStore;

/// The largest `index.json` or `manifest.json` read (containerd's manifest cap).
const MAX_INDEX_BYTES: u64 = 4 << 20;

/// What to push and where.
#[derive(Debug, Clone)]
pub struct PushArchiveOptions {
    /// The tarball.
    pub archive: PathBuf,
    /// References to push to (each with its tag).
    pub destinations: Vec<String>,
    /// strata's work dir (its blob store receives the tarball's blobs).
    pub work_dir: PathBuf,
    /// Registry access, as for a build.
    pub registry: ClientOptions,
    /// Write the pushed manifest's digest here.
    pub digest_file: Option<PathBuf>,
    /// Stops the push when cancelled.
    pub cancel: crate::Cancel,
}

/// What a push of a tarball did.
#[derive(Debug, Clone)]
pub struct PushedArchive {
    /// `sha256:` digest of the manifest pushed.
    pub digest: String,
    /// References pushed to.
    pub pushed: Vec<String>,
}

/// Why a tarball cannot be pushed; each names the tarball.
fn bad(archive: &Path, message: impl std::fmt::Display) -> BuildError {
    BuildError::Archive { path: archive.to_path_buf(), message: message.to_string() }
}

/// The files of the tarball: each regular file's digest and size, and the two index files.
struct ArchiveContents {
    files: HashMap<String, (String, u64)>,
    index_json: Option<Vec<u8>>,
    manifest_json: Option<Vec<u8>>,
}

/// Reads the tarball into the blob store.
fn read_archive(archive: &Path, store: &BlobStore) -> Result<ArchiveContents, BuildError> {
    let file = std::fs::File::open(archive).map_err(|e| bad(archive, format!("cannot open it: {e} (check PLUGIN_SOURCE_TAR_PATH / --source-tar)")))?;
    let mut tar = tar::Archive::new(std::io::BufReader::with_capacity(1 << 20, file));
    let mut contents = ArchiveContents { files: HashMap::new(), index_json: None, manifest_json: None };
    let entries = tar.entries().map_err(|e| bad(archive, format!("not a tar archive: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(archive, format!("not a readable tar archive: {e}")))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let name = entry.path().map_err(|e| bad(archive, e))?.to_string_lossy().trim_start_matches("./").to_string();
        if name == "index.json" || name == "manifest.json" {
            let mut bytes = Vec::new();
            (&mut entry).take(MAX_INDEX_BYTES + 1).read_to_end(&mut bytes).map_err(|e| bad(archive, format!("{name}: {e}")))?;
            if bytes.len() as u64 > MAX_INDEX_BYTES {
                return Err(bad(archive, format!("{name} is larger than {MAX_INDEX_BYTES} bytes")));
            }
            if name == "index.json" {
                contents.index_json = Some(bytes);
            } else {
                contents.manifest_json = Some(bytes);
            }
            continue;
        }
        let mut writer = store.writer()?;
        std::io::copy(&mut entry, &mut writer).map_err(|e| bad(archive, format!("{name}: {e} (the tarball is truncated or damaged)")))?;
        writer.flush().map_err(|e| bad(archive, format!("{name}: {e}")))?;
        let (digest, size) = match name.strip_prefix("blobs/sha256/") {
            Some(hex) => writer.commit_expecting(&format!("sha256:{hex}")).map_err(|e| bad(archive, format!("{name}: {e} (the tarball is damaged)")))?,
            None => writer.commit()?,
        };
        contents.files.insert(name, (digest, size));
    }
    Ok(contents)
}

/// What a tarball holds to push: one image, or an image index and its platforms' images.
enum Pushable {
    /// One image manifest and its blobs.
    Image(PushImage),
    /// Each platform's image, pushed by digest first, then the index (no blobs of its own).
    Index { platforms: Vec<PushImage>, index: PushImage },
}

/// The blob `digest` of the tarball, checked to be in the store with `size` bytes.
fn blob_of(archive: &Path, store: &BlobStore, digest: &str, size: u64, what: &str) -> Result<PushBlob, BuildError> {
    let path = store.path(digest);
    match std::fs::metadata(&path) {
        Ok(m) if m.len() == size => Ok(PushBlob { digest: digest.to_string(), size, path }),
        Ok(m) => Err(bad(archive, format!("{what} {digest} has {} bytes in the tarball, the manifest says {size}", m.len()))),
        Err(_) => Err(bad(archive, format!("{what} {digest} is not in the tarball"))),
    }
}

/// The (capped) bytes of the manifest or index `desc` names.
fn read_manifest_blob(archive: &Path, store: &BlobStore, desc: &Descriptor, what: &str) -> Result<Vec<u8>, BuildError> {
    if desc.size > MAX_INDEX_BYTES {
        return Err(bad(archive, format!("{what} {} is larger than {MAX_INDEX_BYTES} bytes", desc.digest)));
    }
    let b = blob_of(archive, store, &desc.digest, desc.size, what)?;
    std::fs::read(&b.path).map_err(BuildError::io(&b.path))
}

/// The image manifest `desc` names, with its config and layers, all checked to be in the tarball.
fn manifest_image(archive: &Path, store: &BlobStore, desc: &Descriptor) -> Result<PushImage, BuildError> {
    if desc.media_type != media::OCI_MANIFEST && desc.media_type != media::DOCKER_MANIFEST {
        return Err(bad(archive, format!("{} is a {}, not an image manifest", desc.digest, desc.media_type)));
    }
    let bytes = read_manifest_blob(archive, store, desc, "manifest")?;
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| bad(archive, format!("manifest {}: {e}", desc.digest)))?;
    let mut blobs = vec![blob_of(archive, store, &manifest.config.digest, manifest.config.size, "config")?];
    for l in &manifest.layers {
        blobs.push(blob_of(archive, store, &l.digest, l.size, "layer")?);
    }
    Ok(PushImage { blobs, manifest: bytes, manifest_media_type: desc.media_type.clone() })
}

/// What to push, from what the tarball holds.
fn image_of(archive: &Path, store: &BlobStore, contents: &ArchiveContents) -> Result<Pushable, BuildError> {
    let blob = |digest: &str, size: u64, what: &str| blob_of(archive, store, digest, size, what);
    if let Some(index) = &contents.index_json {
        #[derive(serde::Deserialize)]
        struct Index {
            manifests: Vec<Descriptor>,
        }
        let index: Index = serde_json::from_slice(index).map_err(|e| bad(archive, format!("index.json: {e}")))?;
        let first = index.manifests.first().ok_or_else(|| bad(archive, "index.json lists no manifest"))?;
        if first.media_type != media::OCI_INDEX && first.media_type != media::DOCKER_LIST {
            return manifest_image(archive, store, first).map(Pushable::Image);
        }
        // A multi-platform image (strata's --tar-path of several platforms, `skopeo copy --all`
        // to an oci-archive): every platform's image must be in the tarball.
        let bytes = read_manifest_blob(archive, store, first, "image index")?;
        let nested: Index = serde_json::from_slice(&bytes).map_err(|e| bad(archive, format!("image index {}: {e}", first.digest)))?;
        if nested.manifests.is_empty() {
            return Err(bad(archive, format!("image index {} lists no manifest", first.digest)));
        }
        let platforms = nested.manifests.iter().map(|d| manifest_image(archive, store, d)).collect::<Result<Vec<_>, _>>()?;
        return Ok(Pushable::Index { platforms, index: PushImage { blobs: Vec::new(), manifest: bytes, manifest_media_type: first.media_type.clone() } });
    }
    let Some(listing) = &contents.manifest_json else {
        return Err(bad(archive, "neither index.json nor manifest.json is in it: not an image tarball (write one with --tar-path or docker save)"));
    };
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Entry {
        config: String,
        layers: Vec<String>,
    }
    let entries: Vec<Entry> = serde_json::from_slice(listing).map_err(|e| bad(archive, format!("manifest.json: {e}")))?;
    let entry = entries.first().ok_or_else(|| bad(archive, "manifest.json lists no image"))?;
    let file = |name: &str, what: &str| {
        contents.files.get(name).cloned().ok_or_else(|| bad(archive, format!("manifest.json names the {what} {name}, which is not in the tarball")))
    };
    let (config_digest, config_size) = file(&entry.config, "config")?;
    let mut blobs = vec![blob(&config_digest, config_size, "config")?];
    let mut layers = Vec::new();
    for name in &entry.layers {
        let (digest, size) = file(name, "layer")?;
        let b = blob(&digest, size, "layer")?;
        let mut magic = [0u8; 2];
        let gzip = std::fs::File::open(&b.path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && magic == [0x1f, 0x8b];
        let media_type = if gzip { "application/vnd.oci.image.layer.v1.tar+gzip" } else { "application/vnd.oci.image.layer.v1.tar" };
        layers.push(Descriptor { media_type: media_type.into(), digest, size, platform: None, annotations: Default::default() });
        blobs.push(b);
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: Some(media::OCI_MANIFEST.into()),
        config: Descriptor { media_type: media::OCI_CONFIG.into(), digest: config_digest, size: config_size, platform: None, annotations: Default::default() },
        layers,
        annotations: Default::default(),
    };
    let bytes = serde_json::to_vec(&manifest).map_err(|e| BuildError::Internal(format!("cannot serialise the manifest: {e}")))?;
    Ok(Pushable::Image(PushImage { blobs, manifest: bytes, manifest_media_type: media::OCI_MANIFEST.into() }))
}

/// Pushes what the tarball holds under every reference; returns the digest of what the tags name.
async fn push_pushable(client: &Client, refs: &[Reference], pushable: &Pushable) -> Result<String, strata_registry::Error> {
    match pushable {
        Pushable::Image(image) => client.push_image_tags(refs, image).await,
        Pushable::Index { platforms, index } => {
            // A registry accepts an index only once the manifests it names are there.
            let mut repos: Vec<(&str, &str)> = Vec::new();
            for r in refs {
                if repos.contains(&(r.registry.as_str(), r.repository.as_str())) {
                    continue;
                }
                repos.push((&r.registry, &r.repository));
                for image in platforms {
                    let by_digest = Reference { tag: None, digest: Some(strata_registry::digest::sha256_digest(&image.manifest)), ..r.clone() };
                    client.push_image(&by_digest, image).await?;
                }
            }
            client.push_image_tags(refs, index).await
        }
    }
}

/// Pushes the image in `opts.archive` to every destination; `events` hears of each push.
pub async fn push_archive(opts: PushArchiveOptions, events: Option<EventFn>) -> Result<PushedArchive, BuildError> {
    if opts.destinations.is_empty() {
        return Err(BuildError::Options("nothing to push to: give a destination (--destination, or PLUGIN_REGISTRY/PLUGIN_REPO/PLUGIN_TAGS)".into()));
    }
    let refs = opts.destinations.iter().map(|d| d.parse::<Reference>()).collect::<Result<Vec<_>, _>>()?;
    let store = BlobStore::open(&opts.work_dir.join("blobs"))?;
    let (archive, store_for_read) = (opts.archive.clone(), store.clone());
    let contents = tokio::task::spawn_blocking(move || read_archive(&archive, &store_for_read))
        .await
        .map_err(|e| BuildError::Internal(format!("reading the tarball stopped: {e}")))??;
    let image = image_of(&opts.archive, &store, &contents)?;
    let mut registry = opts.registry.clone();
    if registry.progress.is_none()
        && let Some(f) = events.clone()
    {
        registry.progress = Some(std::sync::Arc::new(move |e| f(BuildEvent::Transfer(e))));
    }
    let client = Client::new(registry)?;
    let digest = tokio::select! {
        pushed = push_pushable(&client, &refs, &image) => pushed?,
        () = opts.cancel.cancelled() => return Err(BuildError::Cancelled),
    };
    if let Some(f) = &events {
        for d in &opts.destinations {
            f(BuildEvent::Pushed { reference: d.clone(), digest: digest.clone() });
        }
    }
    if let Some(path) = &opts.digest_file {
        std::fs::write(path, &digest).map_err(BuildError::io(path))?;
    }
    Ok(PushedArchive { digest, pushed: opts.destinations })
}
