//! Pulls: manifests (OCI, Docker v2 schema 2), platform choice in indexes and manifest lists, and
//! blobs verified against their digest (streamed to disk, renamed into place only when correct).

use crate::auth::Scope;
use crate::digest::{DigestHasher, sha256_digest};
use crate::limits::{MAX_CONFIG_BYTES, MAX_MANIFEST_BYTES, body_error, check_descriptor, read_body};
use crate::manifest::media;
use crate::transport::{Activity, Endpoint, connect_error, http_error, stall_guard};
use crate::{Client, Error, Manifest, Platform, ProgressEvent, PulledImage, Reference};
use futures_util::StreamExt;
use std::path::Path;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;

const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json";

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct Index {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Vec<crate::Descriptor>,
    #[serde(default)]
    layers: Option<serde_json::Value>,
}

/// Tries each endpoint in order (mirrors first); returns the first success or the last error.
async fn with_endpoints<T, F, Fut>(client: &Client, r: &Reference, mut f: F) -> Result<T, Error>
where
    F: FnMut(Arc<Endpoint>) -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let eps = client.pull_endpoints(&r.registry).await?;
    let n = eps.len();
    let mut last = None;
    for (i, ep) in eps.into_iter().enumerate() {
        match f(ep.clone()).await {
            Ok(v) => return Ok(v),
            // A mirror that lacks the image or fails is skipped; a bad digest is never retried elsewhere.
            Err(e) if i + 1 < n && !matches!(e, Error::DigestMismatch { .. } | Error::SizeMismatch { .. }) => {
                tracing::warn!(mirror = %ep.name, "mirror failed, trying the next endpoint: {e}");
                last = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| Error::Options("no endpoint".into())))
}

/// `GET` a manifest or index: exactly `size` bytes when a descriptor gave it, else at most
/// [`MAX_MANIFEST_BYTES`]; by digest, the bytes must hash to it.
pub(crate) async fn fetch_manifest(client: &Client, ep: &Endpoint, r: &Reference, reference: &str, size: Option<u64>) -> Result<(Vec<u8>, String), Error> {
    let what = format!("manifest {reference}");
    if let Some(n) = size {
        check_descriptor(n, MAX_MANIFEST_BYTES).map_err(|e| body_error(e, ep, &r.repository, &what))?;
    }
    let url = ep.url(&format!("{}/manifests/{}", r.repository, reference));
    let t = client.opts.stall_timeout;
    let resp = client
        .send(ep, &Scope::pull(&r.repository), "GET manifest", client.opts.retries, |h| {
            Ok(h.get(&url).header(reqwest::header::ACCEPT, MANIFEST_ACCEPT).timeout(t))
        })
        .await?;
    if !resp.status().is_success() {
        return Err(http_error(ep, &r.repository, &format!("GET manifest {reference}"), resp).await);
    }
    let ct = resp
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(';').next().unwrap_or(s).trim().to_string())
        .unwrap_or_default();
    let body = read_body(resp, size, MAX_MANIFEST_BYTES).await.map_err(|e| body_error(e, ep, &r.repository, &what))?;
    if reference.contains(':') {
        let actual = sha256_digest(&body);
        if actual != reference {
            return Err(Error::DigestMismatch { registry: ep.name.clone(), repository: r.repository.clone(), digest: reference.to_string(), actual });
        }
    }
    Ok((body, ct))
}

fn platform_matches(p: &Platform, want: &Platform) -> bool {
    p.os == want.os
        && p.architecture == want.architecture
        && match (&want.variant, &p.variant) {
            (Some(w), Some(v)) => w == v,
            (Some(w), None) => w == "v8" && want.architecture == "arm64",
            (None, _) => true,
        }
}

fn platform_string(p: &Platform) -> String {
    p.to_string()
}

pub(crate) async fn get_image(client: &Client, r: &Reference, platform: &Platform) -> Result<PulledImage, Error> {
    let img = with_endpoints(client, r, |ep| async move {
        let (raw, ct) = fetch_manifest(client, &ep, r, r.manifest_ref(), None).await?;
        let proto = |message: String| Error::Protocol {
            registry: ep.name.clone(),
            repository: r.repository.clone(),
            action: format!("GET manifest {}", r.manifest_ref()),
            message,
        };
        let idx: Index = serde_json::from_slice(&raw).map_err(|e| proto(format!("manifest is not JSON: {e}")))?;
        let mt = if ct.is_empty() || ct == "application/json" || ct == "text/plain" { idx.media_type.clone().unwrap_or_default() } else { ct };
        let is_index = mt == media::OCI_INDEX || mt == media::DOCKER_LIST || (mt.is_empty() && !idx.manifests.is_empty() && idx.layers.is_none());
        let (raw, mt) = if is_index {
            let chosen =
                idx.manifests.iter().find(|d| d.platform.as_ref().is_some_and(|p| platform_matches(p, platform))).ok_or_else(|| Error::NoMatchingPlatform {
                    registry: ep.name.clone(),
                    repository: r.repository.clone(),
                    wanted: platform_string(platform),
                    available: idx.manifests.iter().filter_map(|d| d.platform.as_ref()).map(platform_string).collect::<Vec<_>>().join(", "),
                })?;
            tracing::debug!(reference = %r, digest = %chosen.digest, "index: chose {}", platform_string(platform));
            let (raw2, ct2) = fetch_manifest(client, &ep, r, &chosen.digest, Some(chosen.size)).await?;
            let mt2 = if ct2.is_empty() || ct2 == "application/json" { chosen.media_type.clone() } else { ct2 };
            (raw2, mt2)
        } else {
            (raw, mt)
        };
        let manifest: Manifest = serde_json::from_slice(&raw).map_err(|e| proto(format!("not an image manifest ({mt}): {e}")))?;
        let mt = if mt.is_empty() { manifest.media_type.clone().unwrap_or_else(|| media::OCI_MANIFEST.into()) } else { mt };
        if mt != media::OCI_MANIFEST && mt != media::DOCKER_MANIFEST {
            return Err(proto(format!("unsupported manifest media type {mt:?} (OCI or Docker v2 schema 2 expected)")));
        }
        Ok(PulledImage { digest: sha256_digest(&raw), media_type: mt, raw, manifest })
    })
    .await?;
    let src = r.with_digest(&img.digest);
    client.add_mount_source(&img.manifest.config.digest, &src);
    for l in &img.manifest.layers {
        client.add_mount_source(&l.digest, &src);
    }
    Ok(img)
}

/// `GET` a blob; `timeout` bounds the whole transfer (small blobs only: large ones are watched for stalls instead).
async fn open_blob(
    client: &Client,
    ep: &Endpoint,
    r: &Reference,
    digest: &str,
    timeout: Option<std::time::Duration>,
    from: u64,
) -> Result<reqwest::Response, Error> {
    DigestHasher::for_digest(digest).map_err(|m| Error::Protocol {
        registry: ep.name.clone(),
        repository: r.repository.clone(),
        action: "GET blob".into(),
        message: m,
    })?;
    let url = ep.url(&format!("{}/blobs/{}", r.repository, digest));
    let resp = client
        .send(ep, &Scope::pull(&r.repository), "GET blob", client.opts.retries, |h| {
            let mut rb = h.get(&url);
            if from > 0 {
                rb = rb.header(reqwest::header::RANGE, format!("bytes={from}-"));
            }
            Ok(match timeout {
                Some(t) => rb.timeout(t),
                None => rb,
            })
        })
        .await?;
    if !resp.status().is_success() {
        return Err(http_error(ep, &r.repository, &format!("GET blob {digest}"), resp).await);
    }
    Ok(resp)
}

/// A small blob (a config) read into memory: exactly `size` bytes, at most [`MAX_CONFIG_BYTES`], verified.
pub(crate) async fn get_blob_bytes(client: &Client, r: &Reference, digest: &str, size: u64) -> Result<Vec<u8>, Error> {
    with_endpoints(client, r, |ep| async move {
        let what = format!("blob {digest}");
        check_descriptor(size, MAX_CONFIG_BYTES).map_err(|e| body_error(e, &ep, &r.repository, &what))?;
        let resp = open_blob(client, &ep, r, digest, Some(client.opts.stall_timeout * 4), 0).await?;
        let body = read_body(resp, Some(size), MAX_CONFIG_BYTES).await.map_err(|e| body_error(e, &ep, &r.repository, &what))?;
        let mut h = DigestHasher::for_digest(digest).map_err(Error::Options)?;
        h.update(&body);
        let actual = h.finish();
        if actual != digest {
            return Err(Error::DigestMismatch { registry: ep.name.clone(), repository: r.repository.clone(), digest: digest.to_string(), actual });
        }
        Ok(body)
    })
    .await
}

pub(crate) async fn get_blob_to_file(client: &Client, r: &Reference, digest: &str, size: u64, dest: &Path) -> Result<(), Error> {
    get_blob_to_file_tee(client, r, digest, size, dest, None).await
}

/// [`get_blob_to_file`] that also hands the bytes to `tee` as they arrive (a registry-to-registry copy).
pub(crate) async fn get_blob_to_file_tee(
    client: &Client,
    r: &Reference,
    digest: &str,
    size: u64,
    dest: &Path,
    tee: Option<&tokio::sync::Mutex<Tee>>,
) -> Result<(), Error> {
    with_endpoints(client, r, |ep| async move { download(client, &ep, r, digest, size, dest, tee).await }).await
}

/// What a [`Tee`] carries: the blob's bytes in order, or an error that must fail the receiver.
pub(crate) type TeeItem = Result<bytes::Bytes, std::io::Error>;

/// A second destination for a download's bytes (the body of a streamed upload), fed while the
/// file is written. The last chunk is held back until the whole blob is verified, so a receiver
/// never sees a complete body whose length or digest is wrong: it gets an error instead. Any
/// failure of the download (even one a retry recovers from) cuts the tee, since the bytes it
/// already sent may not be followed by the right ones; the file download goes on regardless.
#[derive(Debug)]
pub(crate) struct Tee {
    tx: Option<tokio::sync::mpsc::Sender<TeeItem>>,
    held: Option<bytes::Bytes>,
}

impl Tee {
    /// A tee into `tx`.
    pub(crate) fn new(tx: tokio::sync::mpsc::Sender<TeeItem>) -> Self {
        Self { tx: Some(tx), held: None }
    }

    /// Sends the chunk held so far and holds `chunk`; a receiver that is gone turns the tee off.
    async fn send(&mut self, chunk: bytes::Bytes) {
        let Some(tx) = &self.tx else { return };
        if let Some(prev) = self.held.replace(chunk)
            && tx.send(Ok(prev)).await.is_err()
        {
            self.tx = None;
            self.held = None;
        }
    }

    /// The download went wrong (`why`): the receiver gets an error instead of the rest.
    pub(crate) async fn cut(&mut self, why: &str) {
        self.held = None;
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Err(std::io::Error::other(why.to_string()))).await;
        }
    }

    /// The blob is verified: the held chunk goes out and the stream ends.
    async fn finish(&mut self) {
        if let (Some(tx), Some(last)) = (self.tx.take(), self.held.take()) {
            let _ = tx.send(Ok(last)).await;
        }
    }
}

/// Bytes received so far: the partial file and the hash of what is in it.
struct Partial {
    file: tokio::fs::File,
    hasher: DigestHasher,
    done: u64,
    /// The descriptor's size: no more is written, and no other length is accepted.
    size: u64,
}

/// Streams a blob into a private temporary file beside `dest`, renamed to `dest` only when its
/// length is the descriptor's and its bytes hash to `digest`; removed on any failure.
/// With a `tee`, every byte also goes there (see [`Tee`]).
async fn download(
    client: &Client,
    ep: &Endpoint,
    r: &Reference,
    digest: &str,
    size: u64,
    dest: &Path,
    tee: Option<&tokio::sync::Mutex<Tee>>,
) -> Result<(), Error> {
    let mut tee = match tee {
        Some(t) => Some(t.lock().await),
        None => None,
    };
    let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = dest.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "blob".into());
    let tmp = dir.join(format!(".{name}.partial-{}", std::process::id()));
    let io = |source: std::io::Error, p: &Path| Error::Io { path: p.to_path_buf(), source };
    // 0600: what an image holds is nobody else's to read.
    let file = tokio::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).await.map_err(|e| io(e, &tmp))?;
    let hasher = DigestHasher::for_digest(digest).map_err(Error::Options)?;
    let mut part = Partial { file, hasher, done: 0, size };
    let mut attempt = 0;
    let res = loop {
        let res = download_attempt(client, ep, r, digest, &mut part, &tmp, tee.as_deref_mut()).await;
        if let (Err(e), Some(t)) = (&res, tee.as_deref_mut()) {
            t.cut(&e.to_string()).await;
        }
        match res {
            Err(e) if e.is_transient() && attempt < client.opts.retries => {
                attempt += 1;
                tracing::warn!(reference = %r, %digest, attempt, from = part.done, "blob download failed, resuming: {e}");
                tokio::time::sleep(client.backoff(attempt)).await;
            }
            other => break other,
        }
    };
    let Partial { file, hasher, done, .. } = part;
    drop(file);
    let res = res.and_then(|()| if done == size { Ok(()) } else { Err(blob_size_mismatch(ep, r, digest, size, format!("{done} bytes"))) });
    let res = res.and_then(|()| {
        let actual = hasher.finish();
        if actual == digest {
            Ok(())
        } else {
            Err(Error::DigestMismatch { registry: ep.name.clone(), repository: r.repository.clone(), digest: digest.to_string(), actual })
        }
    });
    let res = match res {
        Ok(()) => tokio::fs::rename(&tmp, dest).await.map_err(|e| io(e, dest)),
        Err(e) => Err(e),
    };
    if let Err(e) = res {
        let _ = tokio::fs::remove_file(&tmp).await;
        if let Some(t) = tee.as_deref_mut() {
            t.cut(&e.to_string()).await;
        }
        return Err(e);
    }
    if let Some(t) = tee.as_deref_mut() {
        t.finish().await;
    }
    client.add_mount_source(digest, r);
    client.emit(ProgressEvent::BlobDone { digest: digest.to_string(), skipped: false });
    Ok(())
}

/// The error for a blob whose length is not its descriptor's `expected`.
fn blob_size_mismatch(ep: &Endpoint, r: &Reference, digest: &str, expected: u64, got: String) -> Error {
    Error::SizeMismatch { registry: ep.name.clone(), repository: r.repository.clone(), what: format!("blob {digest}"), expected, got }
}

/// One `GET`, from `part.done` on (a `Range` request after a failure; a registry that answers
/// 200 instead of 206 sends everything again and the partial file starts over).
async fn download_attempt(
    client: &Client,
    ep: &Endpoint,
    r: &Reference,
    digest: &str,
    part: &mut Partial,
    tmp: &Path,
    mut tee: Option<&mut Tee>,
) -> Result<(), Error> {
    use tokio::io::AsyncSeekExt;
    let io = |source: std::io::Error| Error::Io { path: tmp.to_path_buf(), source };
    let activity = Activity::new();
    let copy = async {
        // A write cancelled by the stall watchdog may have left the file out of step with the hash.
        if part.done > 0 && part.file.metadata().await.map_err(io)?.len() != part.done {
            part.file.set_len(0).await.map_err(io)?;
            part.file.seek(std::io::SeekFrom::Start(0)).await.map_err(io)?;
            part.hasher = DigestHasher::for_digest(digest).map_err(Error::Options)?;
            part.done = 0;
        }
        let resp = open_blob(client, ep, r, digest, None, part.done).await?;
        activity.touch();
        let resumed = part.done > 0
            && resp.status() == reqwest::StatusCode::PARTIAL_CONTENT
            && resp
                .headers()
                .get(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.starts_with(&format!("bytes {}-", part.done)));
        if part.done > 0 && !resumed {
            part.file.set_len(0).await.map_err(io)?;
            part.file.seek(std::io::SeekFrom::Start(0)).await.map_err(io)?;
            part.hasher = DigestHasher::for_digest(digest).map_err(Error::Options)?;
            part.done = 0;
        }
        let wrong_size = |got: String| blob_size_mismatch(ep, r, digest, part.size, got);
        // Refused before a byte is written: a length other than what is left of the descriptor's.
        if let Some(len) = resp.content_length().filter(|&len| len != part.size - part.done.min(part.size)) {
            let got = if part.done > 0 { format!("{len} bytes from byte {}", part.done) } else { format!("a Content-Length of {len} bytes") };
            return Err(wrong_size(got));
        }
        if part.done == 0 {
            client.emit(ProgressEvent::BlobStarted { digest: digest.to_string(), total: Some(part.size), push: false });
        }
        let mut last_report = part.done;
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| connect_error(ep, &format!("{}: GET blob {digest}", r.repository), &e))?;
            activity.touch();
            if part.done + chunk.len() as u64 > part.size {
                return Err(wrong_size(format!("more than {} bytes", part.size)));
            }
            part.file.write_all(&chunk).await.map_err(io)?;
            part.hasher.update(&chunk);
            part.done += chunk.len() as u64;
            if let Some(t) = tee.as_deref_mut() {
                t.send(chunk).await;
            }
            if part.done - last_report >= 1 << 20 {
                last_report = part.done;
                client.emit(ProgressEvent::BlobProgress { digest: digest.to_string(), done: part.done });
            }
        }
        part.file.flush().await.map_err(io)?;
        Ok(())
    };
    stall_guard(&activity, client.opts.stall_timeout, copy, || Error::Connect {
        registry: ep.name.clone(),
        action: format!("{}: GET blob {digest}", r.repository),
        message: format!("no data for {:?}", client.opts.stall_timeout),
    })
    .await
}
