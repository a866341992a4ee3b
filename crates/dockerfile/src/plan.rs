//! The build plan: FROM lines resolved with meta ARGs, the stages a target needs in
//! dependency order, and per-stage ARG/ENV scope for expanding instructions.

use crate::error::{Kind, Locator};
use crate::expand::{Env, Lexer};
use crate::suggest::closest;
use crate::{Dockerfile, Error, InstructionKind, Span, Warning};
use serde::Serialize;
use std::cell::RefCell;

pub use crate::scope::StageScope;

/// Inputs that change what a Dockerfile means.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// `--build-arg` values, already resolved (a bare `--build-arg K` takes K from the environment in the CLI).
    pub build_args: Vec<(String, String)>,
    /// `--target` stage name or index; the last stage when absent.
    pub target: Option<String>,
    /// The platform built for, `os/arch[/variant]`; the host's when absent.
    pub target_platform: Option<String>,
    /// The platform the build runs on; the host's when absent.
    pub build_platform: Option<String>,
}

impl PlanOptions {
    /// Adds a `--build-arg` as the CLI gives it: `K=V`, or a bare `K` that takes its value
    /// from the environment and is left out when the environment has no `K` (as docker does).
    pub fn push_build_arg(&mut self, spec: &str) {
        match spec.split_once('=') {
            Some((k, v)) => self.build_args.push((k.to_string(), v.to_string())),
            None => {
                if let Ok(v) = std::env::var(spec) {
                    self.build_args.push((spec.to_string(), v));
                }
            }
        }
    }
}

/// What a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StageBase {
    /// `FROM scratch`.
    Scratch,
    /// A registry image reference, expanded.
    Image(String),
    /// An earlier stage, by index.
    Stage(usize),
}

/// One stage to build.
#[derive(Debug, Clone, Serialize)]
pub struct PlannedStage {
    /// Index of the stage in the Dockerfile.
    pub index: usize,
    /// `AS` name, lower-cased.
    pub name: Option<String>,
    /// What it starts from.
    pub base: StageBase,
    /// Expanded `--platform`, if given.
    pub platform: Option<String>,
    /// The FROM line.
    pub span: Span,
    /// Stages this one needs (its base stage, `COPY --from`, `RUN --mount=from=`), by index.
    pub deps: Vec<usize>,
}

/// The stages to build, in an order where every dependency comes first.
#[derive(Debug, Clone, Serialize)]
pub struct BuildPlan {
    /// Stages to build, dependencies first, target last.
    pub stages: Vec<PlannedStage>,
    /// Index (in the Dockerfile) of the target stage.
    pub target: usize,
    /// Non-fatal findings (unused build args, ...).
    pub warnings: Vec<Warning>,
    /// The `AS` name of every stage of the file, by index (also those not built).
    pub stage_names: Vec<Option<String>>,
}

impl BuildPlan {
    /// Resolves a `--from`/`FROM` word to a stage index: a stage name (any case) or a number.
    pub fn resolve_stage(&self, word: &str) -> Option<usize> {
        resolve_in(&self.stage_names, word)
    }

    /// The planned stage with Dockerfile index `index`, if it is built.
    pub fn stage(&self, index: usize) -> Option<&PlannedStage> {
        self.stages.iter().find(|s| s.index == index)
    }
}

fn resolve_in(names: &[Option<String>], word: &str) -> Option<usize> {
    let lower = word.to_ascii_lowercase();
    if let Some(i) = names.iter().position(|n| n.as_deref() == Some(lower.as_str())) {
        return Some(i);
    }
    word.parse::<usize>().ok().filter(|i| *i < names.len())
}

/// The platform ARGs BuildKit defines automatically.
pub const PLATFORM_ARGS: &[&str] = &["TARGETPLATFORM", "TARGETOS", "TARGETARCH", "TARGETVARIANT", "BUILDPLATFORM", "BUILDOS", "BUILDARCH", "BUILDVARIANT"];

/// Proxy ARGs: usable without an ARG instruction and kept out of the image history.
pub const PROXY_ARGS: &[&str] =
    &["HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"];

/// The host platform in OCI terms (`linux/amd64`, `linux/arm64`, `linux/arm/v7`).
pub fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm/v7",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    };
    format!("linux/{arch}")
}

/// Splits `os/arch[/variant]` and normalises it as containerd's `platforms.Normalize`
/// does (`x86_64` is `amd64`, `aarch64` is `arm64`, `arm64/v8` is plain `arm64`, bare
/// `arm` is `arm/v7`).
pub fn platform_parts(p: &str) -> (String, String, String) {
    let mut it = p.split('/');
    let os = it.next().unwrap_or_default().to_ascii_lowercase();
    let arch = it.next().unwrap_or_default().to_ascii_lowercase();
    let variant = it.next().unwrap_or_default().to_ascii_lowercase();
    let (arch, variant) = match (arch.as_str(), variant.as_str()) {
        ("x86_64" | "x86-64" | "amd64", v) => ("amd64".to_string(), if v == "v1" { String::new() } else { v.to_string() }),
        ("aarch64" | "arm64", "v8" | "8") => ("arm64".to_string(), String::new()),
        ("aarch64", v) => ("arm64".to_string(), v.to_string()),
        ("armhf", _) => ("arm".to_string(), "v7".to_string()),
        ("armel", _) => ("arm".to_string(), "v6".to_string()),
        ("arm", "") => ("arm".to_string(), "v7".to_string()),
        ("arm", v) if !v.starts_with('v') => ("arm".to_string(), format!("v{v}")),
        ("i386", v) => ("386".to_string(), v.to_string()),
        (a, v) => (a.to_string(), v.to_string()),
    };
    (os, arch, variant)
}

const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "js",
    "linux",
    "nacl",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "wasip1",
    "windows",
    "zos",
];
const KNOWN_ARCH: &[&str] = &[
    "386",
    "amd64",
    "amd64p32",
    "arm",
    "armbe",
    "arm64",
    "arm64be",
    "loong64",
    "mips",
    "mipsle",
    "mips64",
    "mips64le",
    "mips64p32",
    "mips64p32le",
    "ppc",
    "ppc64",
    "ppc64le",
    "riscv",
    "riscv64",
    "s390",
    "s390x",
    "sparc",
    "sparc64",
    "wasm",
];

/// Reads a `--platform` value as containerd's `platforms.Parse` does: `os/arch[/variant]`,
/// or a lone OS or architecture completed from the host, normalised (`linux/x86_64` is
/// `linux/amd64`). Unknown names are refused.
pub fn parse_platform(p: &str) -> Result<String, String> {
    let parts: Vec<&str> = p.split('/').collect();
    let host = host_platform();
    let (host_os, host_arch, _) = platform_parts(&host);
    let full = match parts.as_slice() {
        [one] => {
            let l = one.to_ascii_lowercase();
            if KNOWN_OS.contains(&l.as_str()) { format!("{l}/{host_arch}") } else { format!("{host_os}/{l}") }
        }
        [_, _] | [_, _, _] => p.to_string(),
        _ => return Err(format!("{p:?}: expected os/arch[/variant]")),
    };
    let (os, arch, _) = platform_parts(&full);
    if !KNOWN_OS.contains(&os.as_str()) || !KNOWN_ARCH.contains(&arch.as_str()) {
        return Err(format!("{p:?}: unknown operating system or architecture"));
    }
    Ok(normalize_platform(&full))
}

/// `os/arch[/variant]` after normalisation.
pub fn normalize_platform(p: &str) -> String {
    let (os, arch, variant) = platform_parts(p);
    if variant.is_empty() { format!("{os}/{arch}") } else { format!("{os}/{arch}/{variant}") }
}

/// The automatic platform ARGs with their values for these options.
pub fn platform_args(opts: &PlanOptions) -> Vec<(String, String)> {
    let target = normalize_platform(&opts.target_platform.clone().unwrap_or_else(host_platform));
    let build = normalize_platform(&opts.build_platform.clone().unwrap_or_else(host_platform));
    let (tos, tarch, tvar) = platform_parts(&target);
    let (bos, barch, bvar) = platform_parts(&build);
    vec![
        ("TARGETPLATFORM".into(), target),
        ("TARGETOS".into(), tos),
        ("TARGETARCH".into(), tarch),
        ("TARGETVARIANT".into(), tvar),
        ("BUILDPLATFORM".into(), build),
        ("BUILDOS".into(), bos),
        ("BUILDARCH".into(), barch),
        ("BUILDVARIANT".into(), bvar),
    ]
}

/// Values of the ARGs before the first FROM, with the automatic platform ARGs first.
pub(crate) struct MetaArgs {
    /// Every meta ARG (and platform ARG) with its value, if any, in order.
    pub args: Vec<(String, Option<String>)>,
}

impl MetaArgs {
    /// Variables visible in FROM lines.
    pub fn env(&self) -> Vec<(String, String)> {
        self.args.iter().filter_map(|(k, v)| v.as_ref().map(|v| (k.clone(), v.clone()))).collect()
    }

    /// The value a stage gets when it redeclares `key` without a default.
    pub fn value(&self, key: &str) -> Option<Option<&str>> {
        self.args.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_deref())
    }
}

pub(crate) fn build_arg<'a>(opts: &'a PlanOptions, key: &str) -> Option<&'a str> {
    opts.build_args.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Computes the meta ARGs: defaults expanded with earlier meta ARGs, then `--build-arg` wins.
pub(crate) fn meta_args(df: &Dockerfile, opts: &PlanOptions) -> Result<MetaArgs, Error> {
    let loc = Locator { file: &df.file_name, lines: &df.source_lines };
    let lex = Lexer::new(df.escape);
    let mut args: Vec<(String, Option<String>)> = platform_args(opts).into_iter().map(|(k, v)| (k, Some(v))).collect();
    for inst in &df.meta_args {
        let InstructionKind::Arg(list) = &inst.kind else {
            continue;
        };
        for (key, default) in list {
            let env = MetaArgs { args: args.clone() }.env();
            let mut value = match default {
                Some(d) => Some(lex.process_word(d, &env).map_err(|e| loc.error(Kind::Expand, inst.span.start_line, Some(d), format!("ARG {key}: {e}")))?),
                None => None,
            };
            if let Some(v) = build_arg(opts, key) {
                value = Some(v.to_string());
            }
            args.push((key.clone(), value));
        }
    }
    Ok(MetaArgs { args })
}

/// An environment that remembers the names it could not find.
struct Recorder<'a> {
    inner: &'a dyn Env,
    missing: RefCell<Vec<String>>,
}

impl Env for Recorder<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        let v = self.inner.get(name);
        if v.is_none() {
            self.missing.borrow_mut().push(name.to_string());
        }
        v
    }
}

/// A `--from` or `from=` word resolved against the stages.
enum FromRef {
    Stage(usize),
    Image,
}

fn resolve_from(df: &Dockerfile, names: &[Option<String>], word: &str, what: &str, line: usize) -> Result<FromRef, Error> {
    let loc = Locator { file: &df.file_name, lines: &df.source_lines };
    if let Some(i) = resolve_in(names, word) {
        return Ok(FromRef::Stage(i));
    }
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_digit()) {
        return Err(loc.error(
            Kind::Stage,
            line,
            Some(word),
            format!("{what}={word}: invalid stage index {word}: the file has {} stages (0 to {})", names.len(), names.len().saturating_sub(1)),
        ));
    }
    // BuildKit reads any other word as an image reference. A bare word one typo away from a
    // stage name is almost surely that stage, so say so instead of pulling a missing image.
    let bare = !word.contains(['/', ':', '@', '.']);
    if bare && let Some(c) = closest(word, names.iter().flatten().map(String::as_str)) {
        return Err(loc.error(Kind::Stage, line, Some(word), format!("{what}={word}: no stage named {word:?} (did you mean {c:?}?)")));
    }
    Ok(FromRef::Image)
}

/// Resolves stages, bases and dependencies for the chosen target.
pub fn plan(df: &Dockerfile, opts: &PlanOptions) -> Result<BuildPlan, Error> {
    let loc = Locator { file: &df.file_name, lines: &df.source_lines };
    let Some(last) = df.stages.last() else {
        let line = df.meta_args.last().map_or(1, |i| i.span.start_line);
        return Err(loc.error(Kind::Stage, line, None, "the Dockerfile has no FROM: no stages to build"));
    };
    for (flag, value) in [("--platform", &opts.target_platform), ("build platform", &opts.build_platform)] {
        if let Some(v) = value {
            parse_platform(v).map_err(|e| loc.error(Kind::Stage, df.stages[0].span.start_line, None, format!("{flag} {v}: {e}")))?;
        }
    }
    let meta = meta_args(df, opts)?;
    let meta_env = meta.env();
    let lex = Lexer::new(df.escape);
    let names: Vec<Option<String>> = df.stages.iter().map(|s| s.name.clone()).collect();

    let mut planned = Vec::with_capacity(df.stages.len());
    // (line, name) of variables used in FROM that no meta ARG declares.
    let mut from_warnings: Vec<(usize, String)> = Vec::new();
    for (i, st) in df.stages.iter().enumerate() {
        let line = st.span.start_line;
        let recorder = Recorder { inner: &meta_env, missing: RefCell::new(Vec::new()) };
        let from = lex.process_word(&st.from, &recorder).map_err(|e| loc.error(Kind::Expand, line, Some(&st.from), format!("FROM: {e}")))?;
        for name in recorder.missing.into_inner() {
            if meta.args.iter().any(|(k, _)| *k == name) || from_warnings.iter().any(|(l, n)| *l == line && *n == name) {
                continue;
            }
            from_warnings.push((line, name));
        }
        if from.is_empty() {
            return Err(loc.error(
                Kind::Expand,
                line,
                Some(&st.from),
                format!("FROM {}: base name should not be blank (set the ARG it uses with --build-arg)", st.from),
            ));
        }
        let platform = match &st.platform {
            Some(p) => {
                let expanded = lex.process_word(p, &meta_env).map_err(|e| loc.error(Kind::Expand, line, Some(p), format!("FROM --platform: {e}")))?;
                Some(parse_platform(&expanded).map_err(|e| loc.error(Kind::Syntax, line, Some(p), format!("FROM --platform={expanded}: {e}")))?)
            }
            None => None,
        };
        let lower = from.to_ascii_lowercase();
        let base = if let Some(j) = names[..i].iter().position(|n| n.as_deref() == Some(lower.as_str())) {
            StageBase::Stage(j)
        } else if lower == "scratch" {
            StageBase::Scratch
        } else {
            StageBase::Image(from)
        };
        let mut deps = Vec::new();
        if let StageBase::Stage(j) = base {
            deps.push(j);
        }
        for inst in &st.instructions {
            let line = inst.span.start_line;
            let mut refs: Vec<(String, &str)> = Vec::new();
            match &inst.kind {
                InstructionKind::Copy(c) => {
                    if let Some(f) = &c.from {
                        // BuildKit expands `--from` with the meta ARGs only: stage ARGs
                        // would make the stage graph depend on the build itself.
                        let word = lex.process_word(f, &meta_env).map_err(|e| loc.error(Kind::Expand, line, Some(f), format!("COPY --from: {e}")))?;
                        refs.push((word, "COPY --from"));
                    }
                }
                InstructionKind::Run(r) => {
                    for m in &r.mount_flags {
                        for (k, v) in &m.fields {
                            if k == "from" {
                                refs.push((v.clone(), "RUN --mount=from"));
                            }
                        }
                    }
                }
                _ => {}
            }
            for (word, what) in refs {
                let word = word.as_str();
                if let FromRef::Stage(j) = resolve_from(df, &names, word, what, line)? {
                    if j == i {
                        return Err(loc.error(Kind::Stage, line, Some(word), format!("{what}={word}: stage {} cannot depend on itself", stage_label(df, i))));
                    }
                    if !deps.contains(&j) {
                        deps.push(j);
                    }
                }
            }
        }
        planned.push(PlannedStage { index: i, name: st.name.clone(), base, platform, span: st.span, deps });
    }

    let target = match &opts.target {
        None => last.index,
        Some(t) => resolve_in(&names, t).ok_or_else(|| {
            let hint = closest(t, names.iter().flatten().map(String::as_str)).map(|c| format!(" (did you mean {c:?}?)")).unwrap_or_default();
            let known: Vec<&str> = names.iter().flatten().map(String::as_str).collect();
            loc.error(
                Kind::Stage,
                last.span.start_line,
                None,
                format!("--target {t}: no stage named {t:?}{hint}; named stages: {}", if known.is_empty() { "none".to_string() } else { known.join(", ") }),
            )
        })?,
    };

    // Depth-first from the target, dependencies first; a grey node seen again is a cycle.
    let mut state = vec![0u8; planned.len()]; // 0 new, 1 in progress, 2 done
    let mut order = Vec::new();
    let mut stack: Vec<(usize, usize)> = vec![(target, 0)];
    state[target] = 1;
    while let Some((node, next)) = stack.pop() {
        if let Some(&dep) = planned[node].deps.get(next) {
            stack.push((node, next + 1));
            match state[dep] {
                0 => {
                    state[dep] = 1;
                    stack.push((dep, 0));
                }
                1 => {
                    let cycle: Vec<String> = stack.iter().map(|(n, _)| stage_label(df, *n)).collect();
                    return Err(loc.error(
                        Kind::Stage,
                        planned[node].span.start_line,
                        None,
                        format!("circular dependency detected on stage {}: {} -> {}", stage_label(df, dep), cycle.join(" -> "), stage_label(df, dep)),
                    ));
                }
                _ => {}
            }
        } else {
            state[node] = 2;
            order.push(node);
        }
    }

    let mut warnings = df.warnings.clone();
    for (line, name) in &from_warnings {
        let hint = closest(name, meta.args.iter().map(|(k, _)| k.as_str())).map(|c| format!(" (did you mean {c}?)")).unwrap_or_default();
        warnings.push(Warning { line: Some(*line), message: format!("UndefinedArgInFrom: FROM argument '{name}' is not declared{hint}") });
    }
    warnings.sort_by_key(|w| w.line);
    for inst in &df.meta_args {
        if let InstructionKind::Arg(list) = &inst.kind {
            for (k, _) in list.iter().filter(|(k, _)| k.contains('$')) {
                warnings.push(Warning {
                    line: Some(inst.span.start_line),
                    message: format!(
                        "ARG {k} before the first FROM: names of global ARGs are not expanded (as in BuildKit and kaniko), so it declares an ARG named literally {k:?}"
                    ),
                });
            }
        }
    }
    // BUILDKIT_* and SOURCE_DATE_EPOCH configure the builder itself, not the Dockerfile.
    let mut unused: Vec<&str> = Vec::new();
    for (k, _) in &opts.build_args {
        let k = k.as_str();
        if !(meta.args.iter().any(|(m, _)| m == k) || PROXY_ARGS.contains(&k) || k.starts_with("BUILDKIT_") || k == "SOURCE_DATE_EPOCH" || unused.contains(&k))
        {
            unused.push(k);
        }
    }
    let (declared, by_image_env) = if unused.is_empty() { Default::default() } else { declared_args(df, opts, &planned, &order) };
    for k in unused.into_iter().filter(|k| !declared.iter().any(|d| d == k)) {
        // A stage ARG's name is expanded when the stage is built (as dockerd 20.10's BuildKit
        // and kaniko do); a variable from the base image's ENV is not known before that.
        let hint = by_image_env
            .first()
            .map(|(line, raw)| {
                format!(
                    " (ARG {raw} on line {line} is named by expanding it when the stage is built; it may name {k} if the base image's ENV sets what it uses)"
                )
            })
            .unwrap_or_default();
        warnings.push(Warning { line: None, message: format!("build-arg {k:?} was not consumed: no ARG {k} in the stages built{hint}") });
    }

    let stages = order.into_iter().map(|i| planned[i].clone()).collect();
    Ok(BuildPlan { stages, target, warnings, stage_names: names })
}

/// A stage's config env and its ARG values in effect, as the stages built on it start.
pub(crate) type Inherited = (Vec<(String, String)>, Vec<(String, String)>);

/// The names the stages in `order` declare with ARG, expanded as the build expands them, and
/// (line, name as written) of those built on an image whose names use variables: the image's
/// ENV is not known here, so those may name something else when built.
fn declared_args(df: &Dockerfile, opts: &PlanOptions, planned: &[PlannedStage], order: &[usize]) -> (Vec<String>, Vec<(usize, String)>) {
    let mut declared = Vec::new();
    let mut by_image_env = Vec::new();
    let mut final_env: Vec<Option<Inherited>> = vec![None; df.stages.len()];
    for &i in order {
        let (Some(stage), Some(ps)) = (df.stages.get(i), planned.get(i)) else { continue };
        let (base_env, base_args) = match ps.base {
            StageBase::Stage(j) => final_env.get(j).cloned().flatten().unwrap_or_default(),
            _ => Default::default(),
        };
        let mut scope = StageScope::new(df, opts, i, &base_env);
        scope.inherit_args(&base_args);
        for inst in &stage.instructions {
            if let (InstructionKind::Arg(list), StageBase::Image(_)) = (&inst.kind, &ps.base) {
                by_image_env.extend(list.iter().filter(|(k, _)| k.contains('$')).map(|(k, _)| (inst.span.start_line, k.clone())));
            }
            // An instruction that does not expand fails the build later, with its line.
            let _ = scope.apply(inst);
        }
        declared.extend(scope.declared_args().iter().map(|(k, _)| k.clone()));
        final_env[i] = Some((scope.config_env(), scope.args_in_effect()));
    }
    (declared, by_image_env)
}

fn stage_label(df: &Dockerfile, i: usize) -> String {
    match df.stages.get(i).and_then(|s| s.name.as_deref()) {
        Some(n) => format!("{n:?}"),
        None => format!("#{i}"),
    }
}
