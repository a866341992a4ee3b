//! From text to logical lines: parser directives, comments, line continuations with the
//! active escape character, and heredoc bodies. Mirrors BuildKit's `parser/parser.go`.

use crate::expand::{Lexer, NoEnv};
use crate::words::{parse_json, split_command, Json};
use crate::Heredoc;

/// One logical instruction line with the heredoc bodies that follow it.
#[derive(Debug, Clone)]
pub(crate) struct LogicalLine {
    /// 1-based first physical line.
    pub start_line: usize,
    /// 1-based last physical line (heredoc bodies included).
    pub end_line: usize,
    /// Continuations joined, comments inside them dropped.
    pub text: String,
    /// Heredocs in the order they appear.
    pub heredocs: Vec<Heredoc>,
}

/// The lexer's output.
#[derive(Debug, Clone)]
pub(crate) struct Lexed {
    pub directives: Vec<(String, String)>,
    pub escape: char,
    pub lines: Vec<LogicalLine>,
    /// Empty continuation lines found (line numbers), a deprecated form.
    pub empty_continuations: Vec<usize>,
}

/// A lexing error with its 1-based line.
#[derive(Debug, Clone)]
pub(crate) struct LexError {
    pub line: usize,
    pub message: String,
}

struct Directives {
    escape: char,
    done: bool,
    seen: Vec<(String, String)>,
}

impl Directives {
    /// Looks for `# name=value` before anything else; `Err` for a repeated or bad directive.
    fn possible_directive(&mut self, line: &str) -> Result<(), String> {
        if self.done {
            return Ok(());
        }
        let Some((name, value)) = match_directive(line) else {
            self.done = true;
            return Ok(());
        };
        let key = name.to_ascii_lowercase();
        if !matches!(key.as_str(), "syntax" | "escape" | "check") {
            self.done = true;
            return Ok(());
        }
        if self.seen.iter().any(|(k, _)| *k == key) {
            return Err(format!("only one {key} parser directive can be used"));
        }
        if key == "escape" {
            match value.as_str() {
                "\\" => self.escape = '\\',
                "`" => self.escape = '`',
                _ => return Err(format!("invalid escape token '{value}' does not match ` or \\")),
            }
        }
        self.seen.push((key, value));
        Ok(())
    }
}

fn is_go_space(c: char) -> bool {
    // Go regexp `\s`: [\t\n\f\r ].
    matches!(c, '\t' | '\n' | '\u{0c}' | '\r' | ' ')
}

/// `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`
fn match_directive(line: &str) -> Option<(String, String)> {
    let rest = line.strip_prefix('#')?.trim_start_matches(is_go_space);
    let first = rest.chars().next()?;
    if !first.is_ascii_alphabetic() {
        return None;
    }
    let name_len = rest.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(rest.len());
    let name = &rest[..name_len];
    let rest = rest[name_len..].trim_start_matches(is_go_space).strip_prefix('=')?;
    let value = rest.trim_matches(is_go_space);
    if value.is_empty() || value.contains('\n') {
        return None;
    }
    Some((name.to_string(), value.to_string()))
}

fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

fn is_comment(raw: &str) -> bool {
    trim_newline(raw).trim_start().starts_with('#')
}

/// Strips a trailing continuation character; `None` when the line does not continue.
fn trim_continuation(line: &str, escape: char) -> Option<&str> {
    let trimmed = line.trim_end_matches([' ', '\t']);
    let body = trimmed.strip_suffix(escape)?;
    // An escaped escape character at the end is not a continuation (`foo \\`).
    if body.ends_with(escape) {
        return None;
    }
    Some(body)
}

/// Splits text into lines that keep their `\n`.
fn physical_lines(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

/// Reads the whole file into logical lines.
pub(crate) fn lex(text: &str) -> Result<Lexed, LexError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let raw = physical_lines(text);
    let mut d = Directives { escape: '\\', done: false, seen: Vec::new() };
    let mut lines = Vec::new();
    let mut empty_continuations = Vec::new();
    let mut i = 0; // index of the next physical line to read
    while i < raw.len() {
        let first = raw[i];
        i += 1;
        let start_line = i;
        let token = trim_newline(first).trim_start();
        d.possible_directive(token).map_err(|message| LexError { line: start_line, message })?;
        let token = if token.starts_with('#') { "" } else { token };
        let (mut line, mut continues) = match trim_continuation(token, d.escape) {
            Some(body) => (body.to_string(), true),
            None => (token.to_string(), false),
        };
        if !continues && line.is_empty() {
            continue;
        }
        while continues && i < raw.len() {
            let next = raw[i];
            i += 1;
            if is_comment(next) {
                continue;
            }
            let token = trim_newline(next);
            if token.trim_start().is_empty() {
                empty_continuations.push(i);
                continue;
            }
            match trim_continuation(token, d.escape) {
                Some(body) => line.push_str(body),
                None => {
                    line.push_str(token);
                    continues = false;
                }
            }
        }
        let mut heredocs = Vec::new();
        if can_contain_heredoc(&line) {
            for mut doc in heredocs_from_line(&line) {
                let mut terminated = false;
                let mut chomp = false;
                if let Some(c) = doc.1 {
                    chomp = c;
                }
                while i < raw.len() {
                    let body_line = raw[i];
                    i += 1;
                    let mut candidate = trim_newline(body_line);
                    if chomp {
                        candidate = candidate.trim_start_matches('\t');
                    }
                    if candidate == doc.0.name {
                        terminated = true;
                        break;
                    }
                    doc.0.content.push_str(body_line);
                }
                if !terminated {
                    return Err(LexError {
                        line: start_line,
                        message: format!("unterminated heredoc: no line \"{}\" ends it", doc.0.name),
                    });
                }
                if chomp {
                    doc.0.content = chomp_content(&doc.0.content);
                }
                heredocs.push(doc.0);
            }
        }
        lines.push(LogicalLine { start_line, end_line: i.max(start_line), text: line, heredocs });
    }
    Ok(Lexed { directives: d.seen, escape: d.escape, lines, empty_continuations })
}

/// Removes leading tabs from every line (`<<-`).
fn chomp_content(s: &str) -> String {
    s.split_inclusive('\n').map(|l| l.trim_start_matches('\t')).collect()
}

/// RUN, COPY and ADD (also as ONBUILD triggers) in shell form may carry heredocs.
fn can_contain_heredoc(line: &str) -> bool {
    let mut split = split_command(line);
    if split.keyword.eq_ignore_ascii_case("onbuild") {
        split = split_command(&split.rest);
    }
    let kw = split.keyword.to_ascii_lowercase();
    if !matches!(kw.as_str(), "run" | "copy" | "add") {
        return false;
    }
    !matches!(parse_json(&split.rest), Json::Strings(_))
}

/// Parses one word as a heredoc start: `[n]<<[-]WORD`. Returns the heredoc and whether
/// it strips tabs.
pub(crate) fn parse_heredoc(word: &str) -> Option<(Heredoc, Option<bool>)> {
    let lt = word.find("<<")?;
    let fd_part = &word[..lt];
    if !fd_part.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut rest = &word[lt + 2..];
    let chomp = rest.starts_with('-');
    if chomp {
        rest = &rest[1..];
    }
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let fd = if fd_part.is_empty() { None } else { fd_part.parse::<u32>().ok() };
    let mut lex = Lexer::new('\\');
    lex.skip_unset_env = true;
    let words = lex.process_words(rest, &NoEnv).ok()?;
    if words.len() != 1 {
        return None;
    }
    lex.raw_quotes = true;
    let raw_words = lex.process_words(rest, &NoEnv).ok()?;
    let count = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    let expand = raw_words.len() == 1 && count(&words[0]) == count(&raw_words[0]);
    let name = words.into_iter().next()?;
    Some((Heredoc { name, content: String::new(), expand, file_descriptor: fd }, Some(chomp)))
}

/// Every heredoc start in a logical line, in order.
pub(crate) fn heredocs_from_line(line: &str) -> Vec<(Heredoc, Option<bool>)> {
    let mut lex = Lexer::new('\\');
    lex.raw_quotes = true;
    lex.raw_escapes = true;
    lex.skip_unset_env = true;
    let words = lex.process_words(line, &NoEnv).unwrap_or_default();
    words.iter().filter_map(|w| parse_heredoc(w)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_and_continuations() {
        let l = lex("# escape=`\nFROM x\nRUN a `\n  # c\n  b\n").unwrap_or_else(|e| panic!("{}", e.message));
        assert_eq!(l.escape, '`');
        assert_eq!(l.lines.len(), 2);
        assert_eq!(l.lines[1].text, "RUN a   b");
        assert_eq!((l.lines[1].start_line, l.lines[1].end_line), (3, 5));
    }

    #[test]
    fn heredoc_bodies() {
        let l = lex("RUN <<EOF <<-'E2'\necho $a\nEOF\n\tcat\n\tE2\nRUN x\n").unwrap_or_else(|e| panic!("{}", e.message));
        let h = &l.lines[0].heredocs;
        assert_eq!(h.len(), 2);
        assert_eq!((h[0].name.as_str(), h[0].content.as_str(), h[0].expand), ("EOF", "echo $a\n", true));
        assert_eq!((h[1].name.as_str(), h[1].content.as_str(), h[1].expand), ("E2", "cat\n", false));
        assert_eq!(l.lines[1].start_line, 6);
    }

    #[test]
    fn unterminated() {
        assert!(lex("RUN <<EOF\nabc\n").is_err());
    }
}
