//! ADD's own sources: remote files over HTTP(S), as BuildKit fetches them. The file is named
//! after the last element of the URL path (`__unnamed__` when there is none), written with
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

/// The file name BuildKit gives a downloaded URL: the last element of its path.
pub fn url_file_name(url: &str) -> String {
    let after_scheme = url.split_once("://").map_or(url, |(_, r)| r);
    let path = after_scheme.split(['?', '#']).next().unwrap_or("");
    let path = path.find('/').map_or("", |i| &path[i..]);
    let cleaned = crate::context::filepath_match::go_clean(if path.is_empty() { "/" } else { path });
    let base = cleaned.rsplit('/').next().unwrap_or("");
    if base.is_empty() || base == "." {
        "__unnamed__".into()
    } else {
        percent_decode(base)
    }
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

/// Parses `--checksum=sha256:<hex>` into the expected hex digest.
pub fn parse_checksum(spec: &str) -> Result<String, String> {
    match spec.split_once(':') {
        Some(("sha256", hex)) if hex.len() == 64 && hex.bytes().all(|c| c.is_ascii_hexdigit()) => Ok(hex.to_ascii_lowercase()),
        Some((algo, _)) if algo != "sha256" => Err(format!("--checksum={spec}: unsupported digest algorithm {algo:?} (use sha256:<64 hex digits>)")),
        _ => Err(format!("--checksum={spec}: expected sha256:<64 hex digits>")),
    }
}

/// Downloads `url` into `dir/<name>`; returns the file name.
pub fn download(handle: &tokio::runtime::Handle, url: &str, dir: &Path, checksum: Option<&str>) -> Result<String, String> {
    let expected = checksum.map(parse_checksum).transpose()?;
    let name = url_file_name(url);
    let path: PathBuf = dir.join(&name);
    let shown = redact(url);
    let (digest, last_modified) = handle.block_on(async {
        let client = reqwest::Client::builder().build().map_err(|e| format!("{shown}: cannot create an HTTP client: {e}"))?;
        let mut resp = client.get(url).send().await.map_err(|e| format!("{shown}: {e} (check the URL and the network)"))?;
        if !resp.status().is_success() {
            return Err(format!("{shown}: the server answered {} (check the URL)", resp.status()));
        }
        let last_modified = resp
            .headers()
            .get(reqwest::header::LAST_MODIFIED)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok());
        let mut file = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut hasher = sha2::Sha256::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| format!("{shown}: download interrupted: {e}"))? {
            hasher.update(&chunk);
            file.write_all(&chunk).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        file.flush().map_err(|e| format!("{}: {e}", path.display()))?;
        Ok::<_, String>((hex::encode(hasher.finalize()), last_modified))
    })?;
    if let Some(want) = expected
        && want != digest
    {
        return Err(format!("{shown}: checksum mismatch: expected sha256:{want}, downloaded sha256:{digest} (fix --checksum or the URL)"));
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(|e| format!("{}: {e}", path.display()))?;
    if let Some(t) = last_modified {
        let secs = t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
        let ts = nix::sys::time::TimeSpec::new(secs, 0);
        nix::sys::stat::utimensat(nix::fcntl::AT_FDCWD, &path, &ts, &ts, nix::sys::stat::UtimensatFlags::NoFollowSymlink)
            .map_err(|e| format!("{}: {e}", path.display()))?;
    }
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
    }

    #[test]
    fn git_sources_and_checksums() {
        assert!(is_git("git@github.com:moby/buildkit.git"));
        assert!(is_git("https://github.com/moby/buildkit.git#v0.10.1"));
        assert!(is_git("git://example.com/repo"));
        assert!(!is_git("https://example.com/file.tar.gz"));
        assert!(is_url("HTTPS://example.com/x"));
        let hex = "a".repeat(64);
        assert_eq!(parse_checksum(&format!("sha256:{hex}")), Ok(hex));
        assert!(parse_checksum("md5:abc").is_err());
        assert!(parse_checksum("sha256:xyz").is_err());
        assert_eq!(redact("https://user:pw@h/p"), "https://h/p");
    }
}
