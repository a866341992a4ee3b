//! `RUN --mount=...` values: a CSV record of `key=value` fields, as BuildKit reads them
//! (`instructions/commands_runmount.go`).

use crate::suggest::did_you_mean;
use crate::{Mount, MountKind};

const KEYS: &[&str] = &[
    "type",
    "from",
    "source",
    "src",
    "target",
    "dst",
    "destination",
    "readonly",
    "ro",
    "readwrite",
    "rw",
    "id",
    "sharing",
    "required",
    "mode",
    "uid",
    "gid",
    "size",
    "env",
];

/// Splits one CSV record the way Go's `encoding/csv` does with default settings.
pub(crate) fn csv_record(s: &str) -> Result<Vec<String>, String> {
    let line = s.trim_end_matches(['\r', '\n']);
    if line.is_empty() {
        return Err("failed to parse csv mounts: EOF".into());
    }
    let chars: Vec<char> = line.chars().collect();
    let mut fields = Vec::new();
    let mut i = 0;
    loop {
        let mut field = String::new();
        if chars.get(i) == Some(&'"') {
            i += 1;
            loop {
                match chars.get(i) {
                    None => {
                        return Err(
                            "failed to parse csv mounts: extraneous or missing \" in quoted-field"
                                .into(),
                        );
                    }
                    Some('"') if chars.get(i + 1) == Some(&'"') => {
                        field.push('"');
                        i += 2;
                    }
                    Some('"') => {
                        i += 1;
                        break;
                    }
                    Some(c) => {
                        field.push(*c);
                        i += 1;
                    }
                }
            }
            match chars.get(i) {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => {
                    fields.push(field);
                    i += 1;
                }
                Some(_) => {
                    return Err(
                        "failed to parse csv mounts: extraneous or missing \" in quoted-field"
                            .into(),
                    );
                }
            }
        } else {
            while let Some(c) = chars.get(i) {
                match c {
                    ',' => break,
                    '"' => {
                        return Err(
                            "failed to parse csv mounts: bare \" in non-quoted-field".into()
                        );
                    }
                    c => field.push(*c),
                }
                i += 1;
            }
            fields.push(field);
            if i >= chars.len() {
                return Ok(fields);
            }
            i += 1;
        }
    }
}

fn kind_of(value: &str) -> Option<MountKind> {
    Some(match value.to_ascii_lowercase().as_str() {
        "bind" => MountKind::Bind,
        "cache" => MountKind::Cache,
        "tmpfs" => MountKind::Tmpfs,
        "secret" => MountKind::Secret,
        "ssh" => MountKind::Ssh,
        _ => return None,
    })
}

/// Parses a mount flag value. Values are kept unexpanded; [`validate`] runs after expansion.
pub(crate) fn parse_mount(value: &str) -> Result<Mount, String> {
    let fields = csv_record(value)?;
    let mut m = Mount {
        kind: MountKind::Bind,
        target: None,
        options: Vec::new(),
    };
    for field in fields {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v.to_string())),
            None => (field.to_ascii_lowercase(), None),
        };
        let Some(val) = val else {
            match key.as_str() {
                "readonly" | "ro" | "readwrite" | "rw" | "required" => {
                    m.options.push((key, "true".into()));
                    continue;
                }
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
        };
        if !KEYS.contains(&key.as_str()) {
            return Err(format!(
                "unexpected key '{key}' in '{field}'{}",
                did_you_mean(&key, KEYS.iter().copied())
            ));
        }
        match key.as_str() {
            "type" => {
                m.kind = kind_of(&val).ok_or_else(|| {
                    format!(
                        "unsupported mount type {val:?}{}",
                        did_you_mean(&val, ["bind", "cache", "tmpfs", "secret", "ssh"])
                    )
                })?;
            }
            "from" if val.contains('$') && val.len() > val.find('$').map_or(0, |i| i + 1) => {
                return Err(format!(
                    "'{key}' doesn't support variable expansion, define alias stage instead"
                ));
            }
            "target" | "dst" | "destination" => m.target = Some(val),
            _ => m.options.push((key, val)),
        }
    }
    Ok(m)
}

fn parse_bool(key: &str, v: &str) -> Result<bool, String> {
    // BuildKit's message, which drops strconv's.
    crate::go_parse::parse_bool(v).map_err(|_| {
        format!("invalid value for {key}: {v} (expected true or false, as Go's strconv.ParseBool reads them)")
    })
}

/// Checks a mount after expansion, with BuildKit's rules and messages.
pub(crate) fn validate(m: &Mount) -> Result<(), String> {
    let file_info_allowed = matches!(
        m.kind,
        MountKind::Secret | MountKind::Ssh | MountKind::Cache
    );
    let kind = format!("{:?}", m.kind).to_ascii_lowercase();
    let get = |k: &str| {
        m.options
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    for (key, v) in &m.options {
        match key.as_str() {
            "readonly" | "ro" | "readwrite" | "rw" => {
                parse_bool(key, v)?;
            }
            "required" => {
                if !matches!(m.kind, MountKind::Secret | MountKind::Ssh) {
                    return Err(format!("unexpected key '{key}' for mount type '{kind}'"));
                }
                parse_bool(key, v)?;
            }
            "sharing" => {
                if !matches!(
                    v.to_ascii_lowercase().as_str(),
                    "shared" | "private" | "locked"
                ) {
                    return Err(format!("unsupported sharing value {v:?}"));
                }
                if m.kind != MountKind::Cache {
                    return Err(format!("invalid cache sharing set for {kind} mount"));
                }
            }
            "mode" => {
                u32::from_str_radix(v, 8).map_err(|_| format!("invalid value {v} for mode"))?;
                if !file_info_allowed {
                    return Err(format!("mode not allowed for {kind:?} type mounts"));
                }
            }
            "uid" | "gid" => {
                v.parse::<u32>()
                    .map_err(|_| format!("invalid value {v} for {key}"))?;
                if !file_info_allowed {
                    return Err(format!("{key} not allowed for {kind:?} type mounts"));
                }
            }
            "size" if m.kind != MountKind::Tmpfs => {
                return Err(format!("size not allowed for {kind:?} type mounts"));
            }
            "env" if m.kind != MountKind::Secret => {
                return Err(format!("env not allowed for {kind:?} type mounts"));
            }
            _ => {}
        }
    }
    if m.kind == MountKind::Secret {
        if get("from").is_some() {
            return Err("secret mount should not have a from".into());
        }
        let source = get("source").or(get("src"));
        if source.is_none() && m.target.is_none() && get("id").is_none() && get("env").is_none() {
            return Err("invalid secret mount. one of source, target required".into());
        }
        if source.is_some() && get("id").is_some() {
            return Err("both source and id can't be set".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv() {
        assert_eq!(
            csv_record("a=1,b=2").unwrap_or_default(),
            vec!["a=1", "b=2"]
        );
        assert_eq!(
            csv_record("\"a=1,2\",b").unwrap_or_default(),
            vec!["a=1,2", "b"]
        );
        assert!(csv_record("a\"b").is_err());
    }

    #[test]
    fn mounts() {
        let m = parse_mount("type=cache,target=/root/.cache,sharing=locked")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(m.kind, MountKind::Cache);
        assert_eq!(m.target.as_deref(), Some("/root/.cache"));
        assert!(validate(&m).is_ok());
        assert!(
            parse_mount("type=cach")
                .unwrap_err()
                .contains("did you mean \"cache\"")
        );
        assert!(parse_mount("from=$X").is_err());
        let m = parse_mount("type=bind,uid=1").unwrap_or_else(|e| panic!("{e}"));
        assert!(validate(&m).is_err());
    }
}
