//! BuildKit's build checks that need only the parsed file, reported as warnings with the
//! rule name BuildKit uses (see docs.docker.com/reference/build-checks).

use crate::words::{parse_words, split_command};
use crate::{Command, Dockerfile, Instruction, InstructionKind, Warning};

fn warn(out: &mut Vec<Warning>, line: usize, rule: &str, message: String) {
    out.push(Warning { line: Some(line), message: format!("{rule}: {message}") });
}

/// The FROM line's words as written (keyword and `AS` casing matter here).
fn from_words(df: &Dockerfile, start: usize, end: usize) -> Vec<String> {
    let text: Vec<&str> = (start..=end).filter_map(|l| df.source_lines.get(l.wrapping_sub(1))).map(String::as_str).collect();
    text.join(" ").split_whitespace().filter(|w| !w.starts_with("--") && *w != "\\").map(str::to_string).collect()
}

fn is_upper(w: &str) -> bool {
    w.chars().all(|c| !c.is_lowercase())
}

fn check_instruction(inst: &Instruction, escape: char, out: &mut Vec<Warning>) {
    let line = inst.span.start_line;
    match &inst.kind {
        InstructionKind::Cmd(Command::Shell(_)) | InstructionKind::Entrypoint(Command::Shell(_)) => warn(
            out,
            line,
            "JSONArgsRecommended",
            format!("JSON arguments recommended for {} to prevent unintended behavior related to OS signals", inst.kind.keyword()),
        ),
        InstructionKind::Maintainer(_) => warn(out, line, "MaintainerDeprecated", "Maintainer instruction is deprecated in favor of using label".into()),
        InstructionKind::Env(_) | InstructionKind::Label(_) => {
            let rest = split_command(&inst.original).rest;
            if parse_words(&rest, escape).first().is_some_and(|w| !w.contains('=')) {
                let kw = inst.kind.keyword();
                warn(out, line, "LegacyKeyValueFormat", format!("\"{kw} key=value\" should be used instead of legacy \"{kw} key value\" format"));
            }
        }
        InstructionKind::Expose(ports) => {
            for p in ports {
                if let Some((_, proto)) = p.split_once('/')
                    && proto.chars().any(char::is_uppercase)
                {
                    warn(out, line, "ExposeProtoCasing", format!("Defined protocol '{p}' in EXPOSE instruction should be lowercase"));
                }
            }
        }
        _ => {}
    }
}

/// Runs the checks over the whole file.
pub(crate) fn check(df: &Dockerfile) -> Vec<Warning> {
    let mut out = Vec::new();
    for st in &df.stages {
        let words = from_words(df, st.span.start_line, st.span.end_line);
        if let (Some(from), Some(as_kw)) = (words.first(), words.get(2)) {
            if as_kw.eq_ignore_ascii_case("as") && is_upper(from) != is_upper(as_kw) {
                warn(&mut out, st.span.start_line, "FromAsCasing", "'as' and 'FROM' keywords' casing do not match".into());
            }
            if let Some(name) = words.get(3)
                && name.chars().any(char::is_uppercase)
            {
                warn(&mut out, st.span.start_line, "StageNameCasing", format!("Stage name '{name}' should be lowercase"));
            }
        }
        if let Some(name) = st.name.as_deref().filter(|n| matches!(*n, "scratch" | "context")) {
            warn(&mut out, st.span.start_line, "ReservedStageName", format!("'{name}' is reserved and should not be used as a stage name"));
        }
        let mut workdir_set = false;
        let mut seen: Vec<(&str, usize)> = Vec::new();
        for inst in &st.instructions {
            check_instruction(inst, df.escape, &mut out);
            match &inst.kind {
                InstructionKind::Workdir(w) => {
                    // Relative to an unknown base WORKDIR only while this stage set none.
                    // Checked as written: a leading quote or variable may still make it absolute.
                    let bare = w.trim_start_matches(['"', '\'']);
                    let drive = bare.len() >= 2 && bare.as_bytes()[1] == b':';
                    let absolute = bare.starts_with(['/', '$', '\\']) || drive;
                    if !absolute && !workdir_set {
                        warn(
                            &mut out,
                            inst.span.start_line,
                            "WorkdirRelativePath",
                            format!("Relative workdir \"{w}\" can have unexpected results if the base image changes"),
                        );
                    }
                    workdir_set = true;
                }
                InstructionKind::Cmd(_) | InstructionKind::Entrypoint(_) | InstructionKind::Healthcheck(_) => {
                    let kw = inst.kind.keyword();
                    match seen.iter().position(|(k, _)| *k == kw) {
                        Some(i) => seen[i].1 = inst.span.start_line,
                        None => seen.push((kw, 0)),
                    }
                }
                _ => {}
            }
        }
        for (kw, last_dup) in seen {
            if last_dup != 0 {
                warn(
                    &mut out,
                    last_dup,
                    "MultipleInstructionsDisallowed",
                    format!("Multiple {kw} instructions should not be used in the same stage because only the last one will be used"),
                );
            }
        }
    }
    for inst in &df.meta_args {
        check_instruction(inst, df.escape, &mut out);
    }
    out.sort_by_key(|w| w.line);
    out
}
