//! The shell-word expander: BuildKit's quoting, escape and `${VAR...}` rules.
//!
//! This follows `frontend/dockerfile/shell/lex.go` of moby/buildkit: single quotes keep
//! everything literal, double quotes expand `$` and let the escape character escape only
//! `"`, `$` and itself, and outside quotes the escape character makes the next character
//! literal. Word splitting (for [`Lexer::process_words`]) happens after expansion, and
//! text that came from a variable is split on whitespace while quoted text is not.

use std::fmt;

/// Where expansion looks variables up.
pub trait Env {
    /// The value of `name`, or `None` when unset (an empty value is set).
    fn get(&self, name: &str) -> Option<&str>;
}

impl Env for [(String, String)] {
    fn get(&self, name: &str) -> Option<&str> {
        // The last definition wins, as with repeated ENV instructions.
        self.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

impl Env for Vec<(String, String)> {
    fn get(&self, name: &str) -> Option<&str> {
        Env::get(self.as_slice(), name)
    }
}

/// An empty environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEnv;

impl Env for NoEnv {
    fn get(&self, _name: &str) -> Option<&str> {
        None
    }
}

/// Why a word could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpandError {
    /// The word that was being expanded.
    pub word: String,
    /// What is wrong with it.
    pub message: String,
}

impl fmt::Display for ExpandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "failed to process {:?}: {}", self.word, self.message)
    }
}

impl std::error::Error for ExpandError {}

/// A configured expander (BuildKit's `shell.Lex`).
#[derive(Debug, Clone, Copy)]
pub struct Lexer {
    /// The escape character (`\` or `` ` ``).
    pub escape: char,
    /// Keep quote characters in the output.
    pub raw_quotes: bool,
    /// Keep escape characters in the output.
    pub raw_escapes: bool,
    /// Treat quotes as ordinary characters (heredoc bodies).
    pub skip_process_quotes: bool,
    /// Leave references to unset variables as written.
    pub skip_unset_env: bool,
}

impl Lexer {
    /// A lexer with BuildKit's defaults for the given escape character.
    pub fn new(escape: char) -> Self {
        Self { escape, raw_quotes: false, raw_escapes: false, skip_process_quotes: false, skip_unset_env: false }
    }

    /// Expands `word` into one string (quotes removed, spaces kept).
    pub fn process_word(&self, word: &str, env: &dyn Env) -> Result<String, ExpandError> {
        self.run(word, env).map(|(w, _)| w)
    }

    /// Expands `word` and splits the result into words, honouring quotes.
    pub fn process_words(&self, word: &str, env: &dyn Env) -> Result<Vec<String>, ExpandError> {
        self.run(word, env).map(|(_, ws)| ws)
    }

    fn run(&self, word: &str, env: &dyn Env) -> Result<(String, Vec<String>), ExpandError> {
        let chars: Vec<char> = word.chars().collect();
        let mut sw = ShellWord { lex: self, env, chars: &chars, pos: 0, raw_escapes: self.raw_escapes };
        sw.process_stop_on(None, self.raw_escapes)
            .map_err(|message| ExpandError { word: word.to_string(), message })
    }
}

struct ShellWord<'a> {
    lex: &'a Lexer,
    env: &'a dyn Env,
    chars: &'a [char],
    pos: usize,
    raw_escapes: bool,
}

#[derive(Default)]
struct Words {
    buf: String,
    words: Vec<String>,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, ch: char) {
        if ch.is_whitespace() {
            if self.in_word && !self.buf.is_empty() {
                self.words.push(std::mem::take(&mut self.buf));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(ch);
        }
    }
    fn add_raw_char(&mut self, ch: char) {
        self.buf.push(ch);
        self.in_word = true;
    }
    fn add_string(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }
    fn add_raw_string(&mut self, s: &str) {
        self.buf.push_str(s);
        self.in_word = true;
    }
    fn finish(mut self) -> Vec<String> {
        if !self.buf.is_empty() {
            self.words.push(std::mem::take(&mut self.buf));
        }
        self.words
    }
}

type R<T> = Result<T, String>;

impl ShellWord<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    fn process_stop_on(&mut self, stop: Option<char>, raw_escapes: bool) -> R<(String, Vec<String>)> {
        let saved = self.raw_escapes;
        self.raw_escapes = raw_escapes;
        let out = self.stop_on_inner(stop);
        self.raw_escapes = saved;
        out
    }

    fn stop_on_inner(&mut self, stop: Option<char>) -> R<(String, Vec<String>)> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(ch) = self.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            let quotes = !self.lex.skip_process_quotes;
            if ch == '$' {
                let tmp = self.process_dollar()?;
                result.push_str(&tmp);
                words.add_string(&tmp);
            } else if quotes && ch == '\'' {
                let tmp = self.process_single_quote()?;
                result.push_str(&tmp);
                words.add_raw_string(&tmp);
            } else if quotes && ch == '"' {
                let tmp = self.process_double_quote()?;
                result.push_str(&tmp);
                words.add_raw_string(&tmp);
            } else {
                self.next();
                if ch == self.lex.escape {
                    if self.raw_escapes {
                        words.add_raw_char(ch);
                        result.push(ch);
                    }
                    // The escape character escapes the next one, except at the end.
                    let Some(escaped) = self.next() else { break };
                    words.add_raw_char(escaped);
                    result.push(escaped);
                } else {
                    words.add_char(ch);
                    result.push(ch);
                }
            }
        }
        if let Some(stop) = stop {
            return Err(format!("unexpected end of statement while looking for matching {stop}"));
        }
        Ok((result, words.finish()))
    }

    fn process_single_quote(&mut self) -> R<String> {
        let mut result = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.next() {
                None => return Err("unexpected end of statement while looking for matching single-quote".into()),
                Some('\'') => {
                    if self.lex.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    fn process_double_quote(&mut self) -> R<String> {
        let mut result = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.peek() {
                None => return Err("unexpected end of statement while looking for matching double-quote".into()),
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let v = self.process_dollar()?;
                    result.push_str(&v);
                }
                Some(_) => {
                    let mut ch = self.next().unwrap_or_default();
                    if ch == self.lex.escape {
                        if self.raw_escapes {
                            result.push(ch);
                        }
                        match self.peek() {
                            // An escape character at the very end is dropped.
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.lex.escape => {
                                ch = n;
                                self.next();
                            }
                            // Any other escape stays literal, as in sh.
                            Some(_) => {}
                        }
                    }
                    result.push(ch);
                }
            }
        }
    }

    fn get_env(&self, name: &str) -> Option<String> {
        self.env.get(name).map(str::to_string)
    }

    fn process_dollar(&mut self) -> R<String> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.process_name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.lex.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        match self.peek() {
            None => return Err("syntax error: missing '}'".into()),
            Some('{' | '}' | ':') => return Err("syntax error: bad substitution".into()),
            _ => {}
        }
        let name = self.process_name();
        let Some(mut ch) = self.next() else {
            return Err("syntax error: missing '}'".into());
        };
        let mut chs = ch.to_string();
        let mut null_is_unset = false;
        match ch {
            '}' => Ok(match self.get_env(&name) {
                Some(v) => v,
                None if self.lex.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            ':' | '+' | '-' | '?' | '#' | '%' => {
                if ch == ':' {
                    null_is_unset = true;
                    let Some(m) = self.next() else {
                        return Err("syntax error: missing '}'".into());
                    };
                    ch = m;
                    chs.push(ch);
                }
                let pattern_op = ch == '#' || ch == '%';
                if null_is_unset && pattern_op {
                    return Err(format!("unsupported modifier ({chs}) in substitution"));
                }
                let word = match self.process_stop_on(Some('}'), pattern_op) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek().is_none() {
                            return Err("syntax error: missing '}'".into());
                        }
                        return Err(e);
                    }
                };
                let value = self.get_env(&name);
                if self.lex.skip_unset_env && value.is_none() {
                    return Ok(format!("${{{name}{chs}{word}}}"));
                }
                let unset_or_null = value.as_deref().is_none_or(|v| null_is_unset && v.is_empty());
                match ch {
                    '-' => Ok(if unset_or_null { word } else { value.unwrap_or_default() }),
                    '+' => Ok(if unset_or_null { String::new() } else { word }),
                    '?' => match value {
                        None => Err(format!(
                            "{name}: {}",
                            if word.is_empty() { "is not allowed to be unset" } else { &word }
                        )),
                        Some(v) if null_is_unset && v.is_empty() => Err(format!(
                            "{name}: {}",
                            if word.is_empty() { "is not allowed to be empty" } else { &word }
                        )),
                        Some(v) => Ok(v),
                    },
                    '#' | '%' => {
                        let value = value.unwrap_or_default();
                        let (greedy, pat) = match word.strip_prefix(ch) {
                            Some(rest) => (true, rest.to_string()),
                            None => (false, word),
                        };
                        let pat = glob::Pattern::parse(&pat)?;
                        Ok(if ch == '#' { pat.trim_prefix(&value, greedy) } else { pat.trim_suffix(&value, greedy) })
                    }
                    _ => Err(format!("unsupported modifier ({chs}) in substitution")),
                }
            }
            '/' => {
                let replace_all = self.peek() == Some('/');
                if replace_all {
                    self.next();
                }
                let pattern = match self.process_stop_on(Some('/'), true) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek().is_none() {
                            return Err("syntax error: missing '/' in ${}".into());
                        }
                        return Err(e);
                    }
                };
                let replacement = match self.process_stop_on(Some('}'), true) {
                    Ok((w, _)) => w,
                    Err(e) => {
                        if self.peek().is_none() {
                            return Err("syntax error: missing '}'".into());
                        }
                        return Err(e);
                    }
                };
                let value = self.get_env(&name);
                if self.lex.skip_unset_env && value.is_none() {
                    let slash = if replace_all { "//" } else { "/" };
                    return Ok(format!("${{{name}{slash}{pattern}/{replacement}}}"));
                }
                let pat = glob::Pattern::parse(&pattern)?;
                Ok(pat.replace(&value.unwrap_or_default(), &replacement, replace_all))
            }
            _ => Err(format!("unsupported modifier ({chs}) in substitution")),
        }
    }

    fn process_name(&mut self) -> String {
        let mut name = String::new();
        while let Some(ch) = self.peek() {
            if name.is_empty() && ch.is_ascii_digit() {
                while let Some(d) = self.peek().filter(char::is_ascii_digit) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && matches!(ch, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return ch.to_string();
            }
            if !ch.is_alphanumeric() && ch != '_' {
                break;
            }
            self.next();
            name.push(ch);
        }
        name
    }
}

/// Shell patterns of `${V#p}`, `${V%p}` and `${V/p/r}`: `*`, `?` and literal characters.
mod glob {
    #[derive(Debug, Clone, PartialEq)]
    enum Tok {
        Star,
        Any,
        Lit(char),
    }

    /// A parsed pattern.
    #[derive(Debug)]
    pub(super) struct Pattern(Vec<Tok>);

    impl Pattern {
        /// Parses BuildKit's pattern syntax: `\` escapes `*`, `?` and `\`; `\}` and `\/` are literal.
        pub(super) fn parse(p: &str) -> Result<Self, String> {
            let mut toks = Vec::new();
            let mut it = p.chars().peekable();
            while let Some(c) = it.next() {
                match c {
                    '*' => toks.push(Tok::Star),
                    '?' => toks.push(Tok::Any),
                    '\\' => match it.peek().copied() {
                        Some(n @ ('}' | '/')) => {
                            it.next();
                            toks.push(Tok::Lit(n));
                        }
                        Some(n @ ('*' | '?' | '\\')) => {
                            it.next();
                            toks.push(Tok::Lit(n));
                        }
                        Some(n) => return Err(format!("invalid pattern ({p}) in substitution: invalid escape '\\{n}'")),
                        None => return Err(format!("invalid pattern ({p}) in substitution: trailing escape")),
                    },
                    c => toks.push(Tok::Lit(c)),
                }
            }
            Ok(Self(toks))
        }

        /// Whether the whole of `s` matches.
        fn matches(&self, s: &[char]) -> bool {
            // Iterative wildcard matching with single-star backtracking: linear memory,
            // no recursion, so hostile patterns cannot blow the stack.
            let p = &self.0;
            let (mut pi, mut si) = (0usize, 0usize);
            let mut star: Option<(usize, usize)> = None;
            while si < s.len() {
                match p.get(pi) {
                    Some(Tok::Star) => {
                        star = Some((pi, si));
                        pi += 1;
                    }
                    Some(Tok::Any) => {
                        pi += 1;
                        si += 1;
                    }
                    Some(Tok::Lit(c)) if *c == s[si] => {
                        pi += 1;
                        si += 1;
                    }
                    _ => match star {
                        Some((sp, ss)) => {
                            pi = sp + 1;
                            si = ss + 1;
                            star = Some((sp, ss + 1));
                        }
                        None => return false,
                    },
                }
            }
            p[pi..].iter().all(|t| *t == Tok::Star)
        }

        pub(super) fn trim_prefix(&self, value: &str, longest: bool) -> String {
            let v: Vec<char> = value.chars().collect();
            let lens: Box<dyn Iterator<Item = usize>> =
                if longest { Box::new((0..=v.len()).rev()) } else { Box::new(0..=v.len()) };
            for n in lens {
                if self.matches(&v[..n]) {
                    return v[n..].iter().collect();
                }
            }
            value.to_string()
        }

        pub(super) fn trim_suffix(&self, value: &str, longest: bool) -> String {
            let v: Vec<char> = value.chars().collect();
            let starts: Box<dyn Iterator<Item = usize>> =
                if longest { Box::new(0..=v.len()) } else { Box::new((0..=v.len()).rev()) };
            for start in starts {
                if self.matches(&v[start..]) {
                    return v[..start].iter().collect();
                }
            }
            value.to_string()
        }

        /// Leftmost-longest match at or after `from`: (start, end).
        fn find(&self, v: &[char], from: usize) -> Option<(usize, usize)> {
            (from..=v.len()).find_map(|start| {
                (start..=v.len()).rev().find(|&end| self.matches(&v[start..end])).map(|end| (start, end))
            })
        }

        pub(super) fn replace(&self, value: &str, replacement: &str, all: bool) -> String {
            let v: Vec<char> = value.chars().collect();
            let mut out = String::new();
            let mut pos = 0;
            while pos <= v.len() {
                let Some((s, e)) = self.find(&v, pos) else { break };
                out.extend(&v[pos..s]);
                out.push_str(replacement);
                if !all {
                    pos = e;
                    break;
                }
                if e == s {
                    // An empty match: keep one character and move on, as regexp.ReplaceAll does.
                    if let Some(c) = v.get(e) {
                        out.push(*c);
                    }
                    pos = e + 1;
                } else {
                    pos = e;
                }
            }
            if pos < v.len() {
                out.extend(&v[pos..]);
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<(String, String)> {
        vec![("A".into(), "apple".into()), ("E".into(), String::new()), ("P".into(), "/usr/local/bin/tool.tar.gz".into())]
    }

    fn w(s: &str) -> String {
        Lexer::new('\\').process_word(s, &env()).unwrap_or_else(|e| format!("ERR {e}"))
    }

    #[test]
    fn plain_and_braced() {
        assert_eq!(w("$A"), "apple");
        assert_eq!(w("${A}x"), "applex");
        assert_eq!(w("$Ax"), "");
        assert_eq!(w("$"), "$");
        assert_eq!(w("a$"), "a$");
        assert_eq!(w("$1"), "");
    }

    #[test]
    fn modifiers() {
        assert_eq!(w("${A:-x}"), "apple");
        assert_eq!(w("${E:-x}"), "x");
        assert_eq!(w("${E-x}"), "");
        assert_eq!(w("${U-x}"), "x");
        assert_eq!(w("${A:+x}"), "x");
        assert_eq!(w("${E:+x}"), "");
        assert_eq!(w("${E+x}"), "x");
        assert_eq!(w("${U+x}"), "");
        assert_eq!(w("${U:?boom}"), "ERR failed to process \"${U:?boom}\": U: boom");
        assert_eq!(w("${E?}"), "");
        assert_eq!(w("${E:?}"), "ERR failed to process \"${E:?}\": E: is not allowed to be empty");
    }

    #[test]
    fn patterns() {
        assert_eq!(w("${P#*/}"), "usr/local/bin/tool.tar.gz");
        assert_eq!(w("${P##*/}"), "tool.tar.gz");
        assert_eq!(w("${P%.*}"), "/usr/local/bin/tool.tar");
        assert_eq!(w("${P%%.*}"), "/usr/local/bin/tool");
        assert_eq!(w("${A/p/P}"), "aPple");
        assert_eq!(w("${A//p/P}"), "aPPle");
        assert_eq!(w("${A/p*/X}"), "aX");
        assert_eq!(w("${A:#x}"), "ERR failed to process \"${A:#x}\": unsupported modifier (:#) in substitution");
    }

    #[test]
    fn quotes_and_escapes() {
        assert_eq!(w("'$A'"), "$A");
        assert_eq!(w("\"$A\""), "apple");
        assert_eq!(w("\\$A"), "$A");
        assert_eq!(w("\"\\$A\""), "$A");
        assert_eq!(w("\"a\\b\""), "a\\b");
        assert_eq!(w("a\\ b"), "a b");
        assert_eq!(w("'a"), "ERR failed to process \"'a\": unexpected end of statement while looking for matching single-quote");
    }

    #[test]
    fn words_split_after_expansion() {
        let env = vec![("V".to_string(), "a b".to_string())];
        let l = Lexer::new('\\');
        assert_eq!(l.process_words("$V \"c d\" e\\ f", &env).unwrap(), vec!["a", "b", "c d", "e f"]);
    }
}
