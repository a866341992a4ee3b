//! Splitting an instruction line into keyword, flags and arguments, as BuildKit's
//! `parser/split_command.go` and `parser/line_parsers.go` do.

/// A logical line split into its keyword, its `--flags` and the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SplitLine {
    /// The keyword as written.
    pub keyword: String,
    /// Flags without quotes (`--from=builder`).
    pub flags: Vec<String>,
    /// The text after the flags, trimmed.
    pub rest: String,
}

fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// Splits `line` into keyword, flags and the remaining text.
pub(crate) fn split_command(line: &str) -> SplitLine {
    let line = line.trim_matches(is_space);
    let (keyword, after) = match line.find(is_reg_whitespace) {
        Some(i) => {
            let after = line[i..].trim_start_matches(is_reg_whitespace);
            (&line[..i], after)
        }
        None => (line, ""),
    };
    let (rest, flags) = extract_builder_flags(after);
    SplitLine { keyword: keyword.to_string(), flags, rest: rest.trim_matches(is_space).to_string() }
}

/// BuildKit's `[\t\v\f\r ]` class.
pub(crate) fn is_reg_whitespace(c: char) -> bool {
    matches!(c, '\t' | '\u{0b}' | '\u{0c}' | '\r' | ' ')
}

/// Takes leading `--flag[=value]` words off `line`; quotes are removed and `\` escapes.
fn extract_builder_flags(line: &str) -> (String, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    let chars: Vec<(usize, char)> = line.char_indices().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut blank_ok = false;
    let mut i = 0;
    while i <= chars.len() {
        let at_end = i == chars.len();
        let ch = chars.get(i).map(|c| c.1).unwrap_or('\0');
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if is_space(ch) {
                i += 1;
                continue;
            }
            let next_dash = chars.get(i + 1).map(|c| c.1) == Some('-');
            if ch != '-' || !next_dash {
                return (line[chars[i].0..].to_string(), words);
            }
            phase = Phase::Word;
        }
        if at_end {
            if word != "--" && (blank_ok || !word.is_empty()) {
                words.push(word);
            }
            break;
        }
        match phase {
            Phase::Word => {
                if is_space(ch) {
                    phase = Phase::Spaces;
                    if word == "--" {
                        return (line[chars[i].0..].to_string(), words);
                    }
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    word.clear();
                    blank_ok = false;
                    i += 1;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    phase = Phase::Quote(ch);
                    blank_ok = true;
                    i += 1;
                    continue;
                }
                let mut c = ch;
                if ch == '\\' {
                    if i + 1 == chars.len() {
                        i += 1;
                        continue;
                    }
                    i += 1;
                    c = chars[i].1;
                }
                word.push(c);
                i += 1;
            }
            Phase::Quote(q) => {
                if ch == q {
                    phase = Phase::Word;
                    i += 1;
                    continue;
                }
                let mut c = ch;
                if ch == '\\' {
                    if i + 1 == chars.len() {
                        phase = Phase::Word;
                        i += 1;
                        continue;
                    }
                    i += 1;
                    c = chars[i].1;
                }
                word.push(c);
                i += 1;
            }
            // Handled above: Spaces either returned, continued or became Word.
            Phase::Spaces => {}
        }
    }
    (String::new(), words)
}

/// Splits ENV/LABEL/ARG arguments into words, keeping quotes and escapes for the expander.
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut blank_ok = false;
    let mut i = 0;
    while i <= chars.len() {
        let at_end = i == chars.len();
        let ch = chars.get(i).copied().unwrap_or('\0');
        if phase == Phase::Spaces {
            if at_end {
                break;
            }
            if ch.is_whitespace() {
                i += 1;
                continue;
            }
            phase = Phase::Word;
        }
        if at_end {
            if blank_ok || !word.is_empty() {
                words.push(word);
            }
            break;
        }
        match phase {
            Phase::Word => {
                if ch.is_whitespace() {
                    phase = Phase::Spaces;
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    blank_ok = false;
                    i += 1;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    phase = Phase::Quote(ch);
                    blank_ok = true;
                }
                let mut c = ch;
                if ch == escape {
                    if i + 1 == chars.len() {
                        i += 1;
                        continue;
                    }
                    // Outside quotes the escape and the next character are both kept.
                    word.push(ch);
                    i += 1;
                    c = chars[i];
                }
                word.push(c);
                i += 1;
            }
            Phase::Quote(q) => {
                if ch == q {
                    phase = Phase::Word;
                }
                let mut c = ch;
                if ch == escape && q != '\'' {
                    if i + 1 == chars.len() {
                        phase = Phase::Word;
                        i += 1;
                        continue;
                    }
                    i += 1;
                    word.push(ch);
                    c = chars[i];
                }
                word.push(c);
                i += 1;
            }
            Phase::Spaces => {}
        }
    }
    words
}

/// Splits on runs of `[\t\v\f\r ]`, as Go's `regexp.Split(rest, -1)` does (empty edges kept).
pub(crate) fn split_whitespace_delimited(rest: &str) -> Vec<String> {
    if rest.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_space = false;
    for c in rest.chars() {
        if is_reg_whitespace(c) {
            if !in_space {
                out.push(std::mem::take(&mut cur));
                in_space = true;
            }
        } else {
            in_space = false;
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

/// The outcome of reading an argument as a JSON array.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Json {
    /// A JSON array of strings: exec form.
    Strings(Vec<String>),
    /// Valid JSON array with something that is not a string: an error in BuildKit.
    NotStrings,
    /// Not a JSON array of strings: shell form.
    Other,
}

/// Reads `rest` as a JSON array of strings the way BuildKit's `parseJSON` does.
pub(crate) fn parse_json(rest: &str) -> Json {
    let rest = rest.trim_start_matches(is_space);
    if !rest.starts_with('[') {
        return Json::Other;
    }
    // BuildKit's parseJSON uses json.Unmarshal, which refuses anything but JSON whitespace
    // after the array: `CMD ["a"] b` and `ENTRYPOINT ["x"] # c` are shell form, whole.
    match serde_json::from_str::<serde_json::Value>(rest) {
        Ok(serde_json::Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    serde_json::Value::String(s) => out.push(s),
                    _ => return Json::NotStrings,
                }
            }
            Json::Strings(out)
        }
        _ => Json::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_flags() {
        let s = split_command("COPY --from=build --chown=\"a b\" src dst");
        assert_eq!(s.keyword, "COPY");
        assert_eq!(s.flags, vec!["--from=build", "--chown=a b"]);
        assert_eq!(s.rest, "src dst");
        let s = split_command("RUN -- --x");
        assert_eq!(s.rest, "--x");
        let s = split_command("run");
        assert_eq!(s.keyword, "run");
        assert!(s.flags.is_empty() && s.rest.is_empty());
    }

    #[test]
    fn words_keep_quotes() {
        assert_eq!(parse_words(r#"a="b c" d=e\ f"#, '\\'), vec![r#"a="b c""#, r"d=e\ f"]);
        assert_eq!(parse_words("x='it''s'", '\\'), vec!["x='it''s'"]);
    }

    #[test]
    fn json_forms() {
        assert_eq!(parse_json(r#"["a","b"]"#), Json::Strings(vec!["a".into(), "b".into()]));
        assert_eq!(parse_json(r#"["a", 1]"#), Json::NotStrings);
        assert_eq!(parse_json(r#"[a]"#), Json::Other);
        assert_eq!(parse_json(r#"["a"] trailing"#), Json::Other);
        assert_eq!(parse_json(r#"["a"] # comment"#), Json::Other);
        assert_eq!(parse_json(r#"["a", 1] b"#), Json::Other);
        assert_eq!(parse_json(r#"["a"]b"#), Json::Other);
        assert_eq!(parse_json("[\"a\"] \t\r\n"), Json::Strings(vec!["a".into()]));
        assert_eq!(parse_json("[\"a\"]\u{a0}"), Json::Other);
        assert_eq!(parse_json("echo"), Json::Other);
    }
}
