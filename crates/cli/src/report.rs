//! The one line an error becomes: the error and its causes, each cause said once. Library
//! errors often already print their source (`{path}: {source}`), so a cause whose text is
//! already in the line is not repeated.

/// `error`'s message followed by each cause not already part of it, joined by `: `.
pub fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[derive(Debug, thiserror::Error)]
    #[error("{path}: {source}")]
    struct WithSource {
        path: String,
        source: std::io::Error,
    }

    #[test]
    fn causes_are_said_once() {
        let io = std::io::Error::other("No space left on device");
        let e = anyhow::Error::new(WithSource { path: "/w/blob".into(), source: io }).context("unpacking layer sha256:ab");
        assert_eq!(one_line(&e), "unpacking layer sha256:ab: /w/blob: No space left on device");
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(one_line(&plain), "outer: inner");
    }
}
