//! A multi-platform image as an OCI layout or tarball. `index.json` names the image index
//! under the tag (as `skopeo copy --all … oci:` and BuildKit's `oci` exporter write it, and as
//! `skopeo copy oci:DIR:TAG` and containerd read it), and lists each platform's manifest too,
//! with its platform and the name `TAG-os-arch[-variant]`: tools that unpack one manifest per
//! name (umoci 0.4 calls the index's tag ambiguous) unpack a platform by that name.

use super::tarball::{ArchiveContents, blob_path, repo_tags};
use super::{LayoutContents, layout_tag};
use strata_registry::Platform;
use strata_registry::manifest::media;

/// One platform's image, as its build left it in the blob store.
pub(crate) struct PlatformImage {
    /// The platform, as the index names it.
    pub platform: Platform,
    /// `sha256:` digest of its manifest.
    pub manifest_digest: String,
    /// Size of its manifest.
    pub manifest_size: u64,
    /// `sha256:` digest of its config.
    pub config_digest: String,
    /// Digests of its layers, base first.
    pub layers: Vec<String>,
}

/// The image index itself.
pub(crate) struct IndexBlob<'a> {
    /// `sha256:` digest of the index.
    pub digest: &'a str,
    /// Size of the index.
    pub size: u64,
}

/// `TAG-os-arch[-variant]`: the name a platform's manifest has in the layout.
pub(crate) fn platform_ref_name(tag: &str, p: &Platform) -> String {
    match &p.variant {
        Some(v) => format!("{tag}-{}-{}-{v}", p.os, p.architecture),
        None => format!("{tag}-{}-{}", p.os, p.architecture),
    }
}

/// Every platform's blobs, then the index's.
fn blobs(images: &[PlatformImage], index: &IndexBlob<'_>) -> LayoutContents {
    let mut contents = LayoutContents { blobs: Vec::new(), entries: Vec::new() };
    for image in images {
        for l in &image.layers {
            contents.add_blob(l);
        }
        contents.add_blob(&image.config_digest);
        contents.add_blob(&image.manifest_digest);
    }
    contents.add_blob(index.digest);
    contents
}

/// The per-platform entries of `index.json`, named after `tag`.
fn platform_entries(images: &[PlatformImage], tag: &str) -> Vec<serde_json::Value> {
    images
        .iter()
        .map(|i| {
            serde_json::json!({
                "mediaType": media::OCI_MANIFEST,
                "digest": i.manifest_digest,
                "size": i.manifest_size,
                "platform": i.platform,
                "annotations": {"org.opencontainers.image.ref.name": platform_ref_name(tag, &i.platform)},
            })
        })
        .collect()
}

/// An OCI layout of the index: first the index under the first destination's tag, then each platform.
pub(crate) fn index_layout(images: &[PlatformImage], index: &IndexBlob<'_>, first_destination: Option<&String>) -> LayoutContents {
    let tag = layout_tag(first_destination);
    let mut contents = blobs(images, index);
    contents.entries.push(serde_json::json!({
        "mediaType": media::OCI_INDEX,
        "digest": index.digest,
        "size": index.size,
        "annotations": {"org.opencontainers.image.ref.name": tag},
    }));
    contents.entries.extend(platform_entries(images, &tag));
    contents
}

/// A tarball of the index: `index.json` names the index once per destination tag (as for one
/// image), then each platform under the first tag; `manifest.json` lists every platform's image,
/// the destination tags on the one for this host's platform (else the first), so `docker load`
/// tags an image the machine runs.
pub(crate) fn index_archive(images: &[PlatformImage], index: &IndexBlob<'_>, destinations: &[String]) -> ArchiveContents {
    let tags = repo_tags(destinations);
    let mut layout = blobs(images, index);
    let desc = |annotations: serde_json::Value| {
        let mut d = serde_json::json!({"mediaType": media::OCI_INDEX, "digest": index.digest, "size": index.size});
        if !annotations.is_null() {
            d["annotations"] = annotations;
        }
        d
    };
    if tags.is_empty() {
        layout.entries.push(desc(serde_json::Value::Null));
    }
    for t in &tags {
        let tag = t.rsplit_once(':').map_or("latest", |(_, tag)| tag);
        layout.entries.push(desc(serde_json::json!({"io.containerd.image.name": t, "org.opencontainers.image.ref.name": tag})));
    }
    let first_tag = tags.first().and_then(|t| t.rsplit_once(':')).map_or("latest", |(_, tag)| tag).to_string();
    layout.entries.extend(platform_entries(images, &first_tag));
    let host = Platform::host();
    let tagged = images.iter().position(|i| i.platform.os == host.os && i.platform.architecture == host.architecture).unwrap_or(0);
    let manifest_json: Vec<serde_json::Value> = images
        .iter()
        .enumerate()
        .map(|(n, i)| {
            serde_json::json!({
                "Config": blob_path(&i.config_digest),
                "RepoTags": if n == tagged { tags.clone() } else { Vec::new() },
                "Layers": i.layers.iter().map(|l| blob_path(l)).collect::<Vec<_>>(),
            })
        })
        .collect();
    ArchiveContents { layout, manifest_json: serde_json::Value::Array(manifest_json) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    fn images() -> Vec<PlatformImage> {
        ["amd64", "arm64"]
            .iter()
            .zip([('a', 'c'), ('b', 'd')])
            .map(|(arch, (c, config))| PlatformImage {
                platform: Platform { os: "linux".into(), architecture: (*arch).into(), variant: None },
                manifest_digest: d(c),
                manifest_size: 100,
                config_digest: d(config),
                layers: vec![d('e'), d(c)],
            })
            .collect()
    }

    #[test]
    fn the_layout_names_the_index_by_the_tag_and_each_platform_by_tag_os_arch() {
        let index_digest = d('f');
        let dest = "127.0.0.1:5000/app:1.0".to_string();
        let got = index_layout(&images(), &IndexBlob { digest: &index_digest, size: 300 }, Some(&dest));
        let names: Vec<&str> = got.entries.iter().filter_map(|e| e["annotations"]["org.opencontainers.image.ref.name"].as_str()).collect();
        assert_eq!(names, ["1.0", "1.0-linux-amd64", "1.0-linux-arm64"]);
        assert_eq!(got.entries[0]["mediaType"], media::OCI_INDEX);
        assert_eq!(got.entries[2]["platform"]["architecture"], "arm64");
        // The shared layer once; the index last.
        assert_eq!(got.blobs.iter().filter(|b| **b == d('e')).count(), 1);
        assert_eq!(got.blobs.last(), Some(&index_digest));
    }

    #[test]
    fn the_archive_lists_every_platform_and_tags_one() {
        let index_digest = d('f');
        let dests = vec!["127.0.0.1:5000/app:1.0".to_string(), "127.0.0.1:5000/app:latest".to_string()];
        let got = index_archive(&images(), &IndexBlob { digest: &index_digest, size: 300 }, &dests);
        assert_eq!(got.layout.entries[0]["digest"], index_digest.as_str(), "the index first: push-only pushes the first entry");
        assert_eq!(got.layout.entries.iter().filter(|e| e["mediaType"] == media::OCI_INDEX).count(), 2, "once per tag");
        let listed = got.manifest_json.as_array().cloned().unwrap_or_default();
        assert_eq!(listed.len(), 2);
        let tagged: Vec<usize> = listed.iter().map(|e| e["RepoTags"].as_array().map_or(0, Vec::len)).collect();
        assert_eq!(tagged.iter().filter(|n| **n == 2).count(), 1, "one platform carries the tags: {tagged:?}");
    }

    #[test]
    fn a_variant_is_part_of_the_name() {
        let p = Platform { os: "linux".into(), architecture: "arm".into(), variant: Some("v7".into()) };
        assert_eq!(platform_ref_name("latest", &p), "latest-linux-arm-v7");
    }
}
