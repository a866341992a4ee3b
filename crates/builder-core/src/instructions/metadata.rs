//! Instructions that change only the image config: ENV, ARG, LABEL, USER, CMD, ENTRYPOINT,
//! EXPOSE, VOLUME, STOPSIGNAL, HEALTHCHECK, SHELL, MAINTAINER, ONBUILD.

use super::fail;
use crate::error::BuildError;
use crate::stage::StageRun;
use crate::step_context::StepContext;
use serde_json::{Value, json};
use strata_dockerfile::{Command, Healthcheck, Instruction, InstructionKind};

/// Go's `%q` of a string slice, as BuildKit writes CMD and friends into history.
fn go_quoted(args: &[String]) -> String {
    let parts: Vec<String> = args.iter().map(|a| serde_json::to_string(a).unwrap_or_default()).collect();
    format!("[{}]", parts.join(" "))
}

/// The argv of a CMD/ENTRYPOINT/HEALTHCHECK command.
fn argv(shell: &[String], cmd: &Command) -> Vec<String> {
    match cmd {
        Command::Exec(a) => a.clone(),
        Command::Shell(s) => {
            let mut v = shell.to_vec();
            v.push(s.clone());
            v
        }
    }
}

/// Expands an EXPOSE word (`80`, `53/udp`, `8000-8002/tcp`) into `port/proto` keys.
pub fn expose_ports(word: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = match word.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (word, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid protocol {proto:?} in {word:?}: use tcp, udp or sctp"));
    }
    let parse = |s: &str| s.parse::<u16>().map_err(|_| format!("invalid port {s:?} in {word:?}"));
    let (start, end) = match ports.split_once('-') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => (parse(ports)?, parse(ports)?),
    };
    if end < start {
        return Err(format!("invalid port range {word:?}"));
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

pub(crate) fn execute(b: &mut dyn StepContext, st: &mut StageRun, inst: &Instruction) -> Result<(), BuildError> {
    let shell = st.shell();
    let cfg = &mut st.config.config;
    let created_by = match &inst.kind {
        InstructionKind::Env(pairs) => {
            for (k, v) in pairs {
                st.config.set_env(k, v);
            }
            let shown: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("ENV {}", shown.join(" "))
        }
        InstructionKind::Arg(args) => {
            let shown: Vec<String> = args
                .iter()
                .map(|(k, v)| match v {
                    Some(v) => format!("{k}={v}"),
                    None => k.clone(),
                })
                .collect();
            format!("ARG {}", shown.join(" "))
        }
        InstructionKind::Label(pairs) => {
            let labels = cfg.labels.get_or_insert_with(Default::default);
            for (k, v) in pairs {
                labels.insert(k.clone(), v.clone());
            }
            let shown: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("LABEL {}", shown.join(" "))
        }
        InstructionKind::Maintainer(m) => {
            st.config.author = Some(m.clone());
            format!("MAINTAINER {m}")
        }
        InstructionKind::User(u) => {
            cfg.user = Some(u.clone());
            format!("USER {u}")
        }
        InstructionKind::Cmd(c) => {
            let v = argv(&shell, c);
            cfg.cmd = Some(v.clone());
            cfg.args_escaped = None;
            st.cmd_set_here = true;
            format!("CMD {}", go_quoted(&v))
        }
        InstructionKind::Entrypoint(c) => {
            let v = argv(&shell, c);
            cfg.entrypoint = Some(v.clone());
            if !st.cmd_set_here {
                cfg.cmd = None;
            }
            format!("ENTRYPOINT {}", go_quoted(&v))
        }
        InstructionKind::Expose(words) => {
            let ports = cfg.exposed_ports.get_or_insert_with(Default::default);
            let mut keys = Vec::new();
            for w in words {
                for p in expose_ports(w).map_err(|m| fail(b, inst, m))? {
                    ports.insert(p.clone(), json!({}));
                    keys.push(p);
                }
            }
            let shown: Vec<String> = keys.iter().map(|k| format!("{k}:{{}}")).collect();
            format!("EXPOSE map[{}]", shown.join(" "))
        }
        InstructionKind::Volume(vols) => {
            let map = cfg.volumes.get_or_insert_with(Default::default);
            for v in vols {
                map.insert(v.clone(), json!({}));
            }
            format!("VOLUME {}", go_quoted(vols))
        }
        InstructionKind::Stopsignal(s) => {
            cfg.stop_signal = Some(s.clone());
            format!("STOPSIGNAL {s}")
        }
        InstructionKind::Shell(s) => {
            cfg.shell = Some(s.clone());
            format!("SHELL {}", go_quoted(s))
        }
        InstructionKind::Healthcheck(h) => {
            let value = match h {
                Healthcheck::None => json!({"Test": ["NONE"]}),
                Healthcheck::Check { command, interval, timeout, start_period, start_interval, retries } => {
                    let test: Vec<String> = match command {
                        Command::Exec(a) => std::iter::once("CMD".to_string()).chain(a.iter().cloned()).collect(),
                        Command::Shell(s) => vec!["CMD-SHELL".into(), s.clone()],
                    };
                    let mut obj = serde_json::Map::new();
                    obj.insert("Test".into(), json!(test));
                    for (key, val) in [("Interval", interval), ("Timeout", timeout), ("StartPeriod", start_period), ("StartInterval", start_interval)] {
                        if let Some(d) = val {
                            obj.insert(key.into(), json!(strata_dockerfile::go_parse::GoDuration::from(*d).nanos()));
                        }
                    }
                    if let Some(r) = retries {
                        obj.insert("Retries".into(), json!(r));
                    }
                    Value::Object(obj)
                }
            };
            cfg.healthcheck = Some(value);
            format!("HEALTHCHECK {}", inst.original.split_once(' ').map_or("", |(_, rest)| rest))
        }
        InstructionKind::Onbuild(trigger) => {
            cfg.on_build.get_or_insert_with(Vec::new).push(trigger.original.clone());
            format!("ONBUILD {}", trigger.original)
        }
        InstructionKind::Run(_) | InstructionKind::Copy(_) | InstructionKind::Add(_) | InstructionKind::Workdir(_) => {
            return Err(fail(b, inst, "internal error: not a metadata instruction"));
        }
    };
    st.history_metadata(created_by);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_ports() {
        assert_eq!(expose_ports("80").expect("port"), vec!["80/tcp"]);
        assert_eq!(expose_ports("53/UDP").expect("port"), vec!["53/udp"]);
        assert_eq!(expose_ports("8000-8002").expect("range").len(), 3);
        assert!(expose_ports("99999").is_err());
    }
}
