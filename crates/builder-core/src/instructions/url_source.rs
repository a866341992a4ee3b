//! ADD's own sources: remote files over HTTP(S), as BuildKit fetches them. The file is named
//! after the last element of the decoded URL path (`__unnamed__` when there is none), written with
//! mode 0600 and the server's `Last-Modified` as its mtime, and checked against `--checksum`
//! before it is copied like a context file. Git URLs are refused with a clear message.

use sha2::Digest as _;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Whether an ADD source is fetched over HTTP(S).
pub fn is_url(src: &str) -> bool {
    let lower = src.to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// Whether an ADD source names a git repository (BuildKit clones those; strata does not yet).
pub fn is_git(src: &str) -> bool {
    let lower = src.to_ascii_lowercase();
    lower.starts_with("git@")
        || lower.starts_with("git://")
        || lower.starts_with("ssh://")
        || (is_url(&lower) && (lower.split(['#', '?']).next().is_some_and(|p| p.ends_with(".git")) || lower.contains(".git#")))
}

/// The file name BuildKit gives a downloaded URL: the last element of its percent-decoded
/// path (`path.Base(url.Path)`), or `__unnamed__` when that is no plain file name.
pub fn url_file_name(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, r)| r);
    let path = after_scheme.split(['?', '#']).next().unwrap_or("");
    let path = path.find('/').map_or("", |i| &path[i..]);
    // Decoded first, as Go's url.Parse does: `%2F` is a `/` of the path, never part of a name.
    let decoded = percent_decode(path);
    let cleaned = crate::context::filepath_match::go_clean(if decoded.is_empty() { "/" } else { &decoded });
    let base = cleaned.rsplit('/').next().unwrap_or("");
    crate::host_name::single_component(base).map_or_else(|| "__unnamed__".into(), str::to_string)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why `ADD <url>` could not fetch its file. URLs are shown without user information.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// `--checksum` names an algorithm other than sha256.
    #[error("--checksum={spec}: unsupported digest algorithm {algorithm:?} (use sha256:<64 hex digits>)")]
    ChecksumAlgorithm { spec: String, algorithm: String },
    /// `--checksum` is not `sha256:<64 hex digits>`.
    #[error("--checksum={spec}: expected sha256:<64 hex digits>")]
    ChecksumSyntax { spec: String },
    /// The request failed before an answer (DNS, connection, TLS).
    #[error("{url}: {message} (check the URL and the network)")]
    Request { url: String, message: String },
    /// The server answered with an error status.
    #[error("{url}: the server answered {status} (check the URL)")]
    Status { url: String, status: String },
    /// More bytes than `--max-download-size` allows.
    #[error("{url}: the download is larger than the limit of {limit} bytes (at least {got} bytes); raise --max-download-size if this file is expected")]
    TooLarge { url: String, limit: u64, got: u64 },
    /// No byte arrived for the stall timeout.
    #[error("{url}: no data for {seconds} s; the download stalled (check the server)")]
    Stalled { url: String, seconds: u64 },
    /// The connection broke during the download.
    #[error("{url}: download interrupted: {message}")]
    Interrupted { url: String, message: String },
    /// The bytes do not have the `--checksum` digest.
    #[error("{url}: checksum mismatch: expected sha256:{expected}, downloaded sha256:{got} (fix --checksum or the URL)")]
    ChecksumMismatch { url: String, expected: String, got: String },
    /// Writing the downloaded file failed.
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// Parses `--checksum=sha256:<hex>` into the expected hex digest.
pub fn parse_checksum(spec: &str) -> Result<String, DownloadError> {
    match spec.split_once(':') {
        Some(("sha256", hex)) if hex.len() == 64 && hex.bytes().all(|c| c.is_ascii_hexdigit()) => Ok(hex.to_ascii_lowercase()),
        Some((algo, _)) if algo != "sha256" => Err(DownloadError::ChecksumAlgorithm { spec: spec.to_string(), algorithm: algo.to_string() }),
        _ => Err(DownloadError::ChecksumSyntax { spec: spec.to_string() }),
    }
}

/// How long a download may go without receiving a byte before it is abandoned (registry
/// transfers use the same figure).
const STALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Downloads `url` into the fresh private directory `dir` and returns the name the file has
/// there. The bytes go to a file strata names itself; only once the size cap and
/// `--checksum` have passed does it take the name the image sees ([`url_file_name`]).
pub fn download(handle: &tokio::runtime::Handle, url: &str, dir: &Path, checksum: Option<&str>, max_bytes: u64) -> Result<String, DownloadError> {
    let expected = checksum.map(parse_checksum).transpose()?;
    let name = url_file_name(url);
    let part: PathBuf = dir.join(".download");
    let shown = redact(url);
    let too_big = |got: u64| DownloadError::TooLarge { url: shown.clone(), limit: max_bytes, got };
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source: std::io::Error| DownloadError::Io { path, source }
    };
    let (digest, last_modified) = handle.block_on(async {
        let client = reqwest::Client::builder()
            .connect_timeout(std::time::Duration::from_secs(30))
            .read_timeout(STALL_TIMEOUT)
            .build()
            .map_err(|e| DownloadError::Request { url: shown.clone(), message: format!("cannot create an HTTP client: {e}") })?;
        let mut resp = client.get(url).send().await.map_err(|e| DownloadError::Request { url: shown.clone(), message: e.to_string() })?;
        if !resp.status().is_success() {
            return Err(DownloadError::Status { url: shown.clone(), status: resp.status().to_string() });
        }
        if let Some(len) = resp.content_length().filter(|&l| l > max_bytes) {
            return Err(too_big(len));
        }
        let last_modified = resp.headers().get(reqwest::header::LAST_MODIFIED).and_then(|v| v.to_str().ok()).and_then(|v| httpdate::parse_http_date(v).ok());
        let mut file = std::fs::File::options().write(true).create_new(true).open(&part).map_err(io(&part))?;
        let mut hasher = sha2::Sha256::new();
        let mut total: u64 = 0;
        loop {
            let chunk = match resp.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) if e.is_timeout() => return Err(DownloadError::Stalled { url: shown.clone(), seconds: STALL_TIMEOUT.as_secs() }),
                Err(e) => return Err(DownloadError::Interrupted { url: shown.clone(), message: e.to_string() }),
            };
            total += chunk.len() as u64;
            if total > max_bytes {
                return Err(too_big(total));
            }
            hasher.update(&chunk);
            file.write_all(&chunk).map_err(io(&part))?;
        }
        file.flush().map_err(io(&part))?;
        Ok::<_, DownloadError>((hex::encode(hasher.finalize()), last_modified))
    })?;
    if let Some(want) = expected
        && want != digest
    {
        return Err(DownloadError::ChecksumMismatch { url: shown, expected: want, got: digest });
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&part, std::fs::Permissions::from_mode(0o600)).map_err(io(&part))?;
    if let Some(t) = last_modified {
        let secs = t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let ts = nix::sys::time::TimeSpec::new(secs, 0);
        nix::sys::stat::utimensat(nix::fcntl::AT_FDCWD, &part, &ts, &ts, nix::sys::stat::UtimensatFlags::NoFollowSymlink)
            .map_err(|e| DownloadError::Io { path: part.clone(), source: e.into() })?;
    }
    let path = dir.join(&name);
    std::fs::rename(&part, &path).map_err(io(&path))?;
    Ok(name)
}

/// The URL without user information, for messages.
fn redact(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let (host, path) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
            if path.is_empty() { format!("{scheme}://{host}") } else { format!("{scheme}://{host}/{path}") }
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_urls() {
        assert_eq!(url_file_name("http://h/a/b/file.tar.gz"), "file.tar.gz");
        assert_eq!(url_file_name("http://h/a/b/?x=1"), "b");
        assert_eq!(url_file_name("http://h"), "__unnamed__");
        assert_eq!(url_file_name("http://h/"), "__unnamed__");
        assert_eq!(url_file_name("https://h/x%20y.txt#frag"), "x y.txt");
        // Decoded before it is cleaned: an encoded `/` or `..` never reaches a host path.
        assert_eq!(url_file_name("http://h/%2Fetc%2Fpasswd"), "passwd");
        assert_eq!(url_file_name("http://h/x/..%2F..%2F..%2Fetc%2Fshadow"), "shadow");
        assert_eq!(url_file_name("http://h/a/%2E%2E"), "__unnamed__");
        assert_eq!(url_file_name("http://h/%2E%2E%2F"), "__unnamed__");
        assert_eq!(url_file_name("http://h/a%00b"), "__unnamed__");
    }

    #[test]
    fn git_sources_and_checksums() {
        assert!(is_git("git@github.com:moby/buildkit.git"));
        assert!(is_git("https://github.com/moby/buildkit.git#v0.10.1"));
        assert!(is_git("git://example.com/repo"));
        assert!(!is_git("https://example.com/file.tar.gz"));
        assert!(is_url("HTTPS://example.com/x"));
        let hex = "a".repeat(64);
        assert_eq!(parse_checksum(&format!("sha256:{hex}")).ok(), Some(hex));
        assert!(parse_checksum("md5:abc").is_err());
        assert!(parse_checksum("sha256:xyz").is_err());
        assert_eq!(redact("https://user:pw@h/p"), "https://h/p");
    }
}
