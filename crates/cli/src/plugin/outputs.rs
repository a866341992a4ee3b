//! What the plugin leaves behind for later steps: the `docker/v1` artifact JSON
//! (`PLUGIN_ARTIFACT_FILE`), the `DRONE_OUTPUT` dotenv, and kaniko's image-name-with-digest files.

use anyhow::Context as _;
use serde::Serialize as _;
use std::path::Path;

/// The `docker/v1` artifact drone-kaniko writes: one entry per `PLUGIN_TAGS` tag, image named
/// `REPO:TAG` (without the registry, which goes to `registryUrl`), every entry with the digest.
pub fn artifact_json(registry_type: &str, registry: &str, repo: &str, tags: &[String], digest: &str) -> anyhow::Result<Vec<u8>> {
    let images: Vec<serde_json::Value> = tags.iter().map(|t| serde_json::json!({ "image": format!("{repo}:{t}"), "digest": digest })).collect();
    let doc = serde_json::json!({
        "kind": "docker/v1",
        "data": {
            "registryType": registry_type,
            "registryUrl": registry,
            "images": if images.is_empty() { serde_json::Value::Null } else { serde_json::Value::Array(images) },
        }
    });
    // Go's json.MarshalIndent(v, "", "\t").
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, serde_json::ser::PrettyFormatter::with_indent(b"\t"));
    doc.serialize(&mut ser).context("cannot encode the artifact file")?;
    Ok(out)
}

/// Writes `bytes` to `path`, creating its directory.
pub fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create directory {}", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// The `DRONE_OUTPUT` file as godotenv.Write produces it: sorted `KEY="value"` lines.
pub fn drone_output(pairs: &[(&str, &str)]) -> String {
    let mut lines: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| {
            if v.parse::<i64>().is_ok() {
                format!("{k}={v}")
            } else {
                let escaped = v.replace('\\', "\\\\").replace('\n', "\\n").replace('\r', "\\r").replace('"', "\\\"").replace('!', "\\!").replace('$', "\\$");
                format!("{k}=\"{escaped}\"")
            }
        })
        .collect();
    lines.sort();
    let mut text = lines.join("\n");
    text.push('\n');
    text
}

/// kaniko's `--image-name-with-digest-file` (`repo@digest`) or `--image-name-tag-with-digest-file`
/// (`repo:tag@digest`) content: one line per destination.
pub fn names_with_digest(destinations: &[String], digest: &str, with_tag: bool) -> String {
    let mut out = String::new();
    for d in destinations {
        let name = if with_tag { d.as_str() } else { strip_tag(d) };
        out.push_str(&format!("{name}@{digest}\n"));
    }
    out
}

fn strip_tag(reference: &str) -> &str {
    let last_slash = reference.rfind('/').map_or(0, |i| i + 1);
    match reference[last_slash..].rfind(':') {
        Some(i) => &reference[..last_slash + i],
        None => reference,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_matches_the_go_encoding() {
        let got = artifact_json("ECR", "1.dkr.ecr.us-east-1.amazonaws.com", "app", &["v1".into(), "latest".into()], "sha256:ab").unwrap_or_default();
        let want = "{\n\t\"kind\": \"docker/v1\",\n\t\"data\": {\n\t\t\"registryType\": \"ECR\",\n\t\t\"registryUrl\": \"1.dkr.ecr.us-east-1.amazonaws.com\",\n\t\t\"images\": [\n\t\t\t{\n\t\t\t\t\"image\": \"app:v1\",\n\t\t\t\t\"digest\": \"sha256:ab\"\n\t\t\t},\n\t\t\t{\n\t\t\t\t\"image\": \"app:latest\",\n\t\t\t\t\"digest\": \"sha256:ab\"\n\t\t\t}\n\t\t]\n\t}\n}";
        assert_eq!(String::from_utf8_lossy(&got), want);
    }

    #[test]
    fn drone_output_is_godotenv() {
        assert_eq!(drone_output(&[("digest", "sha256:ab"), ("IMAGE_TAR_PATH", "")]), "digest=\"sha256:ab\"\n");
    }

    #[test]
    fn names_with_digest_strip_only_the_tag() {
        let d = vec!["127.0.0.1:5000/a/b:v1".to_string()];
        assert_eq!(names_with_digest(&d, "sha256:x", false), "127.0.0.1:5000/a/b@sha256:x\n");
        assert_eq!(names_with_digest(&d, "sha256:x", true), "127.0.0.1:5000/a/b:v1@sha256:x\n");
    }
}
