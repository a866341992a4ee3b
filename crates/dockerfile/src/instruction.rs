//! From logical lines to typed instructions: flags per instruction, exec versus shell
//! form, argument counts, with BuildKit's rules and messages (`instructions/parse.go`).

use crate::error::{Kind, Locator};
use crate::lexer::{LogicalLine, parse_heredoc};
use crate::suggest::did_you_mean;
use crate::words::{Json, parse_json, parse_words, split_command, split_whitespace_delimited};
use crate::{Command, Copy, Dockerfile, Error, Healthcheck, Heredoc, Instruction, InstructionKind, Network, Run, Span, Stage, Warning};

const KEYWORDS: &[&str] = &[
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// A parse failure: the message and, when known, the text it points at.
#[derive(Debug)]
pub(crate) struct Fail {
    pub message: String,
    pub needle: Option<String>,
}

impl Fail {
    fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), needle: None }
    }
    fn at(message: impl Into<String>, needle: &str) -> Self {
        Self { message: message.into(), needle: Some(needle.to_string()) }
    }
}

type R<T> = Result<T, Fail>;

/// The kind of value a flag takes.
#[derive(Clone, Copy, PartialEq)]
enum FlagType {
    Bool,
    String,
    Strings,
}

/// Parsed `--flags` of one instruction (BuildKit's `BFlags`).
struct Flags {
    values: Vec<(String, Vec<String>)>,
}

impl Flags {
    fn parse(keyword: &str, raw: &[String], allowed: &[(&str, FlagType)]) -> R<Self> {
        let mut values: Vec<(String, Vec<String>)> = Vec::new();
        for a in raw {
            let Some(body) = a.strip_prefix("--") else {
                return Err(Fail::at(format!("{keyword}: arg should start with -- : {a}"), a));
            };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some((_, ty)) = allowed.iter().find(|(n, _)| *n == name) else {
                let hint = did_you_mean(name, allowed.iter().map(|(n, _)| *n));
                return Err(Fail::at(format!("{keyword}: unknown flag: --{name}{hint}"), a));
            };
            let seen = values.iter().position(|(n, _)| n == name);
            if seen.is_some() && *ty != FlagType::Strings {
                return Err(Fail::at(format!("{keyword}: duplicate flag specified: --{name}"), a));
            }
            let v = match ty {
                FlagType::Bool => match value {
                    Some("") => {
                        return Err(Fail::at(format!("{keyword}: missing a value on flag: --{name}"), a));
                    }
                    None => "true".to_string(),
                    Some(v) => match v.to_ascii_lowercase().as_str() {
                        "true" => "true".to_string(),
                        "false" => "false".to_string(),
                        _ => {
                            return Err(Fail::at(format!("{keyword}: expecting boolean value for flag --{name}, not: {v}"), a));
                        }
                    },
                },
                FlagType::String | FlagType::Strings => match value {
                    Some(v) => v.to_string(),
                    None => {
                        return Err(Fail::at(format!("{keyword}: missing a value on flag: --{name}"), a));
                    }
                },
            };
            match seen {
                Some(i) => values[i].1.push(v),
                None => values.push((name.to_string(), vec![v])),
            }
        }
        Ok(Self { values })
    }

    fn string(&self, name: &str) -> Option<String> {
        self.values.iter().find(|(n, _)| n == name).and_then(|(_, v)| v.last().cloned())
    }
    fn strings(&self, name: &str) -> Vec<String> {
        self.values.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()).unwrap_or_default()
    }
    fn bool(&self, name: &str) -> bool {
        self.string(name).as_deref() == Some("true")
    }
}

/// What one logical line turned out to be.
pub(crate) enum Parsed {
    From { image: String, name: Option<String>, platform: Option<String> },
    Inst(InstructionKind),
}

fn command(keyword: &str, rest: &str) -> R<Command> {
    match parse_json(rest) {
        Json::Strings(v) => Ok(Command::Exec(v)),
        Json::NotStrings => Err(Fail::new(format!("{keyword}: when using JSON array syntax, arrays must be comprised of strings only"))),
        Json::Other => Ok(Command::Shell(rest.to_string())),
    }
}

fn list(keyword: &str, rest: &str) -> R<(Vec<String>, bool)> {
    match parse_json(rest) {
        Json::Strings(v) => Ok((v, true)),
        Json::NotStrings => Err(Fail::new(format!("{keyword}: when using JSON array syntax, arrays must be comprised of strings only"))),
        Json::Other => Ok((split_whitespace_delimited(rest), false)),
    }
}

fn name_values(keyword: &str, rest: &str, escape: char) -> R<Vec<(String, String)>> {
    let words = parse_words(rest, escape);
    if words.is_empty() {
        return Err(Fail::new(format!("{keyword} requires at least one argument")));
    }
    let mut out = Vec::new();
    if !words[0].contains('=') {
        // The old form `ENV name value`: everything after the first blank is the value.
        let mut parts = rest.splitn(2, crate::words::is_reg_whitespace);
        let name = parts.next().unwrap_or_default();
        let value = parts.next().map(|v| v.trim_start_matches(crate::words::is_reg_whitespace));
        let Some(value) = value else {
            return Err(Fail::new(format!("{keyword} must have two arguments")));
        };
        out.push((name.to_string(), value.to_string()));
    } else {
        for word in words {
            let Some((k, v)) = word.split_once('=') else {
                return Err(Fail::at(format!("{keyword}: syntax error - can't find = in {word:?}. Must be of the form: name=value"), &word));
            };
            out.push((k.to_string(), v.to_string()));
        }
    }
    if out.iter().any(|(k, _)| k.is_empty()) {
        return Err(Fail::new(format!("{keyword} names can not be blank")));
    }
    Ok(out)
}

fn one_arg(keyword: &str, rest: &str) -> R<String> {
    if rest.is_empty() {
        return Err(Fail::new(format!("{keyword} requires exactly one argument")));
    }
    Ok(rest.to_string())
}

/// BuildKit's `parseOptInterval`: a Go duration; empty or zero is unset, anything else
/// below 1ms (negative included) is refused.
fn interval(keyword: &str, name: &str, v: Option<String>) -> R<Option<std::time::Duration>> {
    let Some(v) = v else { return Ok(None) };
    if v.is_empty() {
        return Ok(None);
    }
    let d = crate::go_parse::parse_duration(&v).map_err(|e| Fail::at(format!("{keyword}: {e} for --{name}"), &v))?;
    if d.nanos() == 0 {
        return Ok(None);
    }
    match d.to_std() {
        Some(d) if d >= std::time::Duration::from_millis(1) => Ok(Some(d)),
        _ => Err(Fail::at(format!("{keyword}: Interval {name:?} cannot be less than 1ms"), &v)),
    }
}

fn healthcheck(rest: &str, flags: &[String]) -> R<Healthcheck> {
    let kw = "HEALTHCHECK";
    let sep = rest.find(char::is_whitespace).unwrap_or(rest.len());
    if sep == 0 {
        return Err(Fail::new(format!("{kw} requires at least one argument")));
    }
    let typ = rest[..sep].to_ascii_uppercase();
    let args = rest[sep..].trim_start();
    if typ == "NONE" {
        if !args.is_empty() {
            return Err(Fail::new("HEALTHCHECK NONE takes no arguments"));
        }
        return Ok(Healthcheck::None);
    }
    use FlagType::String as S;
    let f = Flags::parse(kw, flags, &[("interval", S), ("timeout", S), ("start-period", S), ("start-interval", S), ("retries", S)])?;
    if typ != "CMD" {
        return Err(Fail::new(format!("Unknown type {:?} in HEALTHCHECK (try CMD)", &rest[..sep])));
    }
    let cmd = command(kw, args)?;
    let empty = match &cmd {
        Command::Exec(v) => v.is_empty(),
        Command::Shell(s) => s.is_empty(),
    };
    if empty {
        return Err(Fail::new("Missing command after HEALTHCHECK CMD"));
    }
    let retries = match f.string("retries").filter(|r| !r.is_empty()) {
        None => None,
        Some(r) => {
            let n: i64 = r.parse().map_err(|_| Fail::at(format!("{kw}: strconv.ParseInt: parsing {r:?}: invalid syntax for --retries"), &r))?;
            if n < 0 {
                return Err(Fail::at(format!("--retries cannot be negative ({n})"), &r));
            }
            Some(u32::try_from(n).map_err(|_| Fail::at(format!("{kw}: --retries {n} is too large"), &r))?)
        }
    };
    Ok(Healthcheck::Check {
        command: cmd,
        interval: interval(kw, "interval", f.string("interval"))?,
        timeout: interval(kw, "timeout", f.string("timeout"))?,
        start_period: interval(kw, "start-period", f.string("start-period"))?,
        start_interval: interval(kw, "start-interval", f.string("start-interval"))?,
        retries,
    })
}

fn copy_like(keyword: &str, rest: &str, flags: &[String], heredocs: &[Heredoc]) -> R<Copy> {
    use FlagType::{Bool as B, String as S, Strings as SS};
    let f = if keyword == "COPY" {
        Flags::parse(keyword, flags, &[("from", S), ("chown", S), ("chmod", S), ("link", B), ("parents", B), ("exclude", SS)])?
    } else {
        Flags::parse(keyword, flags, &[("chown", S), ("chmod", S), ("link", B), ("keep-git-dir", B), ("checksum", S), ("exclude", SS), ("unpack", B)])?
    };
    let (args, json) = list(keyword, rest)?;
    if args.len() < 2 {
        return Err(Fail::new(format!("{keyword} requires at least two arguments, but only one was provided. Destination could not be determined")));
    }
    let dest = args[args.len() - 1].clone();
    if !json && !heredocs.is_empty() {
        // `COPY << EOF /dest`: the lexer read the body (as BuildKit's parser does), but
        // BuildKit's COPY splits the words on blanks and copies files named `<<` and `EOF`.
        let bare = |w: &str| w.split_once("<<").is_some_and(|(fd, dash)| fd.chars().all(|c| c.is_ascii_digit()) && (dash.is_empty() || dash == "-"));
        if let Some(w) = args.iter().find(|w| bare(w)) {
            return Err(Fail::at(
                format!(
                    "{keyword}: a blank after {w:?} makes BuildKit copy files named {w:?} and the delimiter, not a heredoc; write the delimiter right after it, as in {keyword} <<EOF /dest (RUN accepts the blank)"
                ),
                w,
            ));
        }
    }
    let mut sources = Vec::new();
    let mut docs = Vec::new();
    for src in &args[..args.len() - 1] {
        let inline = if json { None } else { parse_heredoc(src) };
        match inline {
            Some((h, _)) => {
                let body = heredocs.iter().find(|d| d.name == h.name).cloned().unwrap_or(h);
                docs.push(body);
            }
            None => sources.push(src.clone()),
        }
    }
    if !json && parse_heredoc(&dest).is_some() {
        return Err(Fail::at(format!("{keyword} cannot accept a heredoc as a destination"), &dest));
    }
    Ok(Copy {
        sources,
        dest,
        heredocs: docs,
        from: f.string("from"),
        chown: f.string("chown"),
        chmod_flag: f.string("chmod"),
        chmod: None,
        link: f.bool("link"),
        parents: f.bool("parents"),
        exclude: f.strings("exclude"),
        checksum: f.string("checksum"),
        keep_git_dir: f.bool("keep-git-dir"),
        unpack: f.string("unpack").map(|v| v == "true"),
    })
}

fn no_flags(keyword: &str, flags: &[String]) -> R<()> {
    Flags::parse(keyword, flags, &[]).map(|_| ())
}

/// Parses one logical line (already split) into what it says.
pub(crate) fn parse_line(text: &str, heredocs: &[Heredoc], escape: char) -> R<Parsed> {
    let split = split_command(text);
    let kw = split.keyword.to_ascii_uppercase();
    let rest = split.rest.as_str();
    let flags = &split.flags;
    let kind = match kw.as_str() {
        "FROM" => {
            let f = Flags::parse("FROM", flags, &[("platform", FlagType::String)])?;
            let args = split_whitespace_delimited(rest);
            let name = match args.len() {
                1 => None,
                3 if args[1].eq_ignore_ascii_case("as") => {
                    let name = args[2].to_ascii_lowercase();
                    let mut chars = name.chars();
                    let ok = chars.next().is_some_and(|c| c.is_ascii_lowercase())
                        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c));
                    if !ok {
                        return Err(Fail::at(
                            format!("invalid name for build stage: {:?}, name can't start with a number or contain symbols", args[2]),
                            &args[2],
                        ));
                    }
                    Some(name)
                }
                _ => return Err(Fail::new("FROM requires either one or three arguments")),
            };
            return Ok(Parsed::From { image: args[0].clone(), name, platform: f.string("platform") });
        }
        "RUN" => {
            use FlagType::{String as S, Strings as SS};
            let f = Flags::parse("RUN", flags, &[("mount", SS), ("network", S), ("security", S)])?;
            let mut mounts = Vec::new();
            for m in f.strings("mount") {
                mounts.push(crate::mount::parse_mount(&m).map_err(|e| Fail::at(format!("RUN --mount: {e}"), &m))?);
            }
            let network = match f.string("network") {
                Some(n) => Some(Network::parse(&n).ok_or_else(|| Fail::at(format!("RUN: unsupported network mode {n:?}"), &n))?),
                None => None,
            };
            if let Some(s) = f.string("security")
                && !matches!(s.as_str(), "sandbox" | "insecure")
            {
                return Err(Fail::at(format!("RUN: unsupported security mode {s:?}"), &s));
            }
            if rest.is_empty() {
                return Err(Fail::new("RUN requires at least one argument"));
            }
            let command = command("RUN", rest)?;
            InstructionKind::Run(Run { command, heredocs: heredocs.to_vec(), mount_flags: mounts, mounts: Vec::new(), network, security: f.string("security") })
        }
        "CMD" | "ENTRYPOINT" => {
            no_flags(&kw, flags)?;
            let cmd = if rest.is_empty() { Command::Exec(Vec::new()) } else { command(&kw, rest)? };
            if kw == "CMD" { InstructionKind::Cmd(cmd) } else { InstructionKind::Entrypoint(cmd) }
        }
        "COPY" => InstructionKind::Copy(copy_like("COPY", rest, flags, heredocs)?),
        "ADD" => InstructionKind::Add(copy_like("ADD", rest, flags, heredocs)?),
        "ENV" => {
            no_flags("ENV", flags)?;
            InstructionKind::Env(name_values("ENV", rest, escape)?)
        }
        "LABEL" => {
            no_flags("LABEL", flags)?;
            InstructionKind::Label(name_values("LABEL", rest, escape)?)
        }
        "ARG" => {
            no_flags("ARG", flags)?;
            let words = parse_words(rest, escape);
            if words.is_empty() {
                return Err(Fail::new("ARG requires at least one argument"));
            }
            let mut args = Vec::new();
            for w in words {
                let (k, v) = match w.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (w.clone(), None),
                };
                if k.is_empty() {
                    return Err(Fail::new("ARG names can not be blank"));
                }
                args.push((k, v));
            }
            InstructionKind::Arg(args)
        }
        "MAINTAINER" => {
            no_flags(&kw, flags)?;
            InstructionKind::Maintainer(one_arg(&kw, rest)?)
        }
        "EXPOSE" => {
            no_flags(&kw, flags)?;
            let ports = split_whitespace_delimited(rest);
            if ports.is_empty() {
                return Err(Fail::new("EXPOSE requires at least one argument"));
            }
            let mut ports = ports;
            // BuildKit sorts the ports (byte order) when it parses EXPOSE.
            ports.sort();
            InstructionKind::Expose(ports)
        }
        "VOLUME" => {
            no_flags(&kw, flags)?;
            let (vols, _) = list(&kw, rest)?;
            if vols.is_empty() {
                return Err(Fail::new("VOLUME requires at least one argument"));
            }
            let mut out = Vec::new();
            for v in vols {
                let v = v.trim();
                if v.is_empty() {
                    return Err(Fail::new("VOLUME specified can not be an empty string"));
                }
                out.push(v.to_string());
            }
            InstructionKind::Volume(out)
        }
        "USER" => {
            no_flags(&kw, flags)?;
            InstructionKind::User(one_arg(&kw, rest)?)
        }
        "WORKDIR" => {
            no_flags(&kw, flags)?;
            InstructionKind::Workdir(one_arg(&kw, rest)?)
        }
        "STOPSIGNAL" => {
            no_flags(&kw, flags)?;
            InstructionKind::Stopsignal(one_arg(&kw, rest)?)
        }
        "HEALTHCHECK" => InstructionKind::Healthcheck(healthcheck(rest, flags)?),
        "SHELL" => {
            no_flags(&kw, flags)?;
            match parse_json(rest) {
                Json::Strings(v) if !v.is_empty() => InstructionKind::Shell(v),
                Json::Strings(_) => return Err(Fail::new("SHELL requires at least one argument")),
                Json::NotStrings => {
                    return Err(Fail::new("SHELL: when using JSON array syntax, arrays must be comprised of strings only"));
                }
                Json::Other if rest.is_empty() => {
                    return Err(Fail::new("SHELL requires at least one argument"));
                }
                Json::Other => {
                    return Err(Fail::new("SHELL requires the arguments to be in JSON form, for example SHELL [\"/bin/sh\", \"-c\"]"));
                }
            }
        }
        "ONBUILD" => {
            no_flags(&kw, flags)?;
            if rest.is_empty() {
                return Err(Fail::new("ONBUILD requires at least one argument"));
            }
            let trigger = split_command(rest).keyword.to_ascii_uppercase();
            match trigger.as_str() {
                "ONBUILD" => {
                    return Err(Fail::new("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed"));
                }
                "FROM" | "MAINTAINER" => {
                    return Err(Fail::new(format!("{trigger} isn't allowed as an ONBUILD trigger")));
                }
                _ => {}
            }
            let inner = match parse_line(rest, heredocs, escape)? {
                Parsed::Inst(k) => k,
                Parsed::From { .. } => {
                    return Err(Fail::new("FROM isn't allowed as an ONBUILD trigger"));
                }
            };
            // The trigger text keeps its heredocs, as BuildKit stores it in the image config.
            let mut original = rest.to_string();
            for h in heredocs {
                original.push('\n');
                original.push_str(&h.content);
                original.push_str(&h.name);
            }
            InstructionKind::Onbuild(Box::new(Instruction { span: Span { start_line: 0, end_line: 0 }, original, kind: inner }))
        }
        _ => {
            return Err(Fail::at(format!("unknown instruction: {}{}", split.keyword, did_you_mean(&kw, KEYWORDS.iter().copied())), &split.keyword));
        }
    };
    Ok(Parsed::Inst(kind))
}

/// Builds the Dockerfile from lexed lines.
pub(crate) fn build(
    file_name: &str,
    source_lines: Vec<String>,
    directives: Vec<(String, String)>,
    escape: char,
    lines: Vec<LogicalLine>,
    warnings: Vec<Warning>,
) -> Result<Dockerfile, Error> {
    let loc = Locator { file: file_name, lines: &source_lines };
    let mut stages: Vec<Stage> = Vec::new();
    let mut meta = Vec::new();
    for line in lines {
        let span = Span { start_line: line.start_line, end_line: line.end_line };
        let parsed = parse_line(&line.text, &line.heredocs, escape).map_err(|f| loc.error(Kind::Syntax, line.start_line, f.needle.as_deref(), f.message))?;
        match parsed {
            Parsed::From { image, name, platform } => {
                if let Some(n) = &name
                    && let Some(prev) = stages.iter().find(|s| s.name.as_ref() == Some(n))
                {
                    return Err(loc.error(
                        Kind::Stage,
                        line.start_line,
                        Some(n),
                        format!("duplicate stage name {n:?}: stage {} on line {} has it already", prev.index, prev.span.start_line),
                    ));
                }
                stages.push(Stage { index: stages.len(), name, from: image, platform, span, instructions: Vec::new() });
            }
            Parsed::Inst(kind) => {
                let mut kind = kind;
                if let InstructionKind::Onbuild(inner) = &mut kind {
                    inner.span = span;
                }
                let inst = Instruction { span, original: line.text.trim().to_string(), kind };
                match stages.last_mut() {
                    Some(stage) => stage.instructions.push(inst),
                    None if matches!(inst.kind, InstructionKind::Arg(_)) => meta.push(inst),
                    None => {
                        return Err(loc.error(
                            Kind::Syntax,
                            line.start_line,
                            None,
                            format!("{} before the first FROM: only ARG may come before FROM (no build stage in current context)", inst.kind.keyword()),
                        ));
                    }
                }
            }
        }
    }
    if stages.is_empty() && meta.is_empty() {
        let last = source_lines.len().max(1);
        return Err(loc.error(Kind::Syntax, last, None, "file with no instructions"));
    }
    Ok(Dockerfile { file_name: file_name.to_string(), directives, escape, meta_args: meta, stages, warnings, source_lines })
}

/// Parses the ONBUILD triggers of a base image, one instruction each.
pub(crate) fn triggers(source: &str, triggers: &[String], escape: char) -> Result<Vec<Instruction>, Error> {
    let text = triggers.join("\n");
    let source_lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let loc = Locator { file: source, lines: &source_lines };
    let lexed = crate::lexer::lex(&text).map_err(|e| loc.error(Kind::Syntax, e.line, None, e.message))?;
    let mut out = Vec::new();
    for line in lexed.lines {
        let span = Span { start_line: line.start_line, end_line: line.end_line };
        let kw = split_command(&line.text).keyword.to_ascii_uppercase();
        if matches!(kw.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
            return Err(loc.error(Kind::Syntax, line.start_line, None, format!("{kw} isn't allowed as an ONBUILD trigger")));
        }
        match parse_line(&line.text, &line.heredocs, escape).map_err(|f| loc.error(Kind::Syntax, line.start_line, f.needle.as_deref(), f.message))? {
            Parsed::Inst(kind) => out.push(Instruction { span, original: line.text.trim().to_string(), kind }),
            Parsed::From { .. } => {
                return Err(loc.error(Kind::Syntax, line.start_line, None, "FROM isn't allowed as an ONBUILD trigger"));
            }
        }
    }
    Ok(out)
}
