//! `.dockerignore` with Docker's own semantics, ported from moby/patternmatcher (the matcher),
//! its `ignorefile` reader and BuildKit's context walker (tonistiigi/fsutil):
//!
//! - lines starting with `#` are comments (only in the first column), blank lines are skipped,
//!   spaces around a pattern and after a leading `!` are trimmed;
//! - each pattern is cleaned like Go's `filepath.Clean` and one leading `/` is dropped, so it is
//!   anchored at the context root (`./a`, `/a` and `a` are the same pattern);
//! - `*` and `?` stop at `/`, `**` spans any number of directories, `[...]` is passed to the
//!   regular expression as written (so `[^a]` negates and `[!a]` does not), `\` escapes;
//! - a pattern matching a directory matches everything below it; the last matching pattern wins
//!   and `!` re-includes;
//! - an excluded directory is not descended into unless some `!` pattern starts with its path,
//!   exactly as BuildKit's walker decides what to send: `!**/keep` does not reach into an
//!   excluded `node_modules`, `!node_modules/keep` does.
//!
//! The Dockerfile and the ignore file are ordinary context files: BuildKit reads the Dockerfile
//! separately, so excluding them keeps them out of `COPY .` and nothing else.

use super::filepath_match::{self, go_clean};
use regex::Regex;

/// How one pattern is tested (patternmatcher's `matchType`).
#[derive(Debug, Clone)]
enum Matcher {
    /// No wildcard: equal strings.
    Exact,
    /// `prefix**`: starts with the prefix.
    Prefix(String),
    /// `**suffix`: ends with the suffix (or is it, for `**/name`).
    Suffix(String),
    /// Anything else, as a regular expression.
    Regex(Regex),
}

/// One compiled pattern.
#[derive(Debug, Clone)]
struct Pattern {
    /// The cleaned pattern without its `!`.
    text: String,
    matcher: Matcher,
    exclusion: bool,
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.matcher {
            Matcher::Exact => path == self.text,
            Matcher::Prefix(p) => path.starts_with(p.as_str()),
            Matcher::Suffix(s) => path.ends_with(s.as_str()) || (s.starts_with('/') && path == &s[1..]),
            Matcher::Regex(re) => re.is_match(path),
        }
    }
}

/// A compiled `.dockerignore` (or a list of `--exclude` patterns).
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
    /// Parses the text of a `.dockerignore` file (ignorefile.ReadAll, then patternmatcher.New).
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            if raw.starts_with('#') {
                continue;
            }
            let mut pattern = raw.trim();
            if pattern.is_empty() {
                continue;
            }
            let invert = pattern.starts_with('!');
            if invert {
                pattern = pattern[1..].trim();
            }
            let mut cleaned = String::new();
            if !pattern.is_empty() {
                cleaned = go_clean(pattern);
                if cleaned.len() > 1 && cleaned.starts_with('/') {
                    cleaned.remove(0);
                }
            }
            if invert {
                cleaned.insert(0, '!');
            }
            lines.push((i + 1, raw.to_string(), cleaned));
        }
        Self::compile(lines)
    }

    /// Compiles patterns given one per item (`COPY --exclude`), without comment handling.
    pub fn from_patterns(patterns: &[String]) -> Result<Self, PatternError> {
        Self::compile(patterns.iter().enumerate().map(|(i, p)| (i + 1, p.clone(), p.trim().to_string())).collect())
    }

    fn compile(lines: Vec<(usize, String, String)>) -> Result<Self, PatternError> {
        let mut patterns = Vec::new();
        for (line, raw, p) in lines {
            let err = |message: String| PatternError { line, pattern: raw.clone(), message };
            if p.is_empty() {
                continue;
            }
            let mut p = go_clean(&p);
            let exclusion = p.starts_with('!');
            if exclusion {
                if p.len() == 1 {
                    return Err(err("illegal exclusion pattern: \"!\"".into()));
                }
                p.remove(0);
            }
            filepath_match::matches(&p, ".").map_err(|e| err(e.to_string()))?;
            let matcher = compile(&p).map_err(err)?;
            patterns.push(Pattern { text: p, matcher, exclusion });
        }
        Ok(Self { patterns })
    }

    /// patternmatcher's `MatchesOrParentMatches`: whether `rel` or one of its parent directories
    /// matches, the last matching pattern deciding.
    pub fn matches(&self, rel: &str) -> bool {
        let file = go_clean(rel);
        if file == "." {
            return false;
        }
        let parents: Vec<&str> = match file.rfind('/') {
            Some(i) => file[..i].split('/').collect(),
            None => Vec::new(),
        };
        let mut matched = false;
        for p in &self.patterns {
            // Only patterns that could flip the answer need testing.
            if p.exclusion != matched {
                continue;
            }
            let mut hit = p.matches(&file);
            if !hit {
                for i in 0..parents.len() {
                    if p.matches(&parents[..=i].join("/")) {
                        hit = true;
                        break;
                    }
                }
            }
            if hit {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// Whether the context path `rel` (relative, `/`-separated) is left out of the context:
    /// it matches, or it lies below an excluded directory the walker does not enter.
    pub fn is_excluded(&self, rel: &str) -> bool {
        let file = go_clean(rel);
        if file == "." || self.patterns.is_empty() {
            return false;
        }
        let mut at = 0;
        while let Some(i) = file[at..].find('/') {
            let dir = &file[..at + i];
            if self.matches(dir) && !self.may_reinclude_below(dir) {
                return true;
            }
            at += i + 1;
        }
        self.matches(&file)
    }

    /// Whether some `!` pattern could re-include something below the excluded directory `dir`,
    /// so a walker must still descend into it (BuildKit: the pattern starts with `dir/`).
    pub fn may_reinclude_below(&self, dir: &str) -> bool {
        let dir_slash = format!("{}/", go_clean(dir));
        self.patterns.iter().any(|p| p.exclusion && format!("{}/", p.text).starts_with(&dir_slash))
    }

    /// Whether there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }
}

/// A relative path cleaned and with leading `/` dropped (`""` for the root).
pub fn clean(path: &str) -> String {
    let c = go_clean(path);
    let c = c.trim_start_matches('/');
    if c == "." { String::new() } else { c.to_string() }
}

/// patternmatcher's `compile`: regular expression characters that mean nothing to
/// `filepath.Match` are escaped; `[`, `]` and `^` pass through.
fn compile(pattern: &str) -> Result<Matcher, String> {
    #[derive(PartialEq)]
    enum Kind {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let mut re = String::from("^");
    let mut kind = Kind::Exact;
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    let mut first = true;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        if ch == '*' {
            if chars.get(i) == Some(&'*') {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i >= chars.len() {
                    if kind == Kind::Exact {
                        kind = Kind::Prefix;
                    } else {
                        re.push_str(".*");
                        kind = Kind::Regex;
                    }
                } else {
                    // `**/**/` is `**/`: repeats collapse, so a pattern of hundreds stays small.
                    if !re.ends_with("(.*/)?") {
                        re.push_str("(.*/)?");
                    }
                    kind = Kind::Regex;
                }
                if first {
                    kind = Kind::Suffix;
                }
            } else {
                re.push_str("[^/]*");
                kind = Kind::Regex;
            }
        } else if ch == '?' {
            re.push_str("[^/]");
            kind = Kind::Regex;
        } else if ".+()|{}$".contains(ch) {
            re.push('\\');
            re.push(ch);
        } else if ch == '\\' {
            match chars.get(i) {
                Some(&next) => {
                    i += 1;
                    re.push('\\');
                    re.push(next);
                    kind = Kind::Regex;
                }
                None => re.push_str("\\\\"),
            }
        } else if ch == '[' || ch == ']' {
            re.push(ch);
            kind = Kind::Regex;
        } else {
            re.push(ch);
        }
        first = false;
    }
    Ok(match kind {
        Kind::Exact => Matcher::Exact,
        Kind::Prefix => Matcher::Prefix(pattern[..pattern.len() - 2].to_string()),
        Kind::Suffix => Matcher::Suffix(pattern[2..].to_string()),
        Kind::Regex => {
            re.push('$');
            Matcher::Regex(Regex::new(&re).map_err(|e| format!("cannot compile pattern: {e}"))?)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::DockerIgnore;

    fn ig(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text).expect("valid patterns")
    }

    fn pm(patterns: &[&str]) -> DockerIgnore {
        DockerIgnore::from_patterns(&patterns.iter().map(|s| s.to_string()).collect::<Vec<_>>()).expect("valid patterns")
    }

    /// moby/patternmatcher TestMatches (MatchesOrParentMatches): (pattern, text, matches).
    #[test]
    fn patternmatcher_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("**", "file", true),
            ("**", "file/", true),
            ("**/", "file", true),
            ("**/", "file/", true),
            ("**", "dir/file", true),
            ("**/", "dir/file", true),
            ("**", "dir/file/", true),
            ("**/", "dir/file/", true),
            ("**/**", "dir/file", true),
            ("**/**", "dir/file/", true),
            ("dir/**", "dir/file", true),
            ("dir/**", "dir/file/", true),
            ("dir/**", "dir/dir2/file", true),
            ("dir/**", "dir/dir2/file/", true),
            ("**/dir", "dir", true),
            ("**/dir", "dir/file", true),
            ("**/dir2/*", "dir/dir2/file", true),
            ("**/dir2/*", "dir/dir2/file/", true),
            ("**/dir2/**", "dir/dir2/dir3/file", true),
            ("**/dir2/**", "dir/dir2/dir3/file/", true),
            ("**file", "file", true),
            ("**file", "dir/file", true),
            ("**/file", "dir/file", true),
            ("**file", "dir/dir/file", true),
            ("**/file", "dir/dir/file", true),
            ("**/file*", "dir/dir/file", true),
            ("**/file*", "dir/dir/file.txt", true),
            ("**/file*txt", "dir/dir/file.txt", true),
            ("**/file*.txt", "dir/dir/file.txt", true),
            ("**/file*.txt*", "dir/dir/file.txt", true),
            ("**/**/*.txt", "dir/dir/file.txt", true),
            ("**/**/*.txt2", "dir/dir/file.txt", false),
            ("**/*.txt", "file.txt", true),
            ("**/**/*.txt", "file.txt", true),
            ("a**/*.txt", "a/file.txt", true),
            ("a**/*.txt", "a/dir/file.txt", true),
            ("a**/*.txt", "a/dir/dir/file.txt", true),
            ("a/*.txt", "a/dir/file.txt", false),
            ("a/*.txt", "a/file.txt", true),
            ("a/*.txt**", "a/file.txt", true),
            ("a[b-d]e", "ae", false),
            ("a[b-d]e", "ace", true),
            ("a[b-d]e", "aae", false),
            ("a[^b-d]e", "aze", true),
            (".*", ".foo", true),
            (".*", "foo", false),
            ("abc.def", "abcdef", false),
            ("abc.def", "abc.def", true),
            ("abc.def", "abcZdef", false),
            ("abc?def", "abcZdef", true),
            ("abc?def", "abcdef", false),
            ("**/foo/bar", "foo/bar", true),
            ("**/foo/bar", "dir/foo/bar", true),
            ("**/foo/bar", "dir/dir2/foo/bar", true),
            ("abc/**", "abc", false),
            ("abc/**", "abc/def", true),
            ("abc/**", "abc/def/ghi", true),
            ("**/.foo", ".foo", true),
            ("**/.foo", "bar.foo", false),
            ("a(b)c/def", "a(b)c/def", true),
            ("a(b)c/def", "a(b)c/xyz", false),
            ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
            ("dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true),
            ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", true),
            ("a\\\\", "a\\", true),
            ("a\\*b", "a*b", true),
        ];
        for (pattern, text, want) in cases {
            assert_eq!(pm(&[pattern]).matches(text), *want, "pattern={pattern:?} text={text:?}");
        }
        let multi: &[(&[&str], &str, bool)] = &[
            (&["**", "!util/docker/web"], "util/docker/web/foo", false),
            (&["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", true),
            (&["**", "!dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", false),
            (&["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", false),
        ];
        for (patterns, text, want) in multi {
            assert_eq!(pm(patterns).matches(text), *want, "patterns={patterns:?} text={text:?}");
        }
    }

    /// patternmatcher's small named tests.
    #[test]
    fn patternmatcher_named_cases() {
        assert!(pm(&["*"]).matches("fileutils.go"));
        assert!(pm(&["*.go"]).matches("fileutils.go"));
        assert!(pm(&["!fileutils.go", "*.go"]).matches("fileutils.go"));
        assert!(!pm(&["docs", "!docs/README.md"]).matches("docs/README.md"));
        assert!(!pm(&["docs/", "!docs/README.md"]).matches("docs/README.md"));
        assert!(!pm(&["docs/*", "!docs/README.md"]).matches("docs/README.md"));
        assert!(!pm(&["*.go", "!fileutils.go"]).matches("fileutils.go"));
        assert!(!pm(&["*.go"]).matches("."));
        assert!(DockerIgnore::from_patterns(&["!".into()]).is_err());
        assert!(!pm(&[]).matches("/any/path/there"));
        assert!(DockerIgnore::from_patterns(&["[".into()]).is_err());
        assert!(pm(&["docs", "  !docs/README.md"]).patterns.iter().any(|p| p.exclusion));
        assert!(pm(&["docs", "!docs/README.md  "]).patterns.iter().any(|p| p.exclusion));
        // Go's filepath.Match table through the matcher (parents count).
        assert!(pm(&["a*"]).matches("ab/c"));
        assert!(!pm(&["a*/b"]).matches("a/c/b"));
        assert!(pm(&["[\\]a]"]).matches("]"));
        for bad in ["[]a]", "[-]", "[x-]", "[-x]", "\\", "[a-b-c]", "[", "[^", "[^bc", "a["] {
            assert!(DockerIgnore::from_patterns(&[bad.into()]).is_err(), "{bad:?} must be rejected");
        }
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
    fn leading_slash_and_dot_cleaned_and_go_classes() {
        let d = ig("/build\n./tmp/*\nfile[0-9].txt\nf[^a].c\ng[!a].c\n");
        assert!(d.is_excluded("build/x"));
        assert!(d.is_excluded("tmp/a"));
        assert!(!d.is_excluded("tmp"));
        assert!(d.is_excluded("file7.txt") && !d.is_excluded("filex.txt"));
        assert!(d.is_excluded("fb.c") && !d.is_excluded("fa.c"));
        // Go's regexp reads `[!a]` as "! or a": no negation, as in Docker.
        assert!(d.is_excluded("ga.c") && d.is_excluded("g!.c") && !d.is_excluded("gb.c"));
    }

    #[test]
    fn comments_only_in_first_column_and_spaces_trimmed() {
        let d = ig("# comment\n  secret.txt  \n #notacomment\n\n!  \tkeep \n*\n");
        assert!(d.is_excluded("secret.txt"));
        assert!(d.is_excluded("# comment") || d.is_excluded("x"));
        assert!(d.matches("#notacomment"));
        let d = ig(" #x\n");
        assert!(d.is_excluded("#x"));
        assert!(!ig("# comment\n").is_excluded("# comment"));
    }

    #[test]
    fn walker_enters_excluded_dirs_only_for_prefix_exceptions() {
        // `!**/keep` matches node_modules/keep, but BuildKit's walker never enters node_modules.
        let d = ig("node_modules\n!**/keep\n");
        assert!(d.is_excluded("node_modules/keep"));
        assert!(!d.is_excluded("keep"));
        let d = ig("node_modules\n!node_modules/a/keep\n");
        assert!(!d.is_excluded("node_modules/a/keep"));
        assert!(d.is_excluded("node_modules/a/other"));
        assert!(d.is_excluded("node_modules/b"));
        assert!(d.may_reinclude_below("node_modules") && d.may_reinclude_below("node_modules/a"));
        assert!(!d.may_reinclude_below("node_modules/b"));
        // Everything excluded except one subtree.
        let d = ig("*\n!src\n");
        assert!(!d.is_excluded("src/main.rs") && d.is_excluded("Dockerfile") && d.is_excluded("README"));
    }

    #[test]
    fn dotdot_and_root_patterns() {
        // "/" stays "/" after cleaning and matches no relative path; "../x" keeps its "..".
        let d = ig("/\n../x\n");
        assert!(!d.is_excluded("x") && !d.is_excluded("a"));
        let d = ig("a/../b\n");
        assert!(d.is_excluded("b") && !d.is_excluded("a"));
    }

    #[test]
    fn pathological_patterns_match_in_linear_time_or_are_refused() {
        // Backtracking matchers take exponential time on these; the regex crate is linear.
        let long = "a".repeat(20_000);
        let d = ig(&format!("{}b\n**/{}/**/x\n", "*a".repeat(200), "**/".repeat(200)));
        assert!(!d.is_excluded(&long));
        assert!(!d.is_excluded(&format!("{}/y", ["a"; 500].join("/"))));
        assert!(d.is_excluded(&format!("{}/x", ["a"; 500].join("/"))));
        // A pattern too large to compile is an error naming its line, not a hang or a panic.
        let err = DockerIgnore::parse(&format!("ok\n{}\n", "[a-z]?".repeat(200_000))).expect_err("too big to compile");
        assert_eq!(err.line, 2);
        assert!(err.message.contains("cannot compile pattern"), "{}", err.message);
        // An unclosed class is an error too.
        assert!(DockerIgnore::parse("[abc\n").is_err());
    }
}
