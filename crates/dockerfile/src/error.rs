//! Front-end errors: every one names the file, line and column it comes from, and shows
//! the source line.

/// A Dockerfile error with its location.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The text at `file:line:col` is not valid Dockerfile syntax.
    #[error("{file}:{line}:{col}: {message}{}", source_line(line_text))]
    Syntax { file: String, line: usize, col: usize, message: String, line_text: String },
    /// A word could not be expanded (`${V:?msg}`, an unmatched quote, a bad substitution).
    #[error("{file}:{line}:{col}: {message}{}", source_line(line_text))]
    Expand { file: String, line: usize, col: usize, message: String, line_text: String },
    /// The stage graph is wrong: unknown target or stage, duplicate name, a cycle.
    #[error("{file}:{line}:{col}: {message}{}", source_line(line_text))]
    Stage { file: String, line: usize, col: usize, message: String, line_text: String },
}

/// The source line under the message, indented (cut at 200 characters); nothing when there
/// is no text.
fn source_line(text: &str) -> String {
    if text.trim().is_empty() { String::new() } else { format!("\n  {}", shorten(text, 200)) }
}

/// `text` cut to at most `max` characters, with `…` where it was cut: an error quoting a
/// hostile 50 MB line stays one readable line.
pub fn shorten(text: &str, max: usize) -> std::borrow::Cow<'_, str> {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &text[..i]).into(),
        None => text.into(),
    }
}

impl Error {
    /// The message without the location and source line.
    pub fn message(&self) -> &str {
        match self {
            Self::Syntax { message, .. } | Self::Expand { message, .. } | Self::Stage { message, .. } => message,
        }
    }

    /// The 1-based line the error points at.
    pub fn line(&self) -> usize {
        match self {
            Self::Syntax { line, .. } | Self::Expand { line, .. } | Self::Stage { line, .. } => *line,
        }
    }
}

/// Builds errors that point into one source text.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Locator<'a> {
    pub file: &'a str,
    pub lines: &'a [String],
}

/// Which variant to build.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Kind {
    Syntax,
    Expand,
    Stage,
}

impl Locator<'_> {
    /// The physical line `line` (1-based), without its newline.
    pub fn line_text(&self, line: usize) -> String {
        self.lines.get(line.wrapping_sub(1)).map(|l| l.trim_end_matches(['\r', '\n']).to_string()).unwrap_or_default()
    }

    /// An error at `line`, with the column of `needle` in that line (or its first non-blank).
    pub fn error(&self, kind: Kind, line: usize, needle: Option<&str>, message: impl Into<String>) -> Error {
        let line_text = self.line_text(line);
        let col = needle
            .filter(|n| !n.is_empty())
            .and_then(|n| line_text.find(n))
            .or_else(|| line_text.find(|c: char| !c.is_whitespace()))
            .map(|byte| line_text[..byte].chars().count() + 1)
            .unwrap_or(1);
        let file = self.file.to_string();
        let message = message.into();
        match kind {
            Kind::Syntax => Error::Syntax { file, line, col, message, line_text },
            Kind::Expand => Error::Expand { file, line, col, message, line_text },
            Kind::Stage => Error::Stage { file, line, col, message, line_text },
        }
    }
}

/// A non-fatal finding, such as a build arg that no stage declared.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    /// Where it was found, if anywhere in particular (1-based line).
    pub line: Option<usize>,
    /// What to tell the user.
    pub message: String,
}
