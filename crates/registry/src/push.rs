//! Pushes: `HEAD` first, cross-repository mounts, monolithic or chunked (resumable) uploads,
//! bounded parallelism, retries per blob, and the manifest only once every blob is confirmed.

use crate::auth::Scope;
use crate::client::UploadMode;
use crate::digest::sha256_digest;
use crate::transport::{Activity, Endpoint, http_error, stall_guard};
use crate::{Client, Error, ProgressEvent, PushBlob, PushImage, Reference};
use futures_util::TryStreamExt;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, LOCATION, RANGE};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

pub(crate) async fn blob_exists(client: &Client, ep: &Endpoint, repository: &str, digest: &str) -> Result<bool, Error> {
    let url = ep.url(&format!("{repository}/blobs/{digest}"));
    let t = client.opts.stall_timeout;
    let resp = client.send(ep, &Scope::push(repository), "HEAD blob", client.opts.retries, |h| Ok(h.head(&url).timeout(t))).await?;
    match resp.status() {
        s if s.is_success() => Ok(true),
        StatusCode::NOT_FOUND => Ok(false),
        _ => Err(http_error(ep, repository, &format!("HEAD blob {digest}"), resp).await),
    }
}

pub(crate) async fn push_image(client: &Client, r: &Reference, image: &PushImage) -> Result<String, Error> {
    let ep = client.endpoint(&r.registry).await?;
    #[cfg(feature = "ecr")]
    if ep.is_ecr && client.opts.ecr.create_repository {
        crate::ecr::ensure_repository(client, &ep.name, &r.repository).await?;
    }
    let manifest_digest = sha256_digest(&image.manifest);
    if let Some(d) = &r.digest
        && d != &manifest_digest
    {
        return Err(Error::Protocol {
            registry: ep.name.clone(),
            repository: r.repository.clone(),
            action: "push".into(),
            message: format!("reference pins {d} but the manifest's digest is {manifest_digest}"),
        });
    }
    for b in &image.blobs {
        crate::digest::DigestHasher::for_digest(&b.digest).map_err(|m| Error::Protocol {
            registry: ep.name.clone(),
            repository: r.repository.clone(),
            action: format!("push blob {}", b.path.display()),
            message: m,
        })?;
    }
    let limit = client.opts.max_concurrent_uploads.max(1);
    let ep2 = ep.clone();
    // The same blob twice (an empty layer repeated) is uploaded once.
    let mut unique: Vec<&PushBlob> = Vec::with_capacity(image.blobs.len());
    for b in &image.blobs {
        if !unique.iter().any(|u| u.digest == b.digest) {
            unique.push(b);
        }
    }
    futures_util::stream::iter(unique.into_iter().map(Ok::<_, Error>))
        .try_for_each_concurrent(limit, |b| {
            let ep = ep2.clone();
            async move { push_blob(client, &ep, &r.repository, b).await }
        })
        .await?;

    // Every blob is confirmed present (HEAD 200, mount 201 or upload 201): now the manifest.
    push_manifest(client, &ep, r, image, &manifest_digest).await?;
    for b in &image.blobs {
        client.add_mount_source(&b.digest, r);
    }
    Ok(manifest_digest)
}

/// `PUT` the manifest under `r`'s digest or tag; the blobs must already be there.
pub(crate) async fn push_manifest(client: &Client, ep: &Endpoint, r: &Reference, image: &PushImage, manifest_digest: &str) -> Result<(), Error> {
    let reference = r.digest.clone().or_else(|| r.tag.clone()).unwrap_or_else(|| "latest".into());
    // ECR refuses to PUT an existing tag of an immutable repository even with the same digest:
    // a rerun of a pipeline checks first and leaves a tag that already names this image alone.
    if ep.is_ecr && r.digest.is_none() && tag_digest(client, ep, &r.repository, &reference).await?.as_deref() == Some(manifest_digest) {
        already_there(client, r, manifest_digest);
        return Ok(());
    }
    let url = ep.url(&format!("{}/manifests/{}", r.repository, reference));
    let t = client.opts.stall_timeout;
    let body = bytes::Bytes::from(image.manifest.clone());
    let resp = client
        .send(ep, &Scope::push(&r.repository), "PUT manifest", client.opts.retries, |h| {
            Ok(h.put(&url).header(CONTENT_TYPE, &image.manifest_media_type).body(body.clone()).timeout(t))
        })
        .await?;
    if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
        let err = http_error(ep, &r.repository, &format!("PUT manifest {reference}"), resp).await;
        let refused_tag = matches!(&err, Error::Http { status: 400, detail, .. } if detail.contains("TAG_INVALID") || detail.contains("ImageTagAlreadyExists") || detail.contains("immutable"));
        if refused_tag && r.digest.is_none() {
            return match tag_digest(client, ep, &r.repository, &reference).await? {
                Some(d) if d == manifest_digest => {
                    already_there(client, r, manifest_digest);
                    Ok(())
                }
                Some(existing) => Err(Error::ImmutableTag {
                    registry: ep.name.clone(),
                    repository: r.repository.clone(),
                    tag: reference,
                    existing,
                    pushed: manifest_digest.to_string(),
                }),
                None => Err(err),
            };
        }
        return Err(err);
    }
    if let Some(d) = resp.headers().get("docker-content-digest").and_then(|v| v.to_str().ok())
        && d != manifest_digest
    {
        return Err(Error::Protocol {
            registry: ep.name.clone(),
            repository: r.repository.clone(),
            action: format!("PUT manifest {reference}"),
            message: format!("registry stored digest {d}, expected {manifest_digest}"),
        });
    }
    tracing::info!(reference = %r, digest = %manifest_digest, "pushed manifest");
    client.emit(ProgressEvent::ManifestPushed { reference: r.to_string(), digest: manifest_digest.to_string() });
    Ok(())
}

/// Reports a tag that already names the manifest as pushed (nothing was PUT).
fn already_there(client: &Client, r: &Reference, manifest_digest: &str) {
    tracing::info!(reference = %r, digest = %manifest_digest, "the tag already names this manifest: not pushed again");
    client.emit(ProgressEvent::ManifestPushed { reference: r.to_string(), digest: manifest_digest.to_string() });
}

/// The manifest digest `tag` names in `repository` (None when the tag does not exist).
pub(crate) async fn tag_digest(client: &Client, ep: &Endpoint, repository: &str, tag: &str) -> Result<Option<String>, Error> {
    let url = ep.url(&format!("{repository}/manifests/{tag}"));
    let t = client.opts.stall_timeout;
    let accept =
        [crate::manifest::media::OCI_MANIFEST, crate::manifest::media::DOCKER_MANIFEST, crate::manifest::media::OCI_INDEX, crate::manifest::media::DOCKER_LIST]
            .join(", ");
    let resp = client
        .send(ep, &Scope::push(repository), "HEAD manifest", client.opts.retries, |h| {
            Ok(h.head(&url).header(reqwest::header::ACCEPT, accept.as_str()).timeout(t))
        })
        .await?;
    if resp.status() == StatusCode::NOT_FOUND {
        return Ok(None);
    }
    if !resp.status().is_success() {
        return Err(http_error(ep, repository, &format!("HEAD manifest {tag}"), resp).await);
    }
    Ok(resp.headers().get("docker-content-digest").and_then(|v| v.to_str().ok()).map(str::to_string))
}

/// One upload session: where to send the next bytes, and how many the registry holds.
#[derive(Debug, Clone)]
struct Session {
    location: String,
    offset: u64,
}

async fn push_blob(client: &Client, ep: &Endpoint, repository: &str, blob: &PushBlob) -> Result<(), Error> {
    let digest = blob.digest.as_str();
    client.emit(ProgressEvent::BlobStarted { digest: digest.to_string(), total: Some(blob.size), push: true });
    if blob_exists(client, ep, repository, digest).await? {
        tracing::debug!(%repository, %digest, "blob already present");
        client.emit(ProgressEvent::BlobDone { digest: digest.to_string(), skipped: true });
        return Ok(());
    }
    let mut session: Option<Session> = None;
    let mut tried_mount = false;
    if !blob.path.exists() {
        // A blob known only by where it is (a base layer never unpacked, a cached layer):
        // mounted from there when the registry allows it, else fetched, then uploaded.
        match start_upload(client, ep, repository, digest, true).await? {
            None => {
                client.emit(ProgressEvent::BlobDone { digest: digest.to_string(), skipped: true });
                return Ok(());
            }
            Some(s) => session = Some(s),
        }
        tried_mount = true;
        if client.opts.upload_mode == UploadMode::Chunked {
            client.get_known_blob(digest, blob.size, &blob.path).await?;
        } else if let Some(s) = session.take() {
            // Downloaded and uploaded in one pass; the file is written (and verified) as well.
            match copy_streamed(client, ep, repository, blob, &s).await {
                Ok(()) => {
                    client.emit(ProgressEvent::BlobDone { digest: digest.to_string(), skipped: false });
                    return Ok(());
                }
                // The download (with its own retries) failed or the bytes are wrong: as without streaming.
                Err(Streamed::Download(e)) => return Err(e),
                // The blob is here and verified; the upload starts over from the file below.
                Err(Streamed::Upload(e)) => {
                    tracing::warn!(%repository, %digest, "streamed upload failed, uploading again from the downloaded file: {e}");
                }
            }
        }
    }
    let meta = std::fs::metadata(&blob.path).map_err(|source| Error::Io { path: blob.path.clone(), source })?;
    if meta.len() != blob.size {
        return Err(Error::Protocol {
            registry: ep.name.clone(),
            repository: repository.to_string(),
            action: format!("push blob {digest}"),
            message: format!("{} has {} bytes, the descriptor says {}", blob.path.display(), meta.len(), blob.size),
        });
    }
    let chunked = match client.opts.upload_mode {
        // ECR answers chunked uploads badly (201 to the first PATCH, later chunks dropped).
        _ if ep.is_ecr => false,
        UploadMode::Monolithic => false,
        UploadMode::Chunked => true,
        UploadMode::Auto => blob.size > client.opts.chunk_size.max(1),
    };
    let mut attempt = 0u32;
    let mut restarted = false;
    loop {
        let res = async {
            if session.is_none() {
                match start_upload(client, ep, repository, digest, !tried_mount).await? {
                    None => return Ok(true),
                    Some(s) => session = Some(s),
                }
                tried_mount = true;
            }
            let Some(s) = session.as_mut() else { return Ok(false) };
            if chunked {
                upload_chunks(client, ep, repository, blob, s).await?;
                finish_upload(client, ep, repository, blob, s, false).await
            } else {
                finish_upload(client, ep, repository, blob, s, true).await
            }
            .map(|()| false)
        }
        .await;
        match res {
            Ok(mounted) => {
                client.emit(ProgressEvent::BlobDone { digest: digest.to_string(), skipped: mounted });
                return Ok(());
            }
            Err(e) if e.is_transient() && attempt < client.opts.retries => {
                attempt += 1;
                let delay = client.backoff(attempt);
                tracing::warn!(%repository, %digest, attempt, "blob upload failed, retrying in {delay:?}: {e}");
                tokio::time::sleep(delay).await;
                session = match (chunked, session.take()) {
                    (true, Some(s)) => resume_point(client, ep, repository, &s).await,
                    _ => None,
                };
            }
            // A resumed or long-lived session the registry no longer accepts (expired, or its
            // offset disagrees): start this blob over once.
            Err(Error::Http { status: 400 | 404 | 416, .. }) if session.is_some() && !restarted => {
                tracing::warn!(%repository, %digest, "upload session rejected: starting the blob again");
                restarted = true;
                session = None;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Chunks of a streamed copy in flight between the download and the upload (the memory bound:
/// a few network reads, each at most hyper's read buffer).
const STREAM_CHANNEL_CHUNKS: usize = 8;

/// Which half of a streamed copy failed.
enum Streamed {
    /// The download: nothing was kept, the error is final.
    Download(Error),
    /// Only the upload: the blob file is in place and verified.
    Upload(Error),
}

/// A blob copied from the registry it is known to be in straight into upload session `s`:
/// one `GET` whose bytes go to the blob file (hashed and renamed into place only when verified,
/// as [`Client::get_known_blob`] does) and at the same time form the body of a monolithic
/// `PUT ?digest=`. A download that fails or does not verify fails the upload body too, so the
/// registry never receives the whole wrong blob (and it checks the digest itself besides).
async fn copy_streamed(client: &Client, ep: &Endpoint, repository: &str, blob: &PushBlob, s: &Session) -> Result<(), Streamed> {
    tracing::debug!(%repository, digest = %blob.digest, "streaming blob: uploading it while it downloads");
    let (tx, rx) = tokio::sync::mpsc::channel(STREAM_CHANNEL_CHUNKS);
    let tee = tokio::sync::Mutex::new(crate::pull::Tee::new(tx));
    let down = async {
        let res = client.get_known_blob_tee(&blob.digest, blob.size, &blob.path, Some(&tee)).await;
        // A download that failed before reaching the tee (no source, no endpoint) fails the body too.
        if let Err(e) = &res {
            tee.lock().await.cut(&e.to_string()).await;
        }
        res
    };
    let up = put_streamed(client, ep, repository, blob, s, rx);
    let (down, up) = tokio::join!(down, up);
    down.map_err(Streamed::Download)?;
    up.map_err(Streamed::Upload)?;
    tracing::debug!(%repository, digest = %blob.digest, "copied blob (streamed)");
    Ok(())
}

/// The closing `PUT ?digest=` of session `s` with the bytes from `rx` as its body (`blob.size` of them).
async fn put_streamed(
    client: &Client,
    ep: &Endpoint,
    repository: &str,
    blob: &PushBlob,
    s: &Session,
    rx: tokio::sync::mpsc::Receiver<crate::pull::TeeItem>,
) -> Result<(), Error> {
    let url = put_url(ep, repository, s, &blob.digest)?;
    let activity = Activity::new();
    let a = activity.clone();
    let stream = futures_util::stream::unfold(rx, move |mut rx| {
        let a = a.clone();
        async move {
            let item = rx.recv().await?;
            a.touch();
            Some((item, rx))
        }
    });
    // A stream is sent once: a second attempt (a 401 answered by re-authenticating) fails, and
    // the caller uploads from the file instead.
    let body = std::sync::Mutex::new(Some(reqwest::Body::wrap_stream(stream)));
    let fut = async {
        let resp = client
            .send(ep, &Scope::push(repository), "PUT blob (streamed)", 0, |h| {
                let body = body.lock().ok().and_then(|mut b| b.take()).ok_or_else(|| Error::Protocol {
                    registry: ep.name.clone(),
                    repository: repository.to_string(),
                    action: format!("PUT blob {}", blob.digest),
                    message: "a streamed body cannot be sent twice".into(),
                })?;
                Ok(h.put(&url).header(CONTENT_TYPE, "application/octet-stream").header(CONTENT_LENGTH, blob.size.to_string()).body(body))
            })
            .await?;
        if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
            return Err(http_error(ep, repository, &format!("PUT blob {}", blob.digest), resp).await);
        }
        Ok(())
    };
    stall_guard(&activity, client.opts.stall_timeout, fut, || stalled(client, ep, &format!("{repository}: PUT blob {}", blob.digest))).await
}

/// The session's `Location` with `?digest=` added.
fn put_url(ep: &Endpoint, repository: &str, s: &Session, digest: &str) -> Result<String, Error> {
    let mut url = url::Url::parse(&s.location).map_err(|e| Error::Protocol {
        registry: ep.name.clone(),
        repository: repository.to_string(),
        action: "blob upload".into(),
        message: format!("bad upload Location: {e}"),
    })?;
    url.query_pairs_mut().append_pair("digest", digest);
    Ok(url.to_string())
}

/// `POST` a new upload, with a mount from a known source repository first if there is one.
/// `None` means the mount succeeded (201): nothing to upload.
async fn start_upload(client: &Client, ep: &Endpoint, repository: &str, digest: &str, try_mount: bool) -> Result<Option<Session>, Error> {
    let source = client
        .blob_sources
        .lock()
        .ok()
        .and_then(|m| m.get(digest).cloned())
        .filter(|(reg, repo)| reg == &ep.name && repo != repository && try_mount)
        .map(|(_, repo)| repo);
    let mut scope = Scope::push(repository);
    let url = match &source {
        Some(from) => {
            scope.mount_from = Some(from.clone());
            let mut u = url::Url::parse(&ep.url(&format!("{repository}/blobs/uploads/"))).map_err(|e| Error::Options(e.to_string()))?;
            u.query_pairs_mut().append_pair("mount", digest).append_pair("from", from);
            u.to_string()
        }
        None => ep.url(&format!("{repository}/blobs/uploads/")),
    };
    let t = client.opts.stall_timeout;
    let resp = client.send(ep, &scope, "POST blob upload", client.opts.retries, |h| Ok(h.post(&url).header(CONTENT_LENGTH, "0").timeout(t))).await?;
    match resp.status() {
        StatusCode::CREATED if source.is_some() => {
            tracing::debug!(%repository, %digest, from = ?source, "mounted blob");
            Ok(None)
        }
        StatusCode::ACCEPTED => {
            if let Some(from) = &source {
                tracing::debug!(%repository, %digest, %from, "mount refused (202): uploading");
            }
            let location = location(ep, repository, &resp)?;
            Ok(Some(Session { location, offset: 0 }))
        }
        _ => Err(http_error(ep, repository, "POST blob upload", resp).await),
    }
}

fn location(ep: &Endpoint, repository: &str, resp: &reqwest::Response) -> Result<String, Error> {
    let loc = resp.headers().get(LOCATION).and_then(|v| v.to_str().ok()).ok_or_else(|| Error::Protocol {
        registry: ep.name.clone(),
        repository: repository.to_string(),
        action: "blob upload".into(),
        message: format!("HTTP {} without a Location header", resp.status().as_u16()),
    })?;
    Ok(ep.resolve_location(loc))
}

/// After a failure: ask the registry how much of the upload it holds (`GET` on the session).
/// `None` when the session is gone: start again.
async fn resume_point(client: &Client, ep: &Endpoint, repository: &str, s: &Session) -> Option<Session> {
    let t = client.opts.stall_timeout;
    let resp = client.send(ep, &Scope::push(repository), "GET upload status", client.opts.retries, |h| Ok(h.get(&s.location).timeout(t))).await.ok()?;
    if resp.status() != StatusCode::NO_CONTENT && !resp.status().is_success() {
        tracing::debug!(status = resp.status().as_u16(), "upload session lost: restarting the blob");
        return None;
    }
    // `Range: 0-<last byte>`; an empty upload reports "0-0" (or "0--1").
    let end = resp
        .headers()
        .get(RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|r| r.trim_start_matches("bytes=").split_once('-').map(|(_, e)| e.to_string()))
        .and_then(|e| e.parse::<i64>().ok());
    let offset = match end {
        Some(e) if e > 0 => e as u64 + 1,
        _ => 0,
    };
    let location = location(ep, repository, &resp).unwrap_or_else(|_| s.location.clone());
    tracing::info!(%repository, offset, "resuming upload");
    Some(Session { location, offset })
}

/// A streaming body of `len` bytes of `path` from `offset`, reporting progress and activity.
fn file_body(client: &Client, path: &Path, digest: &str, offset: u64, len: u64, activity: &Activity) -> Result<reqwest::Body, Error> {
    let io = |source| Error::Io { path: path.to_path_buf(), source };
    let mut f = std::fs::File::open(path).map_err(io)?;
    f.seek(SeekFrom::Start(offset)).map_err(io)?;
    let progress = client.opts.progress.clone();
    let digest = digest.to_string();
    let activity = activity.clone();
    let state = (f.take(len), offset, offset);
    let stream = futures_util::stream::try_unfold(state, move |(mut f, pos, last)| {
        let progress = progress.clone();
        let digest = digest.clone();
        let activity = activity.clone();
        async move {
            // Blocking reads of 256 KiB from a local file, done off the async threads.
            let (f2, buf) = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; 256 << 10];
                let n = read_full(&mut f, &mut buf)?;
                buf.truncate(n);
                Ok::<_, std::io::Error>((f, buf))
            })
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))??;
            if buf.is_empty() {
                return Ok::<_, std::io::Error>(None);
            }
            activity.touch();
            let pos2 = pos + buf.len() as u64;
            let mut last2 = last;
            if let Some(p) = &progress
                && pos2 - last >= 1 << 20
            {
                last2 = pos2;
                p(ProgressEvent::BlobProgress { digest, done: pos2 });
            }
            Ok(Some((bytes::Bytes::from(buf), (f2, pos2, last2))))
        }
    });
    Ok(reqwest::Body::wrap_stream(stream))
}

fn read_full(f: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// `PATCH` chunks from `s.offset` to the end, following each new `Location`.
async fn upload_chunks(client: &Client, ep: &Endpoint, repository: &str, blob: &PushBlob, s: &mut Session) -> Result<(), Error> {
    let chunk = client.opts.chunk_size.max(1);
    while s.offset < blob.size {
        let len = chunk.min(blob.size - s.offset);
        let activity = Activity::new();
        let (start, end) = (s.offset, s.offset + len - 1);
        let url = s.location.clone();
        let fut = async {
            // No retries inside: a half-sent chunk leaves the session in an unknown state, so the
            // blob-level loop asks the registry where it stands and resumes from there.
            let resp = client
                .send(ep, &Scope::push(repository), "PATCH blob chunk", 0, |h| {
                    Ok(h.patch(&url)
                        .header(CONTENT_TYPE, "application/octet-stream")
                        .header(CONTENT_RANGE, format!("{start}-{end}"))
                        .header(CONTENT_LENGTH, len.to_string())
                        .body(file_body(client, &blob.path, &blob.digest, start, len, &activity)?))
                })
                .await?;
            if resp.status() != StatusCode::ACCEPTED && resp.status() != StatusCode::NO_CONTENT {
                return Err(http_error(ep, repository, &format!("PATCH blob {} bytes {start}-{end}", blob.digest), resp).await);
            }
            location(ep, repository, &resp)
        };
        let next = stall_guard(&activity, client.opts.stall_timeout, fut, || stalled(client, ep, &format!("{repository}: PATCH blob {}", blob.digest))).await?;
        s.location = next;
        s.offset = end + 1;
    }
    Ok(())
}

fn stalled(client: &Client, ep: &Endpoint, action: &str) -> Error {
    Error::Connect { registry: ep.name.clone(), action: action.to_string(), message: format!("no progress for {:?}", client.opts.stall_timeout) }
}

/// The closing `PUT ...?digest=`: with the whole blob as its body (monolithic) or empty.
async fn finish_upload(client: &Client, ep: &Endpoint, repository: &str, blob: &PushBlob, s: &Session, with_body: bool) -> Result<(), Error> {
    let url = put_url(ep, repository, s, &blob.digest)?;
    let activity = Activity::new();
    let fut = async {
        let resp = client
            .send(ep, &Scope::push(repository), "PUT blob", 0, |h| {
                let rb = h.put(&url).header(CONTENT_TYPE, "application/octet-stream");
                Ok(if with_body {
                    rb.header(CONTENT_LENGTH, blob.size.to_string()).body(file_body(client, &blob.path, &blob.digest, 0, blob.size, &activity)?)
                } else {
                    rb.header(CONTENT_LENGTH, "0")
                })
            })
            .await?;
        if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
            return Err(http_error(ep, repository, &format!("PUT blob {}", blob.digest), resp).await);
        }
        Ok(())
    };
    stall_guard(&activity, client.opts.stall_timeout, fut, || stalled(client, ep, &format!("{repository}: PUT blob {}", blob.digest))).await?;
    tracing::debug!(%repository, digest = %blob.digest, "uploaded blob");
    Ok(())
}
