//! `.dockerignore` with Docker's own semantics (moby/patternmatcher): patterns are anchored at
//! the context root, cleaned (`./`, leading `/`), `*` and `?` stop at `/`, `**` spans
//! directories, `[...]` is a Go character class, `!` re-includes, and the last match wins.
//! A pattern that matches a directory matches everything below it.

use regex::Regex;

/// One compiled pattern.
#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    regex: Regex,
    exclusion: bool,
}

/// A compiled `.dockerignore`.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

/// A `.dockerignore` line that cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    /// 1-based line in the file.
    pub line: usize,
    /// The pattern as written.
    pub pattern: String,
    /// Why it is invalid.
    pub message: String,
}

impl DockerIgnore {
    /// Parses the text of a `.dockerignore` file.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let mut patterns = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (exclusion, body) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let cleaned = clean(body);
            if cleaned.is_empty() {
                continue;
            }
            let regex = compile(&cleaned).map_err(|message| PatternError { line: i + 1, pattern: raw.to_string(), message })?;
            patterns.push(Pattern { text: cleaned, regex, exclusion });
        }
        Ok(Self { patterns })
    }

    /// Whether the context path `rel` (relative, `/`-separated) is excluded.
    pub fn is_excluded(&self, rel: &str) -> bool {
        let rel = clean(rel);
        let parents: Vec<&str> = rel.match_indices('/').map(|(i, _)| &rel[..i]).collect();
        let mut excluded = false;
        for p in &self.patterns {
            // Only patterns that could flip the answer need testing.
            if p.exclusion != excluded {
                continue;
            }
            let hit = p.regex.is_match(&rel) || parents.iter().any(|parent| p.regex.is_match(parent));
            if hit {
                excluded = !p.exclusion;
            }
        }
        excluded
    }

    /// Whether some `!` pattern could re-include something below the excluded directory `dir`,
    /// so a walker must still descend into it.
    pub fn may_reinclude_below(&self, dir: &str) -> bool {
        let dir = clean(dir);
        self.patterns.iter().any(|p| p.exclusion && (p.text.starts_with(&format!("{dir}/")) || p.text.contains("**") || !p.text.contains('/')))
    }

    /// Whether there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

/// Go's `filepath.Clean` for a relative, `/`-separated path, leading `/` dropped.
pub fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

fn compile(pattern: &str) -> Result<Regex, String> {
    let mut re = String::from("^");
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '*' if chars.get(i + 1) == Some(&'*') => {
                i += 1;
                // `**/` matches zero or more whole directories; a trailing `**` anything.
                if chars.get(i + 1) == Some(&'/') {
                    i += 1;
                    re.push_str("(.*/)?");
                } else {
                    re.push_str(".*");
                }
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '[' => {
                let mut j = i + 1;
                let mut class = String::from("[");
                if chars.get(j) == Some(&'^') || chars.get(j) == Some(&'!') {
                    class.push('^');
                    j += 1;
                }
                let start = j;
                while j < chars.len() && (chars[j] != ']' || j == start) {
                    if chars[j] == '\\' && j + 1 < chars.len() {
                        class.push_str(&regex::escape(&chars[j + 1].to_string()));
                        j += 2;
                        continue;
                    }
                    match chars[j] {
                        '-' => class.push('-'),
                        ch => class.push_str(&regex::escape(&ch.to_string())),
                    }
                    j += 1;
                }
                if j >= chars.len() {
                    return Err("unterminated character class".into());
                }
                class.push(']');
                re.push_str(&class);
                i = j;
            }
            '\\' => {
                i += 1;
                match chars.get(i) {
                    Some(next) => re.push_str(&regex::escape(&next.to_string())),
                    None => return Err("pattern ends with a backslash".into()),
                }
            }
            other => re.push_str(&regex::escape(&other.to_string())),
        }
        i += 1;
    }
    re.push('$');
    Regex::new(&re).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::DockerIgnore;

    fn ig(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text).expect("valid patterns")
    }

    #[test]
    fn anchored_at_root_and_covers_children() {
        let d = ig("foo\n");
        assert!(d.is_excluded("foo"));
        assert!(d.is_excluded("foo/bar/baz"));
        assert!(!d.is_excluded("a/foo"));
    }

    #[test]
    fn stars_questions_and_double_star() {
        let d = ig("*.md\n?x\n**/*.log\n");
        assert!(d.is_excluded("README.md"));
        assert!(!d.is_excluded("docs/README.md"));
        assert!(d.is_excluded("ax"));
        assert!(d.is_excluded("a.log") && d.is_excluded("deep/er/a.log"));
    }

    #[test]
    fn exceptions_last_match_wins() {
        let d = ig("docs\n!docs/keep.md\n");
        assert!(d.is_excluded("docs/other.md"));
        assert!(!d.is_excluded("docs/keep.md"));
        let d = ig("!x\nx\n");
        assert!(d.is_excluded("x"));
    }

    #[test]
    fn leading_slash_and_dot_cleaned_and_classes() {
        let d = ig("/build\n./tmp/*\nfile[0-9].txt\nf[!a].c\n");
        assert!(d.is_excluded("build/x"));
        assert!(d.is_excluded("tmp/a"));
        assert!(d.is_excluded("file7.txt") && !d.is_excluded("filex.txt"));
        assert!(d.is_excluded("fb.c") && !d.is_excluded("fa.c"));
    }
}
