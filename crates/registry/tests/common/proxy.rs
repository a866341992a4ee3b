//! A fault-injecting HTTP/1.1 proxy for tests: sits between the client and a real registry,
//! forwards requests byte for byte, records every request, and on plan answers 503, resets the
//! connection part-way through an upload or a download, stalls, or slows uploads down.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What to break, consumed in order as requests arrive.
#[derive(Debug, Default)]
pub struct FaultPlan {
    /// Answer this many of the next requests with `503` and `Retry-After: retry_after` seconds.
    pub status_503: usize,
    /// The `Retry-After` seconds sent with each 503.
    pub retry_after: u64,
    /// Answer this many of the next requests with `429` (after the 503s).
    pub status_429: usize,
    /// For each of the next uploads (requests with a body), reset after this many body bytes.
    pub reset_uploads: VecDeque<u64>,
    /// Stall this many of the next uploads: read nothing more, answer nothing, for a minute.
    pub stall_uploads: usize,
    /// For each of the next blob downloads, reset after this many response body bytes.
    pub reset_downloads: VecDeque<u64>,
    /// Let this many uploads through untouched before any upload fault applies.
    pub pass_uploads: usize,
    /// Wait this long before forwarding each upload.
    pub upload_delay: Duration,
    /// Tags of an immutable ECR repository: a manifest PUT to one of them is answered as ECR
    /// answers it (400 TAG_INVALID), whatever its digest.
    pub immutable_tags: Vec<String>,
}

/// One request seen by the proxy, with the status the client got (0 when faulted).
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// The Content-Range request header, if any.
    pub range: Option<String>,
    /// The Range request header, if any.
    pub get_range: Option<String>,
    pub path: String,
    pub query: String,
    pub status: u16,
    pub fault: Option<&'static str>,
}

#[derive(Debug, Clone)]
pub struct Proxy {
    pub addr: String,
    pub plan: Arc<Mutex<FaultPlan>>,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    cursor: Arc<Mutex<usize>>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let proxy = Proxy { addr, plan: Arc::default(), seen: Arc::default(), cursor: Arc::default() };
        let p = proxy.clone();
        let upstream = upstream.to_string();
        tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else { continue };
                let (p, up) = (p.clone(), upstream.clone());
                tokio::spawn(async move {
                    let _ = p.serve(conn, &up).await;
                });
            }
        });
        proxy
    }

    /// Requests seen since the last `take`.
    pub fn take(&self) -> Vec<Seen> {
        let seen = self.seen.lock().unwrap();
        let mut c = self.cursor.lock().unwrap();
        let out = seen[*c..].to_vec();
        *c = seen.len();
        out
    }

    /// Requests seen since the last `take`, without moving the mark.
    pub fn snapshot(&self) -> Vec<Seen> {
        let seen = self.seen.lock().unwrap();
        seen[*self.cursor.lock().unwrap()..].to_vec()
    }

    async fn serve(&self, client: TcpStream, upstream: &str) -> std::io::Result<()> {
        let (cr, mut cw) = client.into_split();
        let mut cr = BufReader::new(cr);
        let mut up: Option<(BufReader<tokio::net::tcp::OwnedReadHalf>, tokio::net::tcp::OwnedWriteHalf)> = None;
        loop {
            let Some(head) = read_head(&mut cr).await? else { return Ok(()) };
            let first = head.lines().next().unwrap_or("").to_string();
            let mut parts = first.split_whitespace();
            let method = parts.next().unwrap_or("").to_string();
            let target = parts.next().unwrap_or("").to_string();
            let (path, query) = target.split_once('?').map_or((target.clone(), String::new()), |(a, b)| (a.into(), b.into()));
            let body_len = header(&head, "content-length").and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            let chunked = header(&head, "transfer-encoding").is_some_and(|v| v.contains("chunked"));
            let is_upload = body_len > 0 || chunked;
            let is_blob_get = method == "GET" && path.contains("/blobs/sha256:");
            let idx = {
                let mut s = self.seen.lock().unwrap();
                s.push(Seen {
                    range: header(&head, "content-range").map(str::to_string),
                    get_range: header(&head, "range").map(str::to_string),
                    method: method.clone(),
                    path: path.clone(),
                    query: query.clone(),
                    status: 0,
                    fault: None,
                });
                s.len() - 1
            };
            let (fault_status, reset_up, stall, reset_down, delay, retry_after) = {
                let mut plan = self.plan.lock().unwrap();
                let passed = is_upload && plan.pass_uploads > 0;
                if passed {
                    plan.pass_uploads -= 1;
                }
                let is_upload_fault = is_upload && !passed;
                let fstatus = if plan.status_503 > 0 {
                    plan.status_503 -= 1;
                    Some(503)
                } else if plan.status_429 > 0 {
                    plan.status_429 -= 1;
                    Some(429)
                } else {
                    None
                };
                let f503 = fstatus.is_some();
                let reset_up = if !f503 && is_upload_fault { plan.reset_uploads.pop_front() } else { None };
                let stall = !f503 && reset_up.is_none() && is_upload_fault && plan.stall_uploads > 0;
                if stall {
                    plan.stall_uploads -= 1;
                }
                let reset_down = if !f503 && is_blob_get { plan.reset_downloads.pop_front() } else { None };
                (fstatus, reset_up, stall, reset_down, if is_upload { plan.upload_delay } else { Duration::ZERO }, plan.retry_after)
            };
            let mark = |fault: &'static str, status: u16| {
                let mut s = self.seen.lock().unwrap();
                s[idx].fault = Some(fault);
                s[idx].status = status;
            };
            let immutable = method == "PUT"
                && path.contains("/manifests/")
                && self.plan.lock().unwrap().immutable_tags.iter().any(|t| path.ends_with(&format!("/manifests/{t}")));
            if immutable {
                copy_body(&mut cr, &mut tokio::io::sink(), body_len, chunked, None).await?;
                let tag = path.rsplit('/').next().unwrap_or("");
                let body = format!(
                    "{{\"errors\":[{{\"code\":\"TAG_INVALID\",\"message\":\"The image tag '{tag}' already exists in the repository and cannot be overwritten because the repository is immutable.\"}}]}}"
                );
                let resp =
                    format!("HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                cw.write_all(resp.as_bytes()).await?;
                mark("immutable-tag", 400);
                return Ok(());
            }
            if let Some(code) = fault_status {
                copy_body(&mut cr, &mut tokio::io::sink(), body_len, chunked, None).await?;
                let reason = if code == 503 { "Service Unavailable" } else { "Too Many Requests" };
                let resp = format!(
                    "HTTP/1.1 {code} {reason}\r\nRetry-After: {retry_after}\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
                );
                cw.write_all(resp.as_bytes()).await?;
                mark(if code == 503 { "503" } else { "429" }, code);
                return Ok(());
            }
            if stall {
                mark("stall", 0);
                tokio::time::sleep(Duration::from_secs(60)).await;
                return Ok(());
            }
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if up.is_none() {
                let s = TcpStream::connect(upstream).await?;
                let (r, w) = s.into_split();
                up = Some((BufReader::new(r), w));
            }
            let Some((ur, uw)) = up.as_mut() else { return Ok(()) };
            uw.write_all(head.as_bytes()).await?;
            if let Some(n) = reset_up {
                copy_body(&mut cr, uw, body_len.min(n), false, None).await?;
                mark("reset-upload", 0);
                return reset(cw, cr).await;
            }
            copy_body(&mut cr, uw, body_len, chunked, None).await?;
            uw.flush().await?;
            let Some(rhead) = read_head(ur).await? else { return Ok(()) };
            let status: u16 = rhead.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
            let rlen = header(&rhead, "content-length").and_then(|v| v.parse::<u64>().ok());
            let rchunked = header(&rhead, "transfer-encoding").is_some_and(|v| v.contains("chunked"));
            cw.write_all(rhead.as_bytes()).await?;
            let no_body = method == "HEAD" || status == 204 || status == 304 || (100..200).contains(&status);
            if let (Some(n), false) = (reset_down, no_body) {
                copy_body(ur, &mut cw, rlen.unwrap_or(0).min(n), false, None).await?;
                cw.flush().await?;
                // Let the client read what was sent before the reset discards what is in flight.
                tokio::time::sleep(Duration::from_millis(100)).await;
                mark("reset-download", 0);
                return reset(cw, cr).await;
            }
            if !no_body {
                match rlen {
                    Some(n) => copy_body(ur, &mut cw, n, false, None).await?,
                    None if rchunked => copy_body(ur, &mut cw, 0, true, None).await?,
                    None => {
                        tokio::io::copy(ur, &mut cw).await?;
                    }
                }
            }
            cw.flush().await?;
            self.seen.lock().unwrap()[idx].status = status;
        }
    }
}

/// Closes the client connection with a TCP reset (SO_LINGER 0).
async fn reset(cw: tokio::net::tcp::OwnedWriteHalf, cr: BufReader<tokio::net::tcp::OwnedReadHalf>) -> std::io::Result<()> {
    let stream = cr.into_inner().reunite(cw).map_err(|e| std::io::Error::other(e.to_string()))?;
    stream.set_zero_linger()?;
    drop(stream);
    Ok(())
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

async fn read_head<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> std::io::Result<Option<String>> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        head.push_str(&line);
        if line == "\r\n" || line == "\n" {
            return Ok(Some(head));
        }
    }
}

/// Copies `len` bytes, or a whole chunked body (`chunked`), from `r` to `w`.
async fn copy_body<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    r: &mut BufReader<R>,
    w: &mut W,
    len: u64,
    chunked: bool,
    _limit: Option<u64>,
) -> std::io::Result<()> {
    if !chunked {
        let mut take = r.take(len);
        tokio::io::copy(&mut take, w).await?;
        return Ok(());
    }
    loop {
        let mut line = String::new();
        r.read_line(&mut line).await?;
        w.write_all(line.as_bytes()).await?;
        let size = u64::from_str_radix(line.trim().split(';').next().unwrap_or("0"), 16).unwrap_or(0);
        if size == 0 {
            // Trailers end with an empty line.
            loop {
                let mut t = String::new();
                r.read_line(&mut t).await?;
                w.write_all(t.as_bytes()).await?;
                if t == "\r\n" || t.is_empty() {
                    return Ok(());
                }
            }
        }
        let mut take = (&mut *r).take(size + 2);
        tokio::io::copy(&mut take, w).await?;
    }
}
