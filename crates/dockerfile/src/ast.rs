//! The parsed Dockerfile: directives, stages and instructions with their source spans.
//!
//! Words inside instructions are kept unexpanded here; `plan` and `StageScope` expand them.

use serde::Serialize;
use std::time::Duration;

/// Writes a HEALTHCHECK duration as Go prints it (`1m30s`), as in `docker inspect`'s input.
fn go_duration<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.collect_str(&crate::go_parse::GoDuration::from(*d)),
        None => s.serialize_none(),
    }
}

/// A whole parsed Dockerfile.
#[derive(Debug, Clone, Serialize)]
pub struct Dockerfile {
    /// The file name used in error messages (for example `Dockerfile`).
    pub file_name: String,
    /// Parser directives found at the top (`syntax`, `escape`, `check`).
    pub directives: Vec<(String, String)>,
    /// The escape character in force (`\\` or `` ` ``).
    pub escape: char,
    /// `ARG` instructions before the first `FROM`.
    pub meta_args: Vec<Instruction>,
    /// Stages in file order.
    pub stages: Vec<Stage>,
    /// Non-fatal findings of the parser (empty continuation lines, ...).
    pub warnings: Vec<crate::Warning>,
    /// The physical source lines, for error messages.
    #[serde(skip)]
    pub source_lines: Vec<String>,
}

/// One `FROM` and the instructions up to the next one.
#[derive(Debug, Clone, Serialize)]
pub struct Stage {
    /// Position in the file, 0-based.
    pub index: usize,
    /// The `AS name`, lower-cased, if any.
    pub name: Option<String>,
    /// The FROM image word, unexpanded (`busybox:${TAG}`, `scratch`, or a stage name).
    pub from: String,
    /// `--platform` of the FROM line, unexpanded.
    pub platform: Option<String>,
    /// Location of the FROM line.
    pub span: Span,
    /// The instructions of the stage, FROM excluded.
    pub instructions: Vec<Instruction>,
}

/// Where an instruction stands in the file (1-based lines, inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Span {
    /// First line.
    pub start_line: usize,
    /// Last line, heredoc bodies included.
    pub end_line: usize,
}

/// One instruction with its location and original text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instruction {
    /// Where it stands.
    pub span: Span,
    /// The instruction as written, continuations joined, for history and messages.
    pub original: String,
    /// What it says.
    pub kind: InstructionKind,
}

/// A command in shell form (run through SHELL) or exec form (JSON array).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// Shell form text, unexpanded (RUN/CMD/ENTRYPOINT are never expanded by the builder).
    Shell(String),
    /// Exec form arguments.
    Exec(Vec<String>),
}

/// A heredoc attached to an instruction (`<<EOF ... EOF`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    /// The delimiter word without quotes.
    pub name: String,
    /// The body, with leading tabs already stripped for `<<-`.
    pub content: String,
    /// Whether `$VAR` in the body is expanded (false when the delimiter was quoted).
    pub expand: bool,
    /// The file descriptor written before `<<` (`2<<EOF`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_descriptor: Option<u32>,
}

/// A `--mount` of `RUN`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    /// bind, cache, tmpfs, secret or ssh.
    pub kind: MountKind,
    /// Where it appears inside the container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Every `key=value` option as written (source, from, id, sharing, mode, uid, gid, rw, required, size, env, ...).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<(String, String)>,
}

/// The type of a `RUN --mount`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MountKind {
    /// Files from the context or another stage (the default type).
    Bind,
    /// A persistent cache directory.
    Cache,
    /// An in-memory filesystem.
    Tmpfs,
    /// A build secret, as a file or an environment variable.
    Secret,
    /// An SSH agent socket.
    Ssh,
}

/// RUN and its flags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    /// What to run, as written (never expanded).
    pub command: Command,
    /// Heredoc bodies that follow the line; see [`Run::heredoc_script`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub heredocs: Vec<Heredoc>,
    /// `--mount` flags in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    /// `--network=default|none|host`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// `--security=insecure|sandbox`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security: Option<String>,
}

/// How BuildKit runs a `RUN` that carries heredocs (see [`Run::heredoc_script`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HeredocScript {
    /// Run this text with the stage's SHELL (`/bin/sh -c <text>`).
    Shell(String),
    /// A lone heredoc starting with `#!`: BuildKit writes it to `/dev/pipes/<name>`
    /// (mode 0755, mounted read-only) and executes that path directly, without SHELL.
    Executable {
        /// The heredoc delimiter, used as the file name.
        name: String,
        /// The script, shebang first.
        content: String,
    },
}

impl Run {
    /// The script BuildKit runs for a RUN with heredocs; `None` without heredocs.
    ///
    /// `RUN <<EOF` alone runs the body itself; any other command line gets the bodies
    /// appended after it, each followed by its delimiter, so the shell reads them as
    /// heredocs (`RUN cat > /f <<EOF`, several heredocs, `python3 <<EOF`).
    pub fn heredoc_script(&self) -> Option<HeredocScript> {
        let Command::Shell(line) = &self.command else {
            return None;
        };
        let first = self.heredocs.first()?;
        if self.heredocs.len() == 1 && crate::lexer::parse_heredoc(line.trim()).is_some() {
            if first.content.starts_with("#!") {
                return Some(HeredocScript::Executable {
                    name: first.name.clone(),
                    content: first.content.clone(),
                });
            }
            return Some(HeredocScript::Shell(first.content.clone()));
        }
        let mut script = line.clone();
        for h in &self.heredocs {
            script.push('\n');
            script.push_str(&h.content);
            script.push_str(&h.name);
        }
        Some(HeredocScript::Shell(script))
    }
}

/// COPY or ADD and their flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Copy {
    /// Source words (unexpanded until planned).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// Destination word.
    pub dest: String,
    /// Inline sources given as heredocs.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub heredocs: Vec<Heredoc>,
    /// `--from` (COPY only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// `--chown=user[:group]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chown: Option<String>,
    /// `--chmod=` octal or symbolic mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chmod: Option<String>,
    /// `--link`: copy into an independent layer.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub link: bool,
    /// `--parents` (COPY only).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub parents: bool,
    /// `--exclude=` patterns, in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// `--checksum` (ADD only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
    /// `--keep-git-dir` (ADD only).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub keep_git_dir: bool,
    /// `--unpack[=bool]` (ADD only): whether archives are extracted; `None` when not given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unpack: Option<bool>,
}

/// HEALTHCHECK settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`.
    None,
    /// `HEALTHCHECK [flags] CMD ...`.
    Check {
        /// The test command (`CMD-SHELL` for shell form, `CMD` for exec form).
        command: Command,
        /// `--interval` (BuildKit: unset or `0` is `None`, below 1ms is refused).
        #[serde(skip_serializing_if = "Option::is_none", serialize_with = "go_duration")]
        interval: Option<Duration>,
        /// `--timeout`.
        #[serde(skip_serializing_if = "Option::is_none", serialize_with = "go_duration")]
        timeout: Option<Duration>,
        /// `--start-period`.
        #[serde(skip_serializing_if = "Option::is_none", serialize_with = "go_duration")]
        start_period: Option<Duration>,
        /// `--start-interval`.
        #[serde(skip_serializing_if = "Option::is_none", serialize_with = "go_duration")]
        start_interval: Option<Duration>,
        /// `--retries`.
        #[serde(skip_serializing_if = "Option::is_none")]
        retries: Option<u32>,
    },
}

/// What an instruction says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InstructionKind {
    /// `RUN`.
    Run(Run),
    /// `CMD`; an empty `CMD` is an empty exec form.
    Cmd(Command),
    /// `ENTRYPOINT`.
    Entrypoint(Command),
    /// `COPY`.
    Copy(Copy),
    /// `ADD`.
    Add(Copy),
    /// `ENV k=v ...` pairs in order.
    Env(Vec<(String, String)>),
    /// `ARG name[=default] ...`.
    Arg(Vec<(String, Option<String>)>),
    /// `LABEL k=v ...` pairs in order.
    Label(Vec<(String, String)>),
    /// `MAINTAINER` text.
    Maintainer(String),
    /// `EXPOSE` words as written (`80`, `53/udp`, `8000-8010/tcp`).
    Expose(Vec<String>),
    /// `VOLUME` paths.
    Volume(Vec<String>),
    /// `USER user[:group]`.
    User(String),
    /// `WORKDIR` path.
    Workdir(String),
    /// `STOPSIGNAL` name or number.
    Stopsignal(String),
    /// `HEALTHCHECK`.
    Healthcheck(Healthcheck),
    /// `SHELL` (always exec form).
    Shell(Vec<String>),
    /// `ONBUILD <instruction>`; the trigger text and its parsed form.
    Onbuild(Box<Instruction>),
}

impl InstructionKind {
    /// The keyword in upper case (`RUN`, `COPY`, ...).
    pub fn keyword(&self) -> &'static str {
        match self {
            Self::Run(_) => "RUN",
            Self::Cmd(_) => "CMD",
            Self::Entrypoint(_) => "ENTRYPOINT",
            Self::Copy(_) => "COPY",
            Self::Add(_) => "ADD",
            Self::Env(_) => "ENV",
            Self::Arg(_) => "ARG",
            Self::Label(_) => "LABEL",
            Self::Maintainer(_) => "MAINTAINER",
            Self::Expose(_) => "EXPOSE",
            Self::Volume(_) => "VOLUME",
            Self::User(_) => "USER",
            Self::Workdir(_) => "WORKDIR",
            Self::Stopsignal(_) => "STOPSIGNAL",
            Self::Healthcheck(_) => "HEALTHCHECK",
            Self::Shell(_) => "SHELL",
            Self::Onbuild(_) => "ONBUILD",
        }
    }
}
