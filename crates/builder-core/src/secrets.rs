//! Build secrets (`--secret id=ID,src=PATH` or `id=ID,env=VAR`) for `RUN --mount=type=secret`.
//!
//! Only where a secret comes from is kept; its value is read when a RUN needs it and lives
//! in memory and in that RUN's private tmpfs only. Nothing here prints a value.

use std::path::PathBuf;

/// Where a secret's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file on the build machine.
    File(PathBuf),
    /// An environment variable of the strata process.
    Env(String),
}

/// One `--secret`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSpec {
    /// The id `RUN --mount=type=secret,id=...` refers to.
    pub id: String,
    /// Where the value is read from.
    pub source: SecretSource,
}

/// Why a `--secret` value cannot be read as a secret spec; the message quotes the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretSpecError {
    /// A field without `=`.
    #[error("--secret {text:?}: {field:?} is not key=value (expected id=ID,src=PATH or id=ID,env=VAR)")]
    NotKeyValue { text: String, field: String },
    /// A key other than id, src, source, env or type.
    #[error("--secret {text:?}: unknown key {key:?} (expected id, src, env or type)")]
    UnknownKey { text: String, key: String },
    /// No id, and none to take from src or env.
    #[error("--secret {text:?}: an id is required (id=ID)")]
    NoId { text: String },
    /// Both src= and env=.
    #[error("--secret {text:?}: give either src= or env=, not both")]
    BothSources { text: String },
    /// type=file without src=.
    #[error("--secret {text:?}: type=file needs src=PATH")]
    FileWithoutSource { text: String },
}

impl std::str::FromStr for SecretSpec {
    type Err = SecretSpecError;

    /// Parses `id=ID,src=PATH`, `id=ID,source=PATH`, `id=ID,env=VAR`, `id=ID,type=env` or
    /// `id=ID` (the environment variable named ID, as buildx reads it).
    fn from_str(text: &str) -> Result<Self, SecretSpecError> {
        let text_owned = || text.to_string();
        let (mut id, mut src, mut env, mut kind) = (None, None, None, None);
        for field in text.split(',') {
            let Some((k, v)) = field.split_once('=') else {
                return Err(SecretSpecError::NotKeyValue { text: text_owned(), field: field.to_string() });
            };
            match k.trim().to_ascii_lowercase().as_str() {
                "id" => id = Some(v.to_string()),
                "src" | "source" => src = Some(v.to_string()),
                "env" => env = Some(v.to_string()),
                "type" => kind = Some(v.to_ascii_lowercase()),
                other => return Err(SecretSpecError::UnknownKey { text: text_owned(), key: other.to_string() }),
            }
        }
        let id = match (id, &src, &env) {
            (Some(i), _, _) if !i.is_empty() => i,
            (_, Some(s), _) => std::path::Path::new(s).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            (_, None, Some(e)) => e.clone(),
            _ => return Err(SecretSpecError::NoId { text: text_owned() }),
        };
        let source = match (src, env, kind.as_deref()) {
            (Some(_), Some(_), _) => return Err(SecretSpecError::BothSources { text: text_owned() }),
            (Some(s), None, Some("env")) => SecretSource::Env(s),
            (Some(s), None, _) => SecretSource::File(PathBuf::from(s)),
            (None, Some(e), _) => SecretSource::Env(e),
            (None, None, Some("file")) => return Err(SecretSpecError::FileWithoutSource { text: text_owned() }),
            (None, None, _) => SecretSource::Env(id.clone()),
        };
        Ok(Self { id, source })
    }
}

impl SecretSpec {
    /// Reads the value. Errors name the source, never the value.
    pub fn load(&self) -> Result<Vec<u8>, String> {
        match &self.source {
            SecretSource::File(p) => std::fs::read(p).map_err(|e| format!("secret {:?}: cannot read {}: {e}", self.id, p.display())),
            SecretSource::Env(v) => {
                std::env::var_os(v).map(|s| s.into_encoded_bytes()).ok_or_else(|| format!("secret {:?}: environment variable {v} is not set", self.id))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_forms() {
        let s: SecretSpec = "id=tok,src=/run/tok.txt".parse().expect("parse");
        assert_eq!(s, SecretSpec { id: "tok".into(), source: SecretSource::File("/run/tok.txt".into()) });
        let s: SecretSpec = "id=tok,env=MY_TOKEN".parse().expect("parse");
        assert_eq!(s.source, SecretSource::Env("MY_TOKEN".into()));
        let s: SecretSpec = "id=GITHUB_TOKEN".parse().expect("parse");
        assert_eq!(s.source, SecretSource::Env("GITHUB_TOKEN".into()));
        let s: SecretSpec = "src=/x/npmrc".parse().expect("parse");
        assert_eq!(s.id, "npmrc");
        assert!("id=a,src=b,env=c".parse::<SecretSpec>().is_err());
        assert!("id=a,bogus=1".parse::<SecretSpec>().is_err());
        assert!("justtext".parse::<SecretSpec>().is_err());
    }

    #[test]
    fn load_error_names_source_only() {
        let s = SecretSpec { id: "x".into(), source: SecretSource::Env("STRATA_TEST_SURELY_UNSET_VAR".into()) };
        let e = s.load().expect_err("unset");
        assert!(e.contains("STRATA_TEST_SURELY_UNSET_VAR"));
    }
}
