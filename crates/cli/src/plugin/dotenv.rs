//! `PLUGIN_ENV_FILE`: a dotenv file read before any setting, as the plugin does with godotenv.

use anyhow::{Context as _, bail};
use std::path::Path;

/// Parses dotenv text: `KEY=VALUE`, `export KEY=VALUE`, `#` comments, single- or double-quoted
/// values (`\n`, `\"`, `\\` escapes in double quotes) and ` #` comments after unquoted values.
pub fn parse(text: &str, file: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").map_or(line, str::trim_start);
        let Some((key, value)) = line.split_once('=').or_else(|| line.split_once(':')) else {
            bail!("{}:{}: expected KEY=VALUE", file.display(), n + 1);
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') {
            bail!("{}:{}: {key:?} is not a variable name", file.display(), n + 1);
        }
        out.push((key.to_string(), unquote(value.trim())));
    }
    Ok(out)
}

fn unquote(v: &str) -> String {
    if let Some(inner) = v.strip_prefix('\'').and_then(|s| s.rfind('\'').map(|end| &s[..end])) {
        return inner.to_string();
    }
    if let Some(rest) = v.strip_prefix('"')
        && let Some(end) = closing_quote(rest)
    {
        let mut out = String::new();
        let mut chars = rest[..end].chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        }
        return out;
    }
    // Unquoted: a `#` after whitespace starts a comment.
    let cut = v.find(" #").map_or(v, |i| &v[..i]);
    cut.trim_end().to_string()
}

fn closing_quote(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

/// Reads `file`; variables already in the environment win (godotenv.Load does not override).
pub fn read(file: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(file).with_context(|| format!("PLUGIN_ENV_FILE: cannot read {}", file.display()))?;
    Ok(parse(&text, file)?.into_iter().filter(|(k, _)| std::env::var_os(k).is_none()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_dotenv_forms() {
        let text = "# comment\nA=1\nexport B = two words # note\nC=\"x\\ny \\\"q\\\"\"\nD='a#b'\n\nE=\n";
        let got = parse(text, Path::new(".env")).unwrap_or_default();
        let want: Vec<(String, String)> =
            [("A", "1"), ("B", "two words"), ("C", "x\ny \"q\""), ("D", "a#b"), ("E", "")].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_line_without_equals_names_file_and_line() {
        let err = parse("A=1\nnonsense\n", Path::new("/x/.env")).err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(err, "/x/.env:2: expected KEY=VALUE");
    }
}
