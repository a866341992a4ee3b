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
        write!(f, "failed to process {:?}: {}", crate::error::shorten(&self.word, 100), self.message)
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
        let mut sw = ShellWord { lex: self, env, chars: &chars, pos: 0, raw_escapes: self.raw_escapes, depth: 0 };
        sw.process_stop_on(None, self.raw_escapes).map_err(|message| ExpandError { word: word.to_string(), message })
    }
}

/// How deeply `${...}` may nest inside one word. Real Dockerfiles nest a few levels; the
/// limit keeps a hostile one (`${U:-${U:-...}}` 10,000 deep) an error, not a stack overflow.
pub const MAX_EXPANSION_DEPTH: usize = 64;

struct ShellWord<'a> {
    lex: &'a Lexer,
    env: &'a dyn Env,
    chars: &'a [char],
    pos: usize,
    raw_escapes: bool,
    /// `${` levels open at `pos`.
    depth: usize,
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
            } else if ch == '<' {
                // BuildKit (frontend 1.16): `<<` keeps the blanks after it in its word, so
                // `<< EOF` stays one word for heredoc detection.
                let tmp = self.process_possible_heredoc();
                result.push_str(&tmp);
                words.add_raw_string(&tmp);
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

    /// BuildKit's `processPossibleHeredoc`: `<` alone, or `<<` with the tabs, carriage
    /// returns and spaces that follow it.
    fn process_possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".into();
        }
        self.next();
        let mut out = String::from("<<");
        while let Some(c @ ('\t' | '\r' | ' ')) = self.peek() {
            out.push(c);
            self.next();
        }
        out
    }

    fn process_single_quote(&mut self) -> R<String> {
        let mut result = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            result.extend(open);
        }
        loop {
            match self.next() {
                None => {
                    return Err("unexpected end of statement while looking for matching single-quote".into());
                }
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
                None => {
                    return Err("unexpected end of statement while looking for matching double-quote".into());
                }
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
        if self.depth >= MAX_EXPANSION_DEPTH {
            return Err(format!("variable expansions nest more than {MAX_EXPANSION_DEPTH} levels deep; flatten them into separate ARG or ENV steps"));
        }
        self.depth += 1;
        let out = self.process_dollar_inner();
        self.depth -= 1;
        out
    }

    fn process_dollar_inner(&mut self) -> R<String> {
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
                        None => Err(format!("{name}: {}", if word.is_empty() { "is not allowed to be unset" } else { &word })),
                        Some(v) if null_is_unset && v.is_empty() => {
                            Err(format!("{name}: {}", if word.is_empty() { "is not allowed to be empty" } else { &word }))
                        }
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
                        Some(n) => {
                            return Err(format!("invalid pattern ({p}) in substitution: invalid escape '\\{n}'"));
                        }
                        None => {
                            return Err(format!("invalid pattern ({p}) in substitution: trailing escape"));
                        }
                    },
                    c => toks.push(Tok::Lit(c)),
                }
            }
            Ok(Self(toks))
        }

        /// Runs the pattern over `s` as a set of positions (an NFA walk, linear in
        /// `s.len() * pattern length`) and reports every `n` such that `s[..n]` matches.
        fn matching_prefixes(&self, s: &[char]) -> Vec<usize> {
            let p = &self.0;
            let k = p.len();
            let close = |set: &mut Vec<bool>| {
                for i in 0..k {
                    if set[i] && p[i] == Tok::Star {
                        set[i + 1] = true;
                    }
                }
            };
            let mut set = vec![false; k + 1];
            set[0] = true;
            close(&mut set);
            let mut out = Vec::new();
            if set[k] {
                out.push(0);
            }
            for (n, c) in s.iter().enumerate() {
                let mut next = vec![false; k + 1];
                for i in 0..k {
                    if !set[i] {
                        continue;
                    }
                    match &p[i] {
                        Tok::Star => next[i] = true,
                        Tok::Any => next[i + 1] = true,
                        Tok::Lit(l) if l == c => next[i + 1] = true,
                        Tok::Lit(_) => {}
                    }
                }
                close(&mut next);
                if !next.iter().any(|b| *b) {
                    break;
                }
                if next[k] {
                    out.push(n + 1);
                }
                set = next;
            }
            out
        }

        fn reversed(&self) -> Self {
            Self(self.0.iter().rev().cloned().collect())
        }

        pub(super) fn trim_prefix(&self, value: &str, longest: bool) -> String {
            let v: Vec<char> = value.chars().collect();
            let ends = self.matching_prefixes(&v);
            let cut = if longest { ends.last() } else { ends.first() };
            match cut {
                Some(&n) => v[n..].iter().collect(),
                None => value.to_string(),
            }
        }

        pub(super) fn trim_suffix(&self, value: &str, longest: bool) -> String {
            // A suffix of the value is a prefix of the reversed value, matched by the reversed pattern.
            let rv: Vec<char> = value.chars().rev().collect();
            let ends = self.reversed().matching_prefixes(&rv);
            let cut = if longest { ends.last() } else { ends.first() };
            match cut {
                Some(&n) => {
                    let v: Vec<char> = value.chars().collect();
                    v[..v.len() - n].iter().collect()
                }
                None => value.to_string(),
            }
        }

        /// Leftmost-longest match at or after `from`: (start, end).
        fn find(&self, v: &[char], from: usize) -> Option<(usize, usize)> {
            // A leading `*` matches from `from` whatever a later start could: one walk is enough.
            let last = if self.0.first() == Some(&Tok::Star) { from.min(v.len()) } else { v.len() };
            (from..=last).find_map(|start| self.matching_prefixes(&v[start..]).last().map(|&n| (start, start + n)))
        }

        pub(super) fn replace(&self, value: &str, replacement: &str, all: bool) -> String {
            let v: Vec<char> = value.chars().collect();
            let mut out = String::new();
            let mut pos = 0; // next character to copy
            let mut search = 0;
            let mut prev_end: Option<usize> = None;
            while search <= v.len() {
                let Some((s, e)) = self.find(&v, search) else {
                    break;
                };
                if s == e && prev_end == Some(s) {
                    // Go's ReplaceAll ignores an empty match right after the previous match.
                    search = s + 1;
                    continue;
                }
                out.extend(&v[pos..s]);
                out.push_str(replacement);
                pos = e;
                prev_end = Some(e);
                if !all {
                    break;
                }
                if e == s {
                    // An empty match: keep one character and move on.
                    if let Some(c) = v.get(e) {
                        out.push(*c);
                    }
                    pos = e + 1;
                    search = e + 1;
                } else {
                    search = e;
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

    #[test]
    fn replace_all_empty_matches_like_go() {
        let env = vec![("V".to_string(), "abc".to_string()), ("W".to_string(), "ab".to_string())];
        let lex = Lexer::new('\\');
        assert_eq!(lex.process_word("${V//*/y}", &env).as_deref(), Ok("y"));
        assert_eq!(lex.process_word("${W//$NOPE/y}", &env).as_deref(), Ok("yayby"));
        assert_eq!(lex.process_word("${V/*/y}", &env).as_deref(), Ok("y"));
        assert_eq!(lex.process_word("${V//b*/}", &env).as_deref(), Ok("a"));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = format!("{}x{}", "${U:-".repeat(10_000), "}".repeat(10_000));
        let err = Lexer::new('\\').process_word(&deep, &env()).expect_err("too deep");
        assert!(err.message.contains("nest more than 64"), "{err}");
        let ok = format!("{}x{}", "${U:-".repeat(MAX_EXPANSION_DEPTH), "}".repeat(MAX_EXPANSION_DEPTH));
        assert_eq!(Lexer::new('\\').process_word(&ok, &env()).expect("64 levels"), "x");
    }

    #[test]
    fn long_values_stay_linear() {
        let env = vec![("A".to_string(), "a".repeat(200_000))];
        let lex = Lexer::new('\\');
        assert_eq!(lex.process_word("${A#*b*c}", &env).map(|s| s.len()), Ok(200_000));
        assert_eq!(lex.process_word("${A%%a*}", &env).map(|s| s.len()), Ok(0));
        assert_eq!(lex.process_word("${A//*x/y}", &env).map(|s| s.len()), Ok(200_000));
    }

    /// Cases from BuildKit's `TestProcessWithMatches` (shell/lex_test.go), as (input,
    /// variables, result or None for an error).
    #[test]
    fn buildkit_process_with_matches_cases() {
        type Case = (&'static str, &'static [(&'static str, &'static str)], Option<&'static str>);
        let xb: &[(&str, &str)] = &[("FOO", "xxx"), ("BAR", "")];
        let cases: &[Case] = &[
            ("x", &[("DUMMY", "dummy")], Some("x")),
            ("x ${UNUSED}", &[("DUMMY", "dummy")], Some("x ")),
            ("x ${FOO}", &[("FOO", "y")], Some("x y")),
            ("${FOO-aaa} ${BAR-bbb} ${BAZ-ccc}", xb, Some("xxx  ccc")),
            ("${FOO:-aaa} ${BAR:-bbb} ${BAZ:-ccc}", xb, Some("xxx bbb ccc")),
            ("${FOO:-}", xb, Some("xxx")),
            ("${FOO:-}", &[], Some("")),
            ("${FOO+aaa} ${BAR+bbb} ${BAZ+ccc}", xb, Some("aaa bbb ")),
            ("${FOO:+aaa} ${BAR:+bbb} ${BAZ:+ccc}", xb, Some("aaa  ")),
            ("${FOO?aaa}", xb, Some("xxx")),
            ("${BAR?bbb}", xb, Some("")),
            ("${BAZ?ccc}", xb, None),
            ("${FOO:?aaa}", xb, Some("xxx")),
            ("${BAR:?bbb}", xb, None),
            ("${BAZ:?ccc}", xb, None),
            ("${BAZ:?}", xb, None),
            ("${FOO=aaa}", xb, None),
            ("${FOO=:aaa}", xb, None),
            ("${FOO=}", &[], None),
            (r"${FOO#()[]{\}^$.\*\?|\\}", &[("FOO", r"()[]{}^$.*?|\x")], Some("x")),
            (r"${FOO%%\**}", &[("FOO", "xx**")], Some("xx")),
            ("${FOO#*x*y}", &[("FOO", "xxyy")], Some("y")),
            ("${FOO#*}", &[("FOO", "xxyy")], Some("xxyy")),
            ("${FOO#$BAR}", &[("FOO", "xxyy"), ("BAR", "x")], Some("xyy")),
            ("${FOO#$BAR}", &[("FOO", "xxyy"), ("BAR", "")], Some("xxyy")),
            ("${FOO#}", &[("FOO", "xxyy")], Some("xxyy")),
            ("${FOO##*x}", &[("FOO", "xxyy")], Some("yy")),
            ("${FOO##}", &[("FOO", "xxyy")], Some("xxyy")),
            (r"${FOO#?\?}", &[("FOO", "???y")], Some("?y")),
            ("${ABC:-.}${FOO%x}${ABC:-.}", &[("FOO", "xxyy")], Some(".xxyy.")),
            (r"${FOO%%\**\*}", &[("FOO", "a***yy*")], Some("a")),
            ("${FOO%}", &[("FOO", "xxyy")], Some("xxyy")),
            ("${FOO%%$BAR}", &[("FOO", "xxyy"), ("BAR", "")], Some("xxyy")),
            ("${FOO:#}", &[], None),
            ("${FOO:##}", &[], None),
            ("${FOO:%}", &[], None),
            ("${FOO:%%}", &[], None),
            ("${FOO/$NEEDLE/.} - ${FOO//$NEEDLE/.}", &[("FOO", "/foo*/*/*.txt"), ("NEEDLE", r"\*/")], Some("/foo.*/*.txt - /foo..*.txt")),
            ("${FOO/$NEEDLE/} - ${FOO//$NEEDLE/}", &[("FOO", "/tmp/tmp/bar.txt"), ("NEEDLE", "/tmp")], Some("/tmp/bar.txt - /bar.txt")),
            (
                "${FOO/$NEEDLE/$REPLACEMENT} - ${FOO//$NEEDLE/$REPLACEMENT}",
                &[("FOO", "/a/foo/b/c.txt"), ("NEEDLE", "/?/"), ("REPLACEMENT", "/")],
                Some("/foo/b/c.txt - /foo/c.txt"),
            ),
            ("${FOO/$NEEDLE/$REPLACEMENT}", &[("FOO", "http://google.de"), ("NEEDLE", "http://"), ("REPLACEMENT", "https://")], Some("https://google.de")),
            (r"${FOO//\//\/}", &[("FOO", "/tmp/foo.txt")], Some(r"\/tmp\/foo.txt")),
            ("${FOO/$BAR/ww}", &[("FOO", "xxyy"), ("BAR", "")], Some("wwxxyy")),
            ("${FOO//ww}", &[("FOO", "xxyy")], None),
            ("${FOO//}", &[("FOO", "xxyy")], None),
            ("${FOO///}", &[("FOO", "xxyy")], Some("xxyy")),
            ("${FOO///}", &[], Some("")),
            (
                "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz",
                &[("VERSION", "v1.2.3"), ("TARGETOS", "linux"), ("TARGETARCH", "arm"), ("TARGETVARIANT", "v7")],
                Some("something-v1.2.3.linux-arm-v7.tar.gz"),
            ),
            (
                "something-${VERSION}.${TARGETOS}-${TARGETARCH}${TARGETVARIANT:+-${TARGETVARIANT}}.tar.gz",
                &[("VERSION", "v1.2.3"), ("TARGETOS", "linux"), ("TARGETARCH", "arm64")],
                Some("something-v1.2.3.linux-arm64.tar.gz"),
            ),
        ];
        let lex = Lexer::new('\\');
        for (input, vars, want) in cases {
            let env: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let got = lex.process_word(input, &env);
            match want {
                Some(w) => assert_eq!(got.as_deref(), Ok(*w), "{input}"),
                None => assert!(got.is_err(), "{input} should fail, got {got:?}"),
            }
        }
    }
}
