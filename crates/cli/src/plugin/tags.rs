//! Tags the plugin derives: `PLUGIN_EXPAND_TAG` (1.2.3 -> 1, 1.2, 1.2.3) and `PLUGIN_AUTO_TAG`
//! (tags from `DRONE_COMMIT_REF`), with the same rules as drone-kaniko.

use anyhow::bail;

/// A semantic version as Go's `golang.org/x/mod/semver` reads it (`v1`, `v1.2` allowed).
#[derive(Debug, PartialEq, Eq)]
struct Semver {
    major: String,
    minor: String,
    patch: String,
    prerelease: String,
    build: String,
}

fn numeric(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'))
}

fn identifiers_ok(s: &str, numeric_rule: bool) -> bool {
    s.split('.').all(|id| {
        !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && (!numeric_rule || !id.bytes().all(|b| b.is_ascii_digit()) || numeric(id))
    })
}

/// Parses `v1.2.3-rc.1+build` (the `v` is required, as in Go).
fn parse_v(v: &str) -> Option<Semver> {
    let rest = v.strip_prefix('v')?;
    let (rest, build) = match rest.split_once('+') {
        Some((a, b)) if identifiers_ok(b, false) => (a, b),
        Some(_) => return None,
        None => (rest, ""),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((a, b)) if identifiers_ok(b, true) => (a, b),
        Some(_) => return None,
        None => (rest, ""),
    };
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty() || parts.len() > 3 || !parts.iter().all(|p| numeric(p)) {
        return None;
    }
    // Go accepts the shorthands v1 and v1.2 only without prerelease or build.
    if parts.len() < 3 && (!pre.is_empty() || !build.is_empty()) {
        return None;
    }
    Some(Semver {
        major: parts[0].to_string(),
        minor: parts.get(1).unwrap_or(&"0").to_string(),
        patch: parts.get(2).unwrap_or(&"0").to_string(),
        prerelease: if pre.is_empty() { String::new() } else { format!("-{pre}") },
        build: if build.is_empty() { String::new() } else { format!("+{build}") },
    })
}

/// The tags one `PLUGIN_TAGS` entry becomes; `expand` is `PLUGIN_EXPAND_TAG`.
///
/// Build metadata (`+linux`) is carried to every tag; a prerelease (`-rc1`) yields only the full
/// version. Non-semver tags pass through unchanged.
pub fn expand(tag: &str, expand: bool) -> Vec<String> {
    if !expand {
        return vec![tag.to_string()];
    }
    let dashed = tag.replace('_', "-");
    let candidate = if parse_v(&dashed).is_none() && parse_v(&format!("v{dashed}")).is_some() { format!("v{dashed}") } else { dashed };
    let Some(v) = parse_v(&candidate) else { return vec![tag.to_string()] };
    if !v.prerelease.is_empty() {
        return vec![candidate.trim_start_matches('v').to_string()];
    }
    vec![format!("{}{}", v.major, v.build), format!("{}.{}{}", v.major, v.minor, v.build), format!("{}.{}.{}{}", v.major, v.minor, v.patch, v.build)]
}

/// `PLUGIN_AUTO_TAG`: tags from the commit ref (`refs/tags/v1.2.3` -> 1, 1.2, 1.2.3; the default
/// branch -> latest), each with `-suffix` when a suffix is given (`latest` becomes the suffix).
pub fn auto(tags: &[String], commit_ref: &str, default_branch: &str, suffix: &str) -> anyhow::Result<Vec<String>> {
    if tags.len() > 1 || (tags.len() == 1 && tags[0] != "latest") {
        bail!("PLUGIN_AUTO_TAG does not work with tags given in PLUGIN_TAGS ({}): set one or the other", tags.join(","));
    }
    let is_tag = commit_ref.starts_with("refs/tags/");
    let branch = commit_ref.strip_prefix("refs/heads/").unwrap_or(commit_ref);
    if !is_tag && branch != default_branch {
        bail!("cannot pick a tag automatically for commit ref {commit_ref:?}: it is neither a tag nor the default branch {default_branch:?}");
    }
    let mut out = if is_tag {
        let name = commit_ref.trim_start_matches("refs/tags/");
        let Some(v) =
            parse_v(&format!("v{}", name.trim_start_matches('v'))).filter(|_| name.split(['-', '+']).next().unwrap_or_default().matches('.').count() == 2)
        else {
            bail!("tag {name:?} is not a semantic version (major.minor.patch): cannot pick tags automatically");
        };
        if !v.prerelease.is_empty() || !v.build.is_empty() {
            vec![format!("{}.{}.{}{}{}", v.major, v.minor, v.patch, v.prerelease, v.build)]
        } else if v.major == "0" {
            vec![format!("0.{}", v.minor), format!("0.{}.{}", v.minor, v.patch)]
        } else {
            vec![v.major.clone(), format!("{}.{}", v.major, v.minor), format!("{}.{}.{}", v.major, v.minor, v.patch)]
        }
    } else {
        vec!["latest".to_string()]
    };
    if !suffix.is_empty() {
        for t in &mut out {
            *t = if t == "latest" { suffix.to_string() } else { format!("{t}-{suffix}") };
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn expand_follows_drone_kaniko() {
        assert_eq!(expand("1.2.3", true), s(&["1", "1.2", "1.2.3"]));
        assert_eq!(expand("v1.2.3", true), s(&["1", "1.2", "1.2.3"]));
        assert_eq!(expand("1.2.3+linux_amd64", true), s(&["1+linux-amd64", "1.2+linux-amd64", "1.2.3+linux-amd64"]));
        assert_eq!(expand("1.2.3-rc1", true), s(&["1.2.3-rc1"]));
        assert_eq!(expand("1.2", true), s(&["1", "1.2", "1.2.0"]));
        assert_eq!(expand("latest", true), s(&["latest"]));
        assert_eq!(expand("01.2.3", true), s(&["01.2.3"]));
        assert_eq!(expand("1.2.3", false), s(&["1.2.3"]));
    }

    #[test]
    fn auto_tags_from_refs() {
        let latest = s(&["latest"]);
        assert_eq!(auto(&latest, "refs/tags/v1.2.3", "main", "").ok(), Some(s(&["1", "1.2", "1.2.3"])));
        assert_eq!(auto(&latest, "refs/tags/0.4.1", "main", "").ok(), Some(s(&["0.4", "0.4.1"])));
        assert_eq!(auto(&latest, "refs/tags/1.0.0-rc.1", "main", "").ok(), Some(s(&["1.0.0-rc.1"])));
        assert_eq!(auto(&latest, "refs/heads/main", "main", "").ok(), Some(latest.clone()));
        assert_eq!(auto(&latest, "refs/heads/main", "main", "alpine").ok(), Some(s(&["alpine"])));
        assert_eq!(auto(&latest, "refs/tags/v2.0.1", "main", "alpine").ok(), Some(s(&["2-alpine", "2.0-alpine", "2.0.1-alpine"])));
        assert!(auto(&latest, "refs/heads/feature", "main", "").is_err());
        assert!(auto(&s(&["v1"]), "refs/tags/v1.2.3", "main", "").is_err());
        assert!(auto(&latest, "refs/tags/nope", "main", "").is_err());
    }
}
