//! Image references in the Docker grammar (`[registry/]repo[:tag][@digest]`).

use crate::Error;
use std::fmt;
use std::str::FromStr;

/// The registry name Docker Hub references normalise to.
pub const DOCKER_HUB: &str = "docker.io";

/// A parsed image reference, with docker.io and `library/` defaults applied.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry host and optional port (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    /// Repository path (`library/busybox`).
    pub repository: String,
    /// Tag, if any.
    pub tag: Option<String>,
    /// `sha256:<hex>` digest, if any.
    pub digest: Option<String>,
}

impl Reference {
    /// What goes after `/manifests/`: the digest when there is one, else the tag, else `latest`.
    pub fn manifest_ref(&self) -> &str {
        self.digest.as_deref().or(self.tag.as_deref()).unwrap_or("latest")
    }

    /// The same repository with another tag (and no digest).
    pub fn with_tag(&self, tag: &str) -> Self {
        Self { tag: Some(tag.to_string()), digest: None, ..self.clone() }
    }

    /// The same repository pinned to a digest (the tag is kept for display).
    pub fn with_digest(&self, digest: &str) -> Self {
        Self { digest: Some(digest.to_string()), ..self.clone() }
    }
}

fn invalid(reference: &str, reason: impl Into<String>) -> Error {
    Error::InvalidReference { reference: reference.to_string(), reason: reason.into() }
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, the grammar of one path component.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or one or more "-".
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'_' || x == b'.' || x == b'-')
}

/// Checks `algorithm:hex` with the lengths sha256 and sha512 use.
pub(crate) fn valid_digest(d: &str) -> Result<(), String> {
    let Some((alg, hex)) = d.split_once(':') else {
        return Err(format!("digest {d:?} has no algorithm (expected sha256:<64 hex>)"));
    };
    let want = match alg {
        "sha256" => 64,
        "sha512" => 128,
        _ => return Err(format!("digest algorithm {alg:?} is not supported (sha256, sha512)")),
    };
    if hex.len() != want || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(format!("digest {d:?} must be {alg}: followed by {want} lowercase hex digits"));
    }
    Ok(())
}

fn valid_registry(r: &str) -> bool {
    let (host, port) = match r.rsplit_once(':') {
        // An IPv6 literal like [::1]:5000 keeps its colons inside brackets.
        Some((h, p)) if !h.ends_with(':') && (!h.starts_with('[') || h.ends_with(']')) => (h, Some(p)),
        _ => (r, None),
    };
    if let Some(p) = port
        && (p.is_empty() || p.parse::<u16>().is_err())
    {
        return false;
    }
    if host.starts_with('[') {
        return host.ends_with(']') && host[1..host.len() - 1].parse::<std::net::Ipv6Addr>().is_ok();
    }
    !host.is_empty()
        && host.split('.').all(|l| !l.is_empty() && !l.starts_with('-') && !l.ends_with('-') && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

impl FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        if s.is_empty() {
            return Err(invalid(s, "empty reference"));
        }
        if s.len() > 4096 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(s, "contains whitespace or is too long"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                valid_digest(d).map_err(|e| invalid(s, e))?;
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        // A tag follows the last ':' only if no '/' comes after it (else the ':' was a port).
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(t) = tag
            && !valid_tag(t)
        {
            return Err(invalid(s, format!("tag {t:?} must match [A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}}")));
        }
        if name.is_empty() {
            return Err(invalid(s, "missing repository name"));
        }
        let (registry, repo) = match name.split_once('/') {
            Some((first, remainder)) if first.contains('.') || first.contains(':') || first == "localhost" || first.starts_with('[') => {
                (first.to_string(), remainder.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        let registry = match registry.as_str() {
            "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
            _ => registry,
        };
        if !valid_registry(&registry) {
            return Err(invalid(s, format!("registry {registry:?} is not a valid host[:port]")));
        }
        let repository = if registry == DOCKER_HUB && !repo.contains('/') { format!("library/{repo}") } else { repo };
        if repository.len() > 255 {
            return Err(invalid(s, "repository name is longer than 255 characters"));
        }
        for c in repository.split('/') {
            if !valid_component(c) {
                let why = if c.bytes().any(|b| b.is_ascii_uppercase()) {
                    format!("repository component {c:?} must be lowercase")
                } else {
                    format!("repository component {c:?} must match [a-z0-9]+((.|_|__|-+)[a-z0-9]+)*")
                };
                return Err(invalid(s, why));
            }
        }
        Ok(Self { registry, repository, tag: tag.map(str::to_string), digest })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Reference {
        match s.parse() {
            Ok(r) => r,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    #[test]
    fn docker_hub_defaults() {
        let r = p("busybox");
        assert_eq!((r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()), ("docker.io", "library/busybox", None));
        assert_eq!(r.manifest_ref(), "latest");
        let r = p("user/app:1.0");
        assert_eq!((r.registry.as_str(), r.repository.as_str(), r.tag.as_deref()), ("docker.io", "user/app", Some("1.0")));
        assert_eq!(p("index.docker.io/library/debian:12").to_string(), "docker.io/library/debian:12");
        assert_eq!(p("docker.io/debian").repository, "library/debian");
    }

    #[test]
    fn registries_ports_tags_digests() {
        let d = format!("sha256:{}", "a".repeat(64));
        let r = p(&format!("127.0.0.1:5000/a/b/c:v1@{d}"));
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert_eq!(r.repository, "a/b/c");
        assert_eq!(r.tag.as_deref(), Some("v1"));
        assert_eq!(r.digest.as_deref(), Some(d.as_str()));
        assert_eq!(r.manifest_ref(), d);
        assert_eq!(r.to_string(), format!("127.0.0.1:5000/a/b/c:v1@{d}"));
        let r = p("localhost/app");
        assert_eq!((r.registry.as_str(), r.repository.as_str()), ("localhost", "app"));
        let r = p("localhost:5000/app");
        assert_eq!((r.registry.as_str(), r.tag.as_deref()), ("localhost:5000", None));
        let r = p("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/app:build-7");
        assert_eq!(r.registry, "123456789012.dkr.ecr.us-east-1.amazonaws.com");
        let r = p("[::1]:5000/app:x");
        assert_eq!((r.registry.as_str(), r.repository.as_str()), ("[::1]:5000", "app"));
        assert_eq!(p("a__b/c-d--e/f.g_h").repository, "a__b/c-d--e/f.g_h");
    }

    #[test]
    fn bad_references_name_the_input() {
        for bad in [
            "",
            "UPPER/app",
            "app:",
            "app:-x",
            "app@sha256:abc",
            "app@md5:0123",
            "a//b",
            "a/b/",
            "host:notaport/app",
            "a b",
            "-app",
            "a___b",
            "registry.example.com/",
        ] {
            match bad.parse::<Reference>() {
                Ok(r) => panic!("{bad:?} parsed as {r:?}"),
                Err(e) => assert!(e.to_string().contains(&format!("{bad:?}")), "{e}"),
            }
        }
    }
}
