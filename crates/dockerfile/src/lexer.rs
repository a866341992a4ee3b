//! From text to logical lines: parser directives, comments, line continuations with the
//! active escape character, and heredoc bodies. Mirrors BuildKit's `parser/parser.go`.

use crate::Heredoc;
use crate::expand::{Lexer, NoEnv};
use crate::words::{Json, parse_json, split_command};

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
                _ => {
                    return Err(format!("invalid escape token '{value}' does not match ` or \\"));
                }
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
        // Every heredoc word holds `<<`; checking first skips the word splitting on most lines.
        if line.contains("<<") && can_contain_heredoc(&line) {
            let docs = heredocs_from_line(&line).map_err(|message| LexError { line: start_line, message })?;
            for mut doc in docs {
                let mut terminated = false;
                let chomp = doc.1;
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
                    return Err(LexError { line: start_line, message: format!("unterminated heredoc: no line \"{}\" ends it", doc.0.name) });
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
/// it strips tabs; `None` when the word is no heredoc.
pub(crate) fn parse_heredoc(word: &str) -> Option<(Heredoc, bool)> {
    try_parse_heredoc(word).ok().flatten()
}

/// Like [`parse_heredoc`], but a word that starts like a heredoc and does not lex
/// (`<<'EOF`) is an error, as in BuildKit.
fn try_parse_heredoc(word: &str) -> Result<Option<(Heredoc, bool)>, String> {
    let Some(lt) = word.find("<<") else {
        return Ok(None);
    };
    let fd_part = &word[..lt];
    if !fd_part.chars().all(|c| c.is_ascii_digit()) {
        return Ok(None);
    }
    let mut rest = &word[lt + 2..];
    let chomp = rest.starts_with('-');
    if chomp {
        rest = &rest[1..];
    }
    // BuildKit's `^(\d*)<<(-?)\s*([^<]*)$` (frontend 1.16): blanks may follow `<<` or `<<-`.
    rest = rest.trim_start_matches(['\t', '\n', '\x0c', '\r', ' ']);
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let fd = if fd_part.is_empty() { None } else { fd_part.parse::<u32>().ok() };
    let mut lex = Lexer::new('\\');
    lex.skip_unset_env = true;
    let words = lex.process_words(rest, &NoEnv).map_err(|e| format!("heredoc {word}: {e}"))?;
    if words.len() != 1 {
        return Ok(None);
    }
    lex.raw_quotes = true;
    let raw_words = lex.process_words(rest, &NoEnv).map_err(|e| format!("heredoc {word}: {e}"))?;
    let count = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    let expand = raw_words.len() == 1 && count(&words[0]) == count(&raw_words[0]);
    let Some(name) = words.into_iter().next() else {
        return Ok(None);
    };
    Ok(Some((Heredoc { name, content: String::new(), expand, file_descriptor: fd }, chomp)))
}

/// Every heredoc start in a logical line, in order.
pub(crate) fn heredocs_from_line(line: &str) -> Result<Vec<(Heredoc, bool)>, String> {
    let mut lex = Lexer::new('\\');
    lex.raw_quotes = true;
    lex.raw_escapes = true;
    lex.skip_unset_env = true;
    // A line that does not lex has no heredocs (BuildKit ignores this error too).
    let words = lex.process_words(line, &NoEnv).unwrap_or_default();
    let mut out = Vec::new();
    for w in &words {
        out.extend(try_parse_heredoc(w)?);
    }
    Ok(out)
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

    /// The Dockerfile of BuildKit's `TestParseExtractsHeredoc` (parser_heredoc_test.go);
    /// bodies of `<<-` heredocs come out with their tabs already stripped here.
    #[test]
    fn buildkit_heredoc_cases() {
        let text = "FROM alpine:3.6\n\nENV NAME=me\n\nRUN ls\n\nUSER <<INVALID\nINVALID\n\nRUN <<EMPTY\nEMPTY\n\nRUN 3<<EMPTY2\nEMPTY2\n\nRUN \"<<NOHEREDOC\"\n\nRUN <<INDENT\n\tfoo\n\tbar\nINDENT\n\nRUN <<-UNINDENT\n\tbaz\n\tquux\nUNINDENT\n\nRUN <<-UNINDENT2\n\tbaz\n\tquux\n\tUNINDENT2\n\nRUN <<-EXPAND\n\texpand $NAME\nEXPAND\n\nRUN <<-'NOEXPAND'\n\tdon't expand $NAME\nNOEXPAND\n\nRUN <<COPY\necho hello world\necho foo bar\nCOPY\n\nRUN <<COMMENT\n# internal comment\necho hello world\necho foo bar # trailing comment\nCOMMENT\n\nRUN --mount=type=cache,target=/foo <<MOUNT\necho hello\nMOUNT\n\nCOPY <<FILE1 <<FILE2 /dest\ncontent 1\nFILE1\ncontent 2\nFILE2\n\nCOPY <<X <<Y /dest\nY\nX\nX\nY\n\t";
        let l = lex(text).unwrap_or_else(|e| panic!("{}", e.message));
        type Doc = (String, String, bool, Option<u32>);
        let docs: Vec<Vec<Doc>> =
            l.lines[1..].iter().map(|line| line.heredocs.iter().map(|h| (h.name.clone(), h.content.clone(), h.expand, h.file_descriptor)).collect()).collect();
        let d = |n: &str, c: &str, e: bool| vec![(n.to_string(), c.to_string(), e, None)];
        assert_eq!(docs[0], vec![]); // ENV
        assert_eq!(docs[1], vec![]); // RUN ls
        assert_eq!(docs[2], vec![]); // USER <<INVALID
        assert_eq!(docs[3], vec![]); // INVALID
        assert_eq!(docs[4], d("EMPTY", "", true));
        assert_eq!(docs[5], vec![("EMPTY2".to_string(), String::new(), true, Some(3))]);
        assert_eq!(docs[6], vec![]); // RUN "<<NOHEREDOC"
        assert_eq!(docs[7], d("INDENT", "\tfoo\n\tbar\n", true));
        assert_eq!(docs[8], d("UNINDENT", "baz\nquux\n", true));
        assert_eq!(docs[9], d("UNINDENT2", "baz\nquux\n", true));
        assert_eq!(docs[10], d("EXPAND", "expand $NAME\n", true));
        assert_eq!(docs[11], d("NOEXPAND", "don't expand $NAME\n", false));
        assert_eq!(docs[12], d("COPY", "echo hello world\necho foo bar\n", true));
        assert_eq!(docs[13], d("COMMENT", "# internal comment\necho hello world\necho foo bar # trailing comment\n", true));
        assert_eq!(docs[14], d("MOUNT", "echo hello\n", true));
        let two = |a: (&str, &str), b: (&str, &str)| vec![(a.0.to_string(), a.1.to_string(), true, None), (b.0.to_string(), b.1.to_string(), true, None)];
        assert_eq!(docs[15], two(("FILE1", "content 1\n"), ("FILE2", "content 2\n")));
        assert_eq!(docs[16], two(("X", "Y\n"), ("Y", "X\n")));
        assert_eq!(docs.len(), 17);
    }

    /// `TestParseHeredocHelpers` and `TestHeredocsFromLine` of BuildKit.
    #[test]
    fn buildkit_heredoc_words() {
        for w in ["<<EOF", "<<'EOF'", "<<\"EOF\"", "<<-EOF", "<<-'EOF'", "<<-\"EOF\"", "<<EO\"F\"", "<< EOF", "<<- EOF", "<<\t EOF"] {
            assert_eq!(try_parse_heredoc(w).ok().flatten().map(|h| h.0.name), Some("EOF".to_string()), "{w}");
        }
        for w in ["<<'EOF", "<<\"EOF", "<<EOF'", "<<EOF\""] {
            assert!(try_parse_heredoc(w).is_err(), "{w}");
        }
        for w in ["", "EOF", "<<", "<<-", "<EOF", "<<<EOF", "<<EOF sh", "<< ", "<<- "] {
            assert!(matches!(try_parse_heredoc(w), Ok(None)), "{w}");
        }
        let names = |line: &str| -> Vec<String> { heredocs_from_line(line).unwrap_or_default().into_iter().map(|h| h.0.name).collect() };
        assert_eq!(names("RUN <<EOF"), ["EOF"]);
        assert_eq!(names("RUN <<-EOF"), ["EOF"]);
        assert_eq!(names("RUN <<'EOF'"), ["EOF"]);
        assert_eq!(names("RUN 4<<EOF"), ["EOF"]);
        assert_eq!(names("RUN <<EOF <<EOF2"), ["EOF", "EOF2"]);
        assert_eq!(names("RUN << EOF"), ["EOF"]);
        assert_eq!(names("RUN <<  EOF  > foo"), ["EOF"]);
        assert_eq!(names("RUN <<\t\"EOF\""), ["EOF"]);
        assert_eq!(names("RUN << -EOF"), ["-EOF"]);
        // `<<-` then a blank: the lexer splits `<<-` from `EOF`, so no heredoc (as BuildKit).
        assert!(names("RUN <<- EOF").is_empty());
        assert!(names("RUN << ").is_empty());
        assert!(names("RUN '<<EOF'").is_empty());
        assert!(names("RUN \"<<EOF\"").is_empty());
    }

    #[test]
    fn unterminated() {
        assert!(lex("RUN <<EOF\nabc\n").is_err());
    }
}
