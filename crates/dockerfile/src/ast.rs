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

/// Writes a mount's file mode in octal (`"0755"`), as it is written in a Dockerfile.
fn octal_mode<S: serde::Serializer>(m: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
    match m {
        Some(m) => s.collect_str(&format_args!("{m:04o}")),
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

/// A `--mount` of `RUN` as written: its type and its other `key=value` fields, keys
/// lower-cased, values unexpanded. [`crate::StageScope::apply`] expands and types it into a
/// [`Mount`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MountFlag {
    /// bind, cache, tmpfs, secret or ssh.
    pub kind: MountKind,
    /// The other fields in order (`target`, `source`, `from`, `id`, `sharing`, `mode`, ...);
    /// a bare `ro`, `rw` or `required` is recorded with the value `true`.
    pub fields: Vec<(String, String)>,
}

impl MountFlag {
    /// The last value of any of `keys`, as written.
    pub fn field(&self, keys: &[&str]) -> Option<&str> {
        self.fields.iter().rev().find(|(k, _)| keys.contains(&k.as_str())).map(|(_, v)| v.as_str())
    }
}

/// A `--mount` of `RUN`, expanded and checked with BuildKit's rules
/// (`instructions/commands_runmount.go`): per type, the fields that type takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Mount {
    /// Files of the context or of another stage or image.
    Bind(BindMount),
    /// A persistent cache directory.
    Cache(CacheMount),
    /// An in-memory filesystem.
    Tmpfs(TmpfsMount),
    /// A build secret, as a file and/or an environment variable.
    Secret(SecretMount),
    /// An SSH agent socket.
    Ssh(SshMount),
}

impl Mount {
    /// The mount's type.
    pub fn kind(&self) -> MountKind {
        match self {
            Self::Bind(_) => MountKind::Bind,
            Self::Cache(_) => MountKind::Cache,
            Self::Tmpfs(_) => MountKind::Tmpfs,
            Self::Secret(_) => MountKind::Secret,
            Self::Ssh(_) => MountKind::Ssh,
        }
    }

    /// `target=` (or `dst=`, `destination=`) as given, relative paths unresolved.
    pub fn target(&self) -> Option<&str> {
        match self {
            Self::Bind(m) => m.target.as_deref(),
            Self::Cache(m) => m.target.as_deref(),
            Self::Tmpfs(m) => m.target.as_deref(),
            Self::Secret(m) => m.target.as_deref(),
            Self::Ssh(m) => m.target.as_deref(),
        }
    }
}

/// `--mount=type=bind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BindMount {
    /// Where it appears inside the container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `from=`: a stage name or index, or an image; `None` is the build context.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// `source=` (`src=`) inside `from`; `None` is its root.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Read-only unless `rw` (or `readonly=false`); the last of these fields wins.
    pub read_only: bool,
}

/// `--mount=type=cache`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CacheMount {
    /// Where it appears inside the container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `id=`: which cache; `None` means the target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `sharing=` (default `shared`).
    pub sharing: CacheSharing,
    /// Read-write unless `ro` (or `readwrite=false`); the last of these fields wins.
    pub read_only: bool,
    /// `from=`: a stage or image whose `source` seeds the cache.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// `source=` (`src=`) inside `from`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `mode=` (octal) of a new cache directory; BuildKit's default is 0755.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "octal_mode")]
    pub mode: Option<u32>,
    /// `uid=` owning a new cache directory; default 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// `gid=` owning a new cache directory; default 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

/// `--mount=type=tmpfs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TmpfsMount {
    /// Where it appears inside the container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `size=` in bytes (written as bytes or with a k, m, g or t suffix); `None`: no limit given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// `--mount=type=secret`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretMount {
    /// `id=` (or `source=`, its synonym for secrets); `None`: the target's base name, else `env`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Where the file appears; `None`: `/run/secrets/<id>` unless only `env` is given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `env=`: the environment variable that also receives the secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// `required`: fail when the secret is not given (else the mount is skipped).
    pub required: bool,
    /// `mode=` (octal) of the file; default 0400.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "octal_mode")]
    pub mode: Option<u32>,
    /// `uid=` of the file; default 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// `gid=` of the file; default 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

/// `--mount=type=ssh`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SshMount {
    /// `id=` of the SSH agent; `None`: `default`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Where the socket appears.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// `required`: fail when no agent is given.
    pub required: bool,
    /// `mode=` (octal) of the socket.
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "octal_mode")]
    pub mode: Option<u32>,
    /// `uid=` of the socket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// `gid=` of the socket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
}

/// `sharing=` of a cache mount.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheSharing {
    /// Used by concurrent builds at once (the default).
    #[default]
    Shared,
    /// A concurrent user gets a fresh directory of its own.
    Private,
    /// Concurrent users wait for each other.
    Locked,
}

/// `RUN --network=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Network {
    /// The builder's default network.
    Default,
    /// Only a loopback interface.
    None,
    /// The host's network.
    Host,
}

impl Network {
    /// Reads `default`, `none` or `host` (as written: BuildKit compares case-sensitively).
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "default" => Self::Default,
            "none" => Self::None,
            "host" => Self::Host,
            _ => return None,
        })
    }
}

/// `COPY/ADD --chmod=`, parsed: an octal mode up to 07777 or a symbolic one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chmod {
    /// `--chmod=0755`: this mode for every file and directory written.
    Octal(u32),
    /// `--chmod=u=rwx,go=rx`: chmod(1) clauses applied to each source's own mode.
    Symbolic(crate::chmod::SymbolicMode),
}

impl std::fmt::Display for Chmod {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Octal(m) => write!(f, "{m:04o}"),
            Self::Symbolic(s) => write!(f, "{s}"),
        }
    }
}

/// Written as its text (`0755`, `u=rwx,go=rx`).
impl Serialize for Chmod {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
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
    /// `--mount` flags in order, as written; [`crate::StageScope::apply`] types them into `mounts`.
    #[serde(skip)]
    pub mount_flags: Vec<MountFlag>,
    /// The `--mount`s expanded and checked, in order: empty until [`crate::StageScope::apply`].
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
    /// `--network=default|none|host`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
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
                return Some(HeredocScript::Executable { name: first.name.clone(), content: first.content.clone() });
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
    /// `--chmod=` as written, unexpanded; [`crate::StageScope::apply`] parses it into `chmod`.
    #[serde(skip)]
    pub chmod_flag: Option<String>,
    /// `--chmod=`, octal or symbolic: `None` until [`crate::StageScope::apply`] (or not given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chmod: Option<Chmod>,
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
