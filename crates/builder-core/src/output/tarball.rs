//! `--tar-path`: the image as a `docker load` tarball.
//!
//! The layout is the one `docker save` writes since Docker 25: the blobs under
//! `blobs/sha256/`, a `manifest.json` (`Config`, `RepoTags`, `Layers`) for `docker load` and
//! `skopeo … docker-archive:`, and `oci-layout` + `index.json` so the same file is an OCI
//! archive too. Layers stay as their compressed blobs: `docker load` and containers/image
//! decompress them and check them against the config's `rootfs.diff_ids`.
//!
//! Blobs are streamed from the blob store into a temporary file beside the target, which is
//! renamed over the target only once complete, so a failure never leaves a partial tarball.

use crate::error::BuildError;
use crate::image::manifest::ImageLayer;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use strata_registry::Reference;
use strata_registry::manifest::media;
use strata_snapshot::BlobStore;

/// What goes into the tarball besides the blobs themselves.
pub(crate) struct TarballImage<'a> {
    /// `sha256:` digest of the manifest.
    pub manifest_digest: &'a str,
    /// The manifest bytes (for the size in `index.json`).
    pub manifest: &'a [u8],
    /// `sha256:` digest of the image config.
    pub config_digest: &'a str,
    /// The layers, base first.
    pub layers: &'a [ImageLayer],
    /// The build's destinations; each one with a tag becomes a `RepoTags` entry.
    pub destinations: &'a [String],
}

/// Everything a tarball holds: the blobs, `index.json` and `manifest.json`.
pub(crate) struct ArchiveContents {
    /// The blobs (each once) and the `index.json` entries.
    pub layout: super::LayoutContents,
    /// `manifest.json`, for `docker load` and `docker-archive:` readers.
    pub manifest_json: serde_json::Value,
}

impl TarballImage<'_> {
    /// What the tarball of this one image holds.
    pub(crate) fn contents(&self) -> ArchiveContents {
        let mut layout = super::LayoutContents { blobs: Vec::new(), entries: Vec::new() };
        for l in self.layers {
            layout.add_blob(&l.digest);
        }
        layout.add_blob(self.config_digest);
        layout.add_blob(self.manifest_digest);
        let tags = repo_tags(self.destinations);
        let manifest_json = serde_json::json!([{
            "Config": blob_path(self.config_digest),
            "RepoTags": tags,
            "Layers": self.layers.iter().map(|l| blob_path(&l.digest)).collect::<Vec<_>>(),
        }]);
        layout.entries = if tags.is_empty() {
            vec![serde_json::json!({"mediaType": media::OCI_MANIFEST, "digest": self.manifest_digest, "size": self.manifest.len()})]
        } else {
            tags.iter()
                .map(|t| {
                    // As `docker save` annotates: the full name for containerd, the tag for OCI tools.
                    let tag = t.rsplit_once(':').map_or("latest", |(_, tag)| tag);
                    serde_json::json!({
                        "mediaType": media::OCI_MANIFEST,
                        "digest": self.manifest_digest,
                        "size": self.manifest.len(),
                        "annotations": {"io.containerd.image.name": t, "org.opencontainers.image.ref.name": tag},
                    })
                })
                .collect()
        };
        ArchiveContents { layout, manifest_json }
    }
}

/// Writes `image` as a docker-archive tarball at `path`, atomically.
pub(crate) fn write_docker_archive(store: &BlobStore, path: &Path, image: &ArchiveContents) -> Result<(), BuildError> {
    let dir = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(d) => d.to_path_buf(),
        None => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(BuildError::io(&dir))?;
    let name = path.file_name().ok_or_else(|| BuildError::Options(format!("--tar-path {}: names no file", path.display())))?;
    let temp = TempFile { path: dir.join(format!(".{}.strata-{}.tmp", name.to_string_lossy(), std::process::id())), keep: false };
    let file = File::create(&temp.path).map_err(BuildError::io(&temp.path))?;
    let mut tar = tar::Builder::new(BufWriter::with_capacity(1 << 20, file));
    write_entries(store, &mut tar, image).map_err(|e| match e {
        EntryError::Blob(p, source) => BuildError::Io { path: p, source },
        EntryError::Tar(source) => BuildError::Io { path: temp.path.clone(), source },
    })?;
    let file = tar.into_inner().and_then(|w| w.into_inner().map_err(std::io::IntoInnerError::into_error)).map_err(BuildError::io(&temp.path))?;
    file.sync_all().map_err(BuildError::io(&temp.path))?;
    drop(file);
    std::fs::rename(&temp.path, path).map_err(BuildError::io(path))?;
    temp.commit();
    tracing::info!(path = %path.display(), "wrote the image as a docker-archive tarball");
    Ok(())
}

/// Removes the temporary tarball unless it was renamed into place.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl TempFile {
    fn commit(mut self) {
        self.keep = true;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Where an entry failed: reading a blob (named by its store path) or writing the tarball.
enum EntryError {
    Blob(PathBuf, std::io::Error),
    Tar(std::io::Error),
}

fn write_entries<W: Write>(store: &BlobStore, tar: &mut tar::Builder<W>, image: &ArchiveContents) -> Result<(), EntryError> {
    for d in ["blobs/", "blobs/sha256/"] {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        tar.append_data(&mut h, d, std::io::empty()).map_err(EntryError::Tar)?;
    }
    let mut written = std::collections::HashSet::new();
    for d in &image.layout.blobs {
        if !written.insert(d) {
            continue;
        }
        let src = store.path(d);
        let file = File::open(&src).map_err(|e| EntryError::Blob(src.clone(), e))?;
        let size = file.metadata().map_err(|e| EntryError::Blob(src.clone(), e))?.len();
        let mut h = header(tar::EntryType::Regular, 0o644, size);
        // `append_data` copies through a small buffer: the blob is never held in memory.
        tar.append_data(&mut h, blob_path(d), file).map_err(EntryError::Tar)?;
    }
    for (name, value) in [("index.json", image.layout.index_json()), ("manifest.json", image.manifest_json.clone())] {
        let bytes = serde_json::to_vec(&value).map_err(|e| EntryError::Tar(std::io::Error::other(e)))?;
        let mut h = header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
        tar.append_data(&mut h, name, bytes.as_slice()).map_err(EntryError::Tar)?;
    }
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#;
    let mut h = header(tar::EntryType::Regular, 0o644, layout.len() as u64);
    tar.append_data(&mut h, "oci-layout", &layout[..]).map_err(EntryError::Tar)?;
    tar.finish().map_err(EntryError::Tar)
}

/// A root-owned entry with a fixed time, so equal images give equal tarballs.
fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h
}

/// The path of blob `digest` inside a layout or tarball.
pub(crate) fn blob_path(digest: &str) -> String {
    format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"))
}

/// `RepoTags` as `docker save` writes them: familiar names (`app:1`, `user/app:1`,
/// `registry:5000/app:1`), `:latest` when no tag was given; digest-only references have no
/// tag for `docker load` to apply and are left out.
pub(crate) fn repo_tags(destinations: &[String]) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    for d in destinations {
        let Ok(r) = d.parse::<Reference>() else { continue };
        let tag = match (&r.tag, &r.digest) {
            (Some(t), _) => t.clone(),
            (None, Some(_)) => continue,
            (None, None) => "latest".to_string(),
        };
        let name = if r.registry == "docker.io" {
            r.repository.strip_prefix("library/").filter(|n| !n.contains('/')).unwrap_or(&r.repository).to_string()
        } else {
            format!("{}/{}", r.registry, r.repository)
        };
        let t = format!("{name}:{tag}");
        if !tags.contains(&t) {
            tags.push(t);
        }
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_tags_are_familiar_names_with_a_tag() {
        let d = format!("sha256:{}", "a".repeat(64));
        let dests: Vec<String> = vec![
            "busybox".into(),
            "docker.io/user/app:1".into(),
            "127.0.0.1:5000/team/app:v2".into(),
            format!("127.0.0.1:5000/team/app@{d}"),
            format!("127.0.0.1:5000/team/app:v3@{d}"),
            "127.0.0.1:5000/team/app:v2".into(),
        ];
        assert_eq!(repo_tags(&dests), ["busybox:latest", "user/app:1", "127.0.0.1:5000/team/app:v2", "127.0.0.1:5000/team/app:v3"]);
    }

    #[test]
    fn a_failed_write_leaves_nothing_behind() {
        let tmp = match tempfile::tempdir() {
            Ok(t) => t,
            Err(e) => panic!("tempdir: {e}"),
        };
        let store = match BlobStore::open(&tmp.path().join("store")) {
            Ok(s) => s,
            Err(e) => panic!("store: {e}"),
        };
        let missing = format!("sha256:{}", "b".repeat(64));
        let layers =
            [ImageLayer { digest: missing.clone(), size: 1, diff_id: missing.clone(), media_type: "application/vnd.oci.image.layer.v1.tar+gzip".to_string() }];
        let image = TarballImage { manifest_digest: &missing, manifest: b"{}", config_digest: &missing, layers: &layers, destinations: &[] };
        let out = tmp.path().join("out/image.tar");
        let err = write_docker_archive(&store, &out, &image.contents());
        assert!(matches!(err, Err(BuildError::Io { .. })), "{err:?}");
        let left: Vec<_> = std::fs::read_dir(tmp.path().join("out")).map(|r| r.flatten().map(|e| e.file_name()).collect()).unwrap_or_default();
        assert!(left.is_empty(), "left behind: {left:?}");
    }
}
