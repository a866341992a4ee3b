//! Our layers checked against real tools: `umoci unpack` of an OCI layout made of our layers
//! gives the tree we snapshotted, and for the same RUN on the same base image our layer holds the
//! same whiteouts and replacements as the one `buildah bud --isolation chroot` produces.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use strata_snapshot::*;

fn have(tool: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
}

fn skip(test: &str, tools: &[&str]) -> bool {
    if skip_unless_root(test) {
        return true;
    }
    for t in tools {
        if !have(t) {
            strata_test_support::skip(test, &format!("`{t}` is not installed (apt-get install {t})"));
            return true;
        }
    }
    false
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?} failed:\n{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Writes an OCI layout (index.json, manifest, config) around layers already in `store`.
fn write_layout(layout: &Path, store: &BlobStore, layers: &[LayerInfo]) {
    std::fs::write(layout.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let diff_ids: Vec<String> = layers.iter().map(|l| format!("\"{}\"", l.diff_id)).collect();
    let config = format!(r#"{{"architecture":"amd64","os":"linux","config":{{}},"rootfs":{{"type":"layers","diff_ids":[{}]}}}}"#, diff_ids.join(","));
    let config_digest = store.put_bytes(config.as_bytes()).unwrap();
    let descs: Vec<String> = layers.iter().map(|l| format!(r#"{{"mediaType":"{}","digest":"{}","size":{}}}"#, l.media_type, l.digest, l.size)).collect();
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[{}]}}"#,
        config.len(),
        descs.join(",")
    );
    let manifest_digest = store.put_bytes(manifest.as_bytes()).unwrap();
    let index = format!(
        r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest_digest}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"latest"}}}}]}}"#,
        manifest.len()
    );
    std::fs::write(layout.join("index.json"), index).unwrap();
}

#[test]
fn umoci_unpacks_our_layers_to_the_same_tree() {
    if skip("umoci_unpacks_our_layers_to_the_same_tree", &["umoci"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let layout = tmp.path().join("layout");
    std::fs::create_dir_all(&src).unwrap();
    let store = BlobStore::open(&layout.join("blobs")).unwrap();
    let mut snap = Snapshotter::new(&src, SnapshotMode::Full, Vec::new()).unwrap();
    rich_tree(&src);
    write(&src, "gone/a/b", b"1");
    write(&src, "dir2file/x", b"2");
    write(&src, "recreated/old", b"3");
    write(&src, "file2dir", b"5");
    let gzip = LayerOptions { compression: Compression::Gzip { level: 6 }, reproducible_epoch: None, content_hashes: false };
    let l1 = write_layer(&src, &snap.diff().unwrap(), &gzip, &store).unwrap();
    std::fs::remove_dir_all(src.join("gone")).unwrap();
    std::fs::remove_dir_all(src.join("dir2file")).unwrap();
    write(&src, "dir2file", b"file now");
    std::fs::remove_file(src.join("file2dir")).unwrap();
    write(&src, "file2dir/child", b"dir now");
    std::fs::remove_dir_all(src.join("recreated")).unwrap();
    write(&src, "recreated/new", b"4");
    std::fs::remove_file(src.join("etc/config")).unwrap();
    let l2 = write_layer(&src, &snap.diff().unwrap(), &gzip, &store).unwrap();
    write_layout(&layout, &store, &[l1, l2]);
    let bundle = tmp.path().join("bundle");
    run(Command::new("umoci").args(["unpack", "--image"]).arg(format!("{}:latest", layout.display())).arg(&bundle));
    assert_eq!(fingerprint(&bundle.join("rootfs")), fingerprint(&src));
}

/// A scratch directory under /tmp whose path is all lowercase, removed on drop.
struct LowercaseTempDir(PathBuf);

impl LowercaseTempDir {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let p = PathBuf::from(format!("/tmp/strata-oracle-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for LowercaseTempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Entries of a layer blob as comparable lines: name, type, mode, owner, size, link target.
fn layer_entries(blob: &Path) -> BTreeMap<String, String> {
    let (_, reader) = strata_snapshot::compression::decoder(File::open(blob).unwrap()).unwrap();
    let mut out = BTreeMap::new();
    let mut ar = tar::Archive::new(reader);
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        let name = e.path().unwrap().display().to_string();
        let name = name.trim_end_matches('/').to_string();
        let link = e.link_name().unwrap().map(|l| l.display().to_string()).unwrap_or_default();
        out.insert(
            name,
            format!("{:?} mode={:o} {}:{} size={} link={link}", h.entry_type(), h.mode().unwrap() & 0o7777, h.uid().unwrap(), h.gid().unwrap(), e.size()),
        );
    }
    out
}

const RUN: &str = "rm -rf /opt/gone /opt/dir2file /var/lib/recreated /opt/keep/sub/f \
 && echo now-file > /opt/dir2file \
 && rm /opt/file2dir && mkdir -p /opt/file2dir && echo c > /opt/file2dir/child \
 && rm /opt/file2link && ln -s keep /opt/file2link \
 && mkdir -p /var/lib/recreated && echo k2 > /var/lib/recreated/kept \
 && rm /opt/link2dir && mkdir /opt/link2dir && echo n > /opt/link2dir/n \
 && mkdir -p /opt/data && echo b > /opt/data/blob \
 && mkfifo /opt/fifo && chmod 4755 /opt/data/blob";

#[test]
fn whiteouts_and_replacements_match_buildah() {
    if skip("whiteouts_and_replacements_match_buildah", &["umoci", "buildah", "busybox"]) {
        return;
    }
    // buildah names the base image after its path, and image names must be lowercase.
    let tmp = LowercaseTempDir::new();
    let base = tmp.path().join("base");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/busybox-base.sh");
    run(Command::new("bash").arg(&fixture).arg(&base));

    // buildah: RUN on the base, pushed to an OCI layout; its last layer is the RUN's.
    let ctx = tmp.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), format!("FROM oci:{}:latest\nRUN {RUN}\n", base.display())).unwrap();
    let st = tmp.path().join("storage");
    let b = |args: &[&str]| {
        let mut c = Command::new("buildah");
        c.args(["--storage-driver", "vfs", "--root"]).arg(st.join("root")).arg("--runroot").arg(st.join("run")).args(args);
        c
    };
    run(b(&["bud", "--isolation", "chroot", "-q", "-t", "strata-oracle", "-f"]).arg(ctx.join("Dockerfile")).arg(&ctx));
    let out = tmp.path().join("out");
    run(b(&["push", "-q", "strata-oracle"]).arg(format!("oci:{}:latest", out.display())));
    let _ = b(&["rmi", "-a", "-f"]).output();
    let blob = |layout: &Path, digest: &str| layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"));
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("index.json")).unwrap()).unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(blob(&out, index["manifests"][0]["digest"].as_str().unwrap())).unwrap()).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    let buildah_layer = blob(&out, layers.last().unwrap()["digest"].as_str().unwrap());

    // strata: the base's layers unpacked with our unpack, the same RUN in a chroot, a diff.
    let base_index: serde_json::Value = serde_json::from_slice(&std::fs::read(base.join("index.json")).unwrap()).unwrap();
    let base_manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(blob(&base, base_index["manifests"][0]["digest"].as_str().unwrap())).unwrap()).unwrap();
    let pristine = tmp.path().join("pristine");
    std::fs::create_dir_all(&pristine).unwrap();
    for l in base_manifest["layers"].as_array().unwrap() {
        unpack_layer(File::open(blob(&base, l["digest"].as_str().unwrap())).unwrap(), &pristine, &UnpackOptions::default()).unwrap();
    }
    let store = BlobStore::open(&tmp.path().join("blobs")).unwrap();
    let mut ours_by_mode = Vec::new();
    for mode in [SnapshotMode::Full, SnapshotMode::Redo, SnapshotMode::Time] {
        let rootfs = tmp.path().join(format!("rootfs-{mode:?}"));
        run(Command::new("cp").arg("-a").arg(&pristine).arg(&rootfs));
        let mut snap = Snapshotter::new(&rootfs, mode, Vec::new()).unwrap();
        run(Command::new("chroot").arg(&rootfs).args(["/bin/sh", "-c", RUN]));
        let layer = write_layer(&rootfs, &snap.diff().unwrap(), &LayerOptions::default(), &store).unwrap();
        ours_by_mode.push((mode, layer));
    }

    // buildah's RUN also leaves the mount points it made (dev, proc, sys, run, etc/hosts ...),
    // which strata's builder lists in the ignore set; they are not part of the comparison.
    let artefacts = ["dev", "proc", "sys", "run", "etc", "etc/hosts", "etc/hostname", "etc/resolv.conf"];
    let mut theirs = layer_entries(&buildah_layer);
    theirs.retain(|k, _| !artefacts.contains(&k.as_str()));
    for (mode, layer) in &ours_by_mode {
        let mine = layer_entries(&store.path(&layer.digest));
        assert_eq!(mine, theirs, "strata {mode:?} layer (left) vs buildah layer (right)");
    }
    let ours = &ours_by_mode[0].1;

    // And both layers applied to the base give the same tree.
    let with_buildah = tmp.path().join("with-buildah");
    run(Command::new("cp").arg("-a").arg(&pristine).arg(&with_buildah));
    unpack_layer(File::open(&buildah_layer).unwrap(), &with_buildah, &UnpackOptions::default()).unwrap();
    unpack_layer(File::open(store.path(&ours.digest)).unwrap(), &pristine, &UnpackOptions::default()).unwrap();
    let strip = |mut m: BTreeMap<PathBuf, String>| {
        m.retain(|k, _| !artefacts.iter().any(|a| k == Path::new(a)));
        m.into_iter().map(|(k, v)| (k, v.split(' ').filter(|t| !t.starts_with("mtime=")).collect::<Vec<_>>().join(" "))).collect::<BTreeMap<_, _>>()
    };
    assert_eq!(strip(fingerprint(&pristine)), strip(fingerprint(&with_buildah)));
}
