//! Pushes the image in an OCI layout directory to a registry (used by `scripts/bench-push.sh`).
//!
//! ```text
//! cargo run --release -p strata-registry --example push_oci_layout -- LAYOUT REFERENCE [--insecure]
//! ```
//! `STRATA_CA` (a PEM file) and `STRATA_USER`/`STRATA_PASS` serve TLS registries with basic auth.
//! Prints the manifest digest, the push time, and the HEAD/upload/mount counts seen in progress events.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use strata_registry::{Client, ClientOptions, ProgressEvent, PushBlob, PushImage, Reference};

fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    let (alg, hex) = digest.split_once(':').unwrap_or(("sha256", digest));
    layout.join("blobs").join(alg).join(hex)
}

fn fail(msg: String) -> ! {
    eprintln!("push_oci_layout: {msg}");
    std::process::exit(1)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let insecure = args.iter().any(|a| a == "--insecure");
    let pos: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let [layout, reference] = pos.as_slice() else { fail("usage: push_oci_layout LAYOUT REFERENCE [--insecure]".into()) };
    let layout = PathBuf::from(layout);
    let reference: Reference = reference.parse().unwrap_or_else(|e| fail(format!("{e}")));
    let read = |p: PathBuf| std::fs::read(&p).unwrap_or_else(|e| fail(format!("{}: {e}", p.display())));
    let index: serde_json::Value = serde_json::from_slice(&read(layout.join("index.json"))).unwrap_or_else(|e| fail(format!("index.json: {e}")));
    let desc = &index["manifests"][0];
    let mdigest = desc["digest"].as_str().unwrap_or_else(|| fail("index.json has no manifest".into()));
    let manifest = read(blob_path(&layout, mdigest));
    let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap_or_else(|e| fail(format!("manifest: {e}")));
    let media_type = m["mediaType"].as_str().or(desc["mediaType"].as_str()).unwrap_or("application/vnd.oci.image.manifest.v1+json");
    let mut blobs = Vec::new();
    for d in std::iter::once(&m["config"]).chain(m["layers"].as_array().into_iter().flatten()) {
        let digest = d["digest"].as_str().unwrap_or_else(|| fail("descriptor without digest".into())).to_string();
        let size = d["size"].as_u64().unwrap_or(0);
        blobs.push(PushBlob { path: blob_path(&layout, &digest), digest, size });
    }
    let (uploaded, skipped) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (u2, s2) = (uploaded.clone(), skipped.clone());
    let opts = ClientOptions {
        insecure_registries: if insecure { vec![reference.registry.clone()] } else { vec![] },
        ca_certs: std::env::var_os("STRATA_CA").map(PathBuf::from).into_iter().collect(),
        credentials: match (std::env::var("STRATA_USER"), std::env::var("STRATA_PASS")) {
            (Ok(username), Ok(password)) => vec![(reference.registry.clone(), strata_registry::Credentials { username, password })],
            _ => vec![],
        },
        progress: Some(Arc::new(move |ev| {
            if let ProgressEvent::BlobDone { skipped, .. } = ev {
                if skipped {
                    s2.fetch_add(1, Ordering::Relaxed)
                } else {
                    u2.fetch_add(1, Ordering::Relaxed)
                };
            }
        })),
        ..Default::default()
    };
    let client = Client::new(opts).unwrap_or_else(|e| fail(format!("{e}")));
    let t = Instant::now();
    let image = PushImage { blobs, manifest, manifest_media_type: media_type.to_string() };
    let digest = client.push_image(&reference, &image).await.unwrap_or_else(|e| fail(format!("{e}")));
    println!(
        "{digest} push_seconds={:.3} blobs_uploaded={} blobs_skipped={}",
        t.elapsed().as_secs_f64(),
        uploaded.load(Ordering::Relaxed),
        skipped.load(Ordering::Relaxed)
    );
}
