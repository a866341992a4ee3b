//! `RUN --mount=...` values: a CSV record of `key=value` fields, as BuildKit reads them
//! (`instructions/commands_runmount.go`).

use crate::suggest::did_you_mean;
use crate::{BindMount, CacheMount, CacheSharing, Mount, MountFlag, MountKind, SecretMount, SshMount, TmpfsMount};

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
                        return Err("failed to parse csv mounts: extraneous or missing \" in quoted-field".into());
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
                    return Err("failed to parse csv mounts: extraneous or missing \" in quoted-field".into());
                }
            }
        } else {
            while let Some(c) = chars.get(i) {
                match c {
                    ',' => break,
                    '"' => {
                        return Err("failed to parse csv mounts: bare \" in non-quoted-field".into());
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

/// Parses a mount flag value. Values are kept unexpanded; [`typed`] runs after expansion.
pub(crate) fn parse_mount(value: &str) -> Result<MountFlag, String> {
    let fields = csv_record(value)?;
    let mut m = MountFlag { kind: MountKind::Bind, fields: Vec::new() };
    for field in fields {
        let (key, val) = match field.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(v.to_string())),
            None => (field.to_ascii_lowercase(), None),
        };
        let Some(val) = val else {
            match key.as_str() {
                "readonly" | "ro" | "readwrite" | "rw" | "required" => {
                    m.fields.push((key, "true".into()));
                    continue;
                }
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
            }
        };
        if !KEYS.contains(&key.as_str()) {
            return Err(format!("unexpected key '{key}' in '{field}'{}", did_you_mean(&key, KEYS.iter().copied())));
        }
        match key.as_str() {
            "type" => {
                m.kind = kind_of(&val)
                    .ok_or_else(|| format!("unsupported mount type {val:?}{}", did_you_mean(&val, ["bind", "cache", "tmpfs", "secret", "ssh"])))?;
            }
            "from" if val.contains('$') && val.len() > val.find('$').map_or(0, |i| i + 1) => {
                return Err(format!("'{key}' doesn't support variable expansion, define alias stage instead"));
            }
            _ => m.fields.push((key, val)),
        }
    }
    Ok(m)
}

fn parse_bool(key: &str, v: &str) -> Result<bool, String> {
    // BuildKit's message, which drops strconv's.
    crate::go_parse::parse_bool(v).map_err(|_| format!("invalid value for {key}: {v} (expected true or false, as Go's strconv.ParseBool reads them)"))
}

/// `size=` of a tmpfs: bytes, or with a k/m/g/t suffix (binary multiples, an optional `b`,
/// any case, a fraction allowed), as docker's RAMInBytes reads them.
pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1u64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    let n: f64 = num.trim().parse().map_err(|_| format!("invalid size {text:?} (use bytes or 64m, 1g)"))?;
    if n < 0.0 || !n.is_finite() {
        return Err(format!("invalid size {text:?}"));
    }
    Ok((n * mult as f64) as u64)
}

/// The mount's fields after expansion, checked with BuildKit's rules and messages.
#[derive(Default)]
struct Fields {
    target: Option<String>,
    from: Option<String>,
    source: Option<String>,
    id: Option<String>,
    env: Option<String>,
    read_only: Option<bool>,
    required: bool,
    sharing: Option<CacheSharing>,
    mode: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    size: Option<u64>,
}

/// Types a mount after expansion, with BuildKit's rules and messages; the last of repeated
/// fields wins.
pub(crate) fn typed(m: &MountFlag) -> Result<Mount, String> {
    let file_info_allowed = matches!(m.kind, MountKind::Secret | MountKind::Ssh | MountKind::Cache);
    let kind = format!("{:?}", m.kind).to_ascii_lowercase();
    let mut f = Fields::default();
    for (key, v) in &m.fields {
        match key.as_str() {
            "target" | "dst" | "destination" => f.target = Some(v.clone()),
            "from" => f.from = Some(v.clone()),
            "source" | "src" => f.source = Some(v.clone()),
            "id" => f.id = Some(v.clone()),
            "readonly" | "ro" => f.read_only = Some(parse_bool(key, v)?),
            "readwrite" | "rw" => f.read_only = Some(!parse_bool(key, v)?),
            "required" => {
                if !matches!(m.kind, MountKind::Secret | MountKind::Ssh) {
                    return Err(format!("unexpected key '{key}' for mount type '{kind}'"));
                }
                f.required = parse_bool(key, v)?;
            }
            "sharing" => {
                let sharing = match v.to_ascii_lowercase().as_str() {
                    "shared" => CacheSharing::Shared,
                    "private" => CacheSharing::Private,
                    "locked" => CacheSharing::Locked,
                    _ => return Err(format!("unsupported sharing value {v:?}")),
                };
                if m.kind != MountKind::Cache {
                    return Err(format!("invalid cache sharing set for {kind} mount"));
                }
                f.sharing = Some(sharing);
            }
            "mode" => {
                let mode = u32::from_str_radix(v, 8).map_err(|_| format!("invalid value {v} for mode"))?;
                if !file_info_allowed {
                    return Err(format!("mode not allowed for {kind:?} type mounts"));
                }
                f.mode = Some(mode);
            }
            "uid" | "gid" => {
                let id = v.parse::<u32>().map_err(|_| format!("invalid value {v} for {key}"))?;
                if !file_info_allowed {
                    return Err(format!("{key} not allowed for {kind:?} type mounts"));
                }
                if key == "uid" {
                    f.uid = Some(id);
                } else {
                    f.gid = Some(id);
                }
            }
            "size" => {
                if m.kind != MountKind::Tmpfs {
                    return Err(format!("size not allowed for {kind:?} type mounts"));
                }
                f.size = Some(parse_size(v)?);
            }
            "env" => {
                if m.kind != MountKind::Secret {
                    return Err(format!("env not allowed for {kind:?} type mounts"));
                }
                f.env = Some(v.clone());
            }
            _ => {}
        }
    }
    Ok(match m.kind {
        MountKind::Bind => Mount::Bind(BindMount { target: f.target, from: f.from, source: f.source, read_only: f.read_only.unwrap_or(true) }),
        MountKind::Cache => Mount::Cache(CacheMount {
            target: f.target,
            id: f.id,
            sharing: f.sharing.unwrap_or_default(),
            read_only: f.read_only.unwrap_or(false),
            from: f.from,
            source: f.source,
            mode: f.mode,
            uid: f.uid,
            gid: f.gid,
        }),
        MountKind::Tmpfs => Mount::Tmpfs(TmpfsMount { target: f.target, size: f.size }),
        MountKind::Secret => {
            if f.from.is_some() {
                return Err("secret mount should not have a from".into());
            }
            if f.source.is_none() && f.target.is_none() && f.id.is_none() && f.env.is_none() {
                return Err("invalid secret mount. one of source, target required".into());
            }
            if f.source.is_some() && f.id.is_some() {
                return Err("both source and id can't be set".into());
            }
            Mount::Secret(SecretMount { id: f.id.or(f.source), target: f.target, env: f.env, required: f.required, mode: f.mode, uid: f.uid, gid: f.gid })
        }
        MountKind::Ssh => Mount::Ssh(SshMount { id: f.id, target: f.target, required: f.required, mode: f.mode, uid: f.uid, gid: f.gid }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv() {
        assert_eq!(csv_record("a=1,b=2").unwrap_or_default(), vec!["a=1", "b=2"]);
        assert_eq!(csv_record("\"a=1,2\",b").unwrap_or_default(), vec!["a=1,2", "b"]);
        assert!(csv_record("a\"b").is_err());
    }

    /// Parses and types `text` as if no expansion were needed.
    fn mount(text: &str) -> Result<Mount, String> {
        typed(&parse_mount(text)?)
    }

    fn ok(text: &str) -> Mount {
        mount(text).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn err(text: &str) -> String {
        match mount(text) {
            Ok(m) => panic!("{text}: accepted as {m:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn parse_errors() {
        assert!(err("type=cach").contains("did you mean \"cache\""));
        assert!(parse_mount("from=$X").is_err());
        assert!(parse_mount("from=a$").is_ok(), "a trailing $ is no expansion");
        assert!(err("targte=/x").starts_with("unexpected key 'targte' in 'targte=/x'"));
        assert_eq!(err("target"), "invalid field 'target' must be a key=value pair");
        assert_eq!(err(""), "failed to parse csv mounts: EOF");
    }

    #[test]
    fn bind() {
        let want = BindMount { target: Some("/src".into()), from: None, source: None, read_only: true };
        assert_eq!(ok("target=/src"), Mount::Bind(want.clone()), "bind is the default type, read-only");
        assert_eq!(
            ok("type=bind,from=build,src=/out,dst=/o,rw"),
            Mount::Bind(BindMount { target: Some("/o".into()), from: Some("build".into()), source: Some("/out".into()), read_only: false })
        );
        assert_eq!(ok("target=/src,readonly=false").kind(), MountKind::Bind);
        let rw = |t: &str| match ok(t) {
            Mount::Bind(b) => !b.read_only,
            m => panic!("{m:?}"),
        };
        assert!(rw("target=/a,ro=false"), "readonly=false makes it writable, as in BuildKit");
        assert!(!rw("target=/a,rw,ro"), "the last of ro/rw wins");
        assert!(rw("target=/a,ro,readwrite=1"));
        assert!(!rw("target=/a,readwrite=false"));
        assert_eq!(err("target=/a,rw=yes"), "invalid value for rw: yes (expected true or false, as Go's strconv.ParseBool reads them)");
        assert_eq!(err("target=/x,uid=1"), "uid not allowed for \"bind\" type mounts");
        assert_eq!(err("target=/x,gid=1"), "gid not allowed for \"bind\" type mounts");
        assert_eq!(err("target=/x,mode=0644"), "mode not allowed for \"bind\" type mounts");
        assert_eq!(err("target=/a,sharing=locked"), "invalid cache sharing set for bind mount");
        assert_eq!(err("target=/a,env=X"), "env not allowed for \"bind\" type mounts");
        assert_eq!(err("target=/a,required"), "unexpected key 'required' for mount type 'bind'");
    }

    #[test]
    fn cache() {
        assert_eq!(
            ok("type=cache,id=apt,target=/var/cache/apt,sharing=locked,mode=0700,uid=1000,gid=1001"),
            Mount::Cache(CacheMount {
                target: Some("/var/cache/apt".into()),
                id: Some("apt".into()),
                sharing: CacheSharing::Locked,
                read_only: false,
                from: None,
                source: None,
                mode: Some(0o700),
                uid: Some(1000),
                gid: Some(1001),
            })
        );
        let cache = |t: &str| match ok(t) {
            Mount::Cache(c) => c,
            m => panic!("{m:?}"),
        };
        assert_eq!(cache("type=cache,target=/c").sharing, CacheSharing::Shared, "shared by default");
        assert_eq!(cache("type=cache,target=/c,sharing=PRIVATE").sharing, CacheSharing::Private);
        assert!(!cache("type=cache,target=/c").read_only, "a cache is writable by default");
        assert!(cache("type=cache,target=/c,ro").read_only);
        assert!(cache("type=cache,target=/c,rw=false").read_only);
        assert_eq!(cache("TYPE=Cache,Target=/x").target.as_deref(), Some("/x"));
        assert_eq!(err("type=cache,target=/a,sharing=everyone"), "unsupported sharing value \"everyone\"");
        assert_eq!(err("type=cache,target=/x,mode=0999"), "invalid value 0999 for mode");
        assert_eq!(err("type=cache,target=/x,uid=-1"), "invalid value -1 for uid");
        assert_eq!(err("type=cache,target=/x,gid=x"), "invalid value x for gid");
        assert_eq!(err("type=cache,target=/x,size=1m"), "size not allowed for \"cache\" type mounts");
        assert_eq!(err("type=cache,target=/x,required"), "unexpected key 'required' for mount type 'cache'");
    }

    #[test]
    fn tmpfs() {
        assert_eq!(ok("type=tmpfs,target=/t,size=64m"), Mount::Tmpfs(TmpfsMount { target: Some("/t".into()), size: Some(64 << 20) }));
        assert_eq!(ok("type=tmpfs,target=/t"), Mount::Tmpfs(TmpfsMount { target: Some("/t".into()), size: None }));
        assert_eq!(err("type=tmpfs,target=/t,size=lots"), "invalid size \"lots\" (use bytes or 64m, 1g)");
        assert_eq!(err("type=tmpfs,target=/t,mode=0755"), "mode not allowed for \"tmpfs\" type mounts");
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024"), Ok(1024));
        assert_eq!(parse_size("64m"), Ok(64 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("512kb"), Ok(512 << 10));
        assert_eq!(parse_size("2t"), Ok(2 << 40));
        assert_eq!(parse_size("1.5k"), Ok(1536));
        assert!(parse_size("lots").is_err());
        assert_eq!(parse_size("-1"), Err("invalid size \"-1\"".into()));
    }

    #[test]
    fn secret() {
        assert_eq!(
            ok("type=secret,id=aws,required=true,mode=0440,uid=1000,gid=2,env=AWS"),
            Mount::Secret(SecretMount {
                id: Some("aws".into()),
                target: None,
                env: Some("AWS".into()),
                required: true,
                mode: Some(0o440),
                uid: Some(1000),
                gid: Some(2),
            })
        );
        let secret = |t: &str| match ok(t) {
            Mount::Secret(s) => s,
            m => panic!("{m:?}"),
        };
        assert_eq!(secret("type=secret,source=npmrc").id.as_deref(), Some("npmrc"), "source is the id of a secret");
        assert_eq!(secret("type=secret,target=/root/.npmrc").id, None);
        assert!(secret("type=secret,id=x,required").required);
        assert!(!secret("type=secret,id=x,required=false").required);
        assert_eq!(secret("type=secret,env=TOKEN").env.as_deref(), Some("TOKEN"));
        assert_eq!(err("type=secret"), "invalid secret mount. one of source, target required");
        assert_eq!(err("type=secret,id=x,from=s"), "secret mount should not have a from");
        assert_eq!(err("type=secret,id=x,src=y"), "both source and id can't be set");
        assert_eq!(err("type=secret,id=x,mode=rw"), "invalid value rw for mode");
        assert_eq!(err("type=secret,id=x,required=maybe"), "invalid value for required: maybe (expected true or false, as Go's strconv.ParseBool reads them)");
        assert_eq!(err("type=secret,id=x,size=1"), "size not allowed for \"secret\" type mounts");
    }

    #[test]
    fn ssh() {
        assert_eq!(
            ok("type=ssh,id=default,required,target=/run/ssh.sock,mode=0600,uid=1,gid=2"),
            Mount::Ssh(SshMount {
                id: Some("default".into()),
                target: Some("/run/ssh.sock".into()),
                required: true,
                mode: Some(0o600),
                uid: Some(1),
                gid: Some(2),
            })
        );
        assert_eq!(err("type=ssh,env=X"), "env not allowed for \"ssh\" type mounts");
    }

    #[test]
    fn the_last_repeated_field_wins() {
        assert_eq!(ok("target=/a,target=/b").target(), Some("/b"));
        match ok("type=cache,target=/c,mode=0700,mode=0755") {
            Mount::Cache(c) => assert_eq!(c.mode, Some(0o755)),
            m => panic!("{m:?}"),
        }
    }
}
