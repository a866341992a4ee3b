//! Per-stage ARG and ENV scope: which words BuildKit expands in each instruction, and
//! with which variables.

use crate::error::{Kind, Locator};
use crate::expand::{ExpandError, Lexer};
use crate::plan::{MetaArgs, PROXY_ARGS, PlanOptions, build_arg, meta_args, platform_args};
use crate::{Dockerfile, Error, Instruction, InstructionKind};

/// The ARG and ENV scope of one stage while it is built.
#[derive(Debug, Clone)]
pub struct StageScope {
    file: String,
    escape: char,
    /// What expansion and RUN see, in definition order; the last definition wins.
    env: Vec<(String, String)>,
    /// The image config's Env: base env and ENV instructions, no ARGs.
    config_env: Vec<(String, String)>,
    /// ARGs declared in this stage so far, with their values.
    args: Vec<(String, Option<String>)>,
    /// Meta ARG values (platform ARGs included) for redeclared ARGs without a default.
    meta: Vec<(String, Option<String>)>,
    build_args: Vec<(String, String)>,
    /// ARG values in effect at the end of the stage this one is built on.
    inherited: Vec<(String, String)>,
}

impl StageScope {
    /// Starts the scope of stage `stage_index`, with the environment of its base image.
    pub fn new(df: &Dockerfile, opts: &PlanOptions, stage_index: usize, base_env: &[(String, String)]) -> Self {
        let _ = stage_index;
        // `plan` has already reported errors in meta ARG defaults; here they leave the ARG unset.
        let meta = meta_args(df, opts).map(|m| m.args).unwrap_or_else(|_| platform_args(opts).into_iter().map(|(k, v)| (k, Some(v))).collect());
        Self {
            file: df.file_name.clone(),
            escape: df.escape,
            env: base_env.to_vec(),
            config_env: base_env.to_vec(),
            args: Vec::new(),
            meta,
            build_args: opts.build_args.clone(),
            inherited: Vec::new(),
        }
    }

    /// Starts from the ARG values `args` of the stage this one is built on (its
    /// [`StageScope::args_in_effect`]): BuildKit's stage state carries them in its environment,
    /// so expansion and RUN see them, though the image config and RUN's history do not.
    pub fn inherit_args(&mut self, args: &[(String, String)]) {
        for (k, v) in args {
            self.env.push((k.clone(), v.clone()));
            self.inherited.push((k.clone(), v.clone()));
        }
    }

    /// The ARG values in effect now (inherited or declared here, not hidden by a later ENV),
    /// which a stage built on this one inherits.
    pub fn args_in_effect(&self) -> Vec<(String, String)> {
        let mut out = self.inherited_in_effect();
        let declared = self.args.iter().filter_map(|(k, v)| v.as_ref().map(|v| (k, v)));
        for (k, v) in declared {
            if self.env.iter().rev().find(|(ek, _)| ek == k).map(|(_, ev)| ev) != Some(v) {
                continue;
            }
            match out.iter_mut().find(|(ok, _)| ok == k) {
                Some(slot) => slot.1 = v.clone(),
                None => out.push((k.clone(), v.clone())),
            }
        }
        out
    }

    /// Inherited ARG values no later ENV or ARG of this stage has replaced.
    fn inherited_in_effect(&self) -> Vec<(String, String)> {
        let current = |k: &str| self.env.iter().rev().find(|(ek, _)| ek == k).map(|(_, v)| v);
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in &self.inherited {
            if current(k) == Some(v) && !out.iter().any(|(ok, _)| ok == k) {
                out.push((k.clone(), v.clone()));
            }
        }
        out
    }

    /// Expands the words BuildKit expands in `inst` and records what ARG and ENV change.
    pub fn apply(&mut self, inst: &Instruction) -> Result<Instruction, Error> {
        let lines = [inst.original.clone()];
        let loc = Locator { file: &self.file, lines: &lines };
        let line = inst.span.start_line;
        let fail = |word: &str, e: ExpandError| {
            let mut err = loc.error(Kind::Expand, 1, Some(word), format!("{}: {e}", inst.kind.keyword()));
            if let Error::Expand { line: l, .. } = &mut err {
                *l = line;
            }
            err
        };
        let lex = Lexer::new(self.escape);
        let env = &self.env;
        let x = |w: &str| lex.process_word(w, env).map_err(|e| fail(w, e));
        let xo = |w: &Option<String>| w.as_deref().map(x).transpose();
        let xs = |ws: &[String]| ws.iter().map(|w| x(w)).collect::<Result<Vec<_>, _>>();

        let kind = match &inst.kind {
            InstructionKind::Env(pairs) => {
                let mut out = Vec::with_capacity(pairs.len());
                for (k, v) in pairs {
                    out.push((x(k)?, x(v)?));
                }
                // All pairs were expanded with the values from before the instruction.
                for (k, v) in &out {
                    self.env.push((k.clone(), v.clone()));
                    self.config_env.push((k.clone(), v.clone()));
                }
                InstructionKind::Env(out)
            }
            InstructionKind::Label(pairs) => {
                let mut out = Vec::with_capacity(pairs.len());
                for (k, v) in pairs {
                    out.push((x(k)?, x(v)?));
                }
                InstructionKind::Label(out)
            }
            InstructionKind::Arg(list) => {
                let mut out = Vec::with_capacity(list.len());
                for (raw, default) in list {
                    // dockerd 20.10's BuildKit (the oracle) and kaniko expand the name too, with
                    // the stage's environment as it stands (frontend 1.8 on leaves it literal).
                    let key = &lex.process_word(raw, &self.env).map_err(|e| fail(raw, e))?;
                    if let Err(why) = arg_name(key) {
                        return Err(invalid(&loc, line, raw, format!("ARG {raw}: the name expands to {key:?}, {why}")));
                    }
                    let value = if let Some(v) = build_arg_value(&self.build_args, key) {
                        Some(v)
                    } else if let Some(d) = default {
                        let env = &self.env;
                        Some(lex.process_word(d, env).map_err(|e| fail(d, e))?)
                    } else {
                        MetaArgs { args: self.meta.clone() }.value(key).flatten().map(str::to_string)
                    };
                    if let Some(v) = &value {
                        self.env.push((key.clone(), v.clone()));
                    }
                    self.args.push((key.clone(), value.clone()));
                    out.push((key.clone(), value));
                }
                InstructionKind::Arg(out)
            }
            InstructionKind::Copy(c) | InstructionKind::Add(c) => {
                let mut c = c.clone();
                c.sources = xs(&c.sources)?;
                c.dest = x(&c.dest)?;
                c.chown = xo(&c.chown)?;
                if let Some(w) = &c.chmod_flag {
                    let spec = x(w)?;
                    c.chmod = Some(crate::Chmod::parse(&spec).map_err(|e| invalid(&loc, line, w, format!("{}: {e}", inst.kind.keyword())))?);
                }
                c.checksum = xo(&c.checksum)?;
                c.exclude = xs(&c.exclude)?;
                if let Some(f) = &c.from {
                    // `--from` sees the meta ARGs only, as in FROM lines.
                    let meta_env = MetaArgs { args: self.meta.clone() }.env();
                    c.from = Some(lex.process_word(f, &meta_env).map_err(|e| fail(f, e))?);
                }
                // Heredoc bodies: `$` and `\` work, quotes are plain text.
                let mut raw = Lexer::new('\\');
                raw.skip_process_quotes = true;
                for h in &mut c.heredocs {
                    if h.expand {
                        h.content = raw.process_word(&h.content, env).map_err(|e| fail(&h.name, e))?;
                    }
                }
                if matches!(inst.kind, InstructionKind::Copy(_)) { InstructionKind::Copy(c) } else { InstructionKind::Add(c) }
            }
            InstructionKind::Workdir(w) => InstructionKind::Workdir(x(w)?),
            InstructionKind::User(u) => InstructionKind::User(x(u)?),
            InstructionKind::Stopsignal(s) => {
                let sig = x(s)?;
                crate::validate::signal(&sig).map_err(|e| invalid(&loc, line, s, format!("STOPSIGNAL: {e}")))?;
                InstructionKind::Stopsignal(sig)
            }
            InstructionKind::Expose(p) => {
                // BuildKit splits each expanded word again: `EXPOSE $PORTS` with PORTS="80 443".
                let mut ports = Vec::new();
                for w in p {
                    let words = lex.process_words(w, env).map_err(|e| fail(w, e))?;
                    for port in words {
                        crate::validate::port_spec(&port).map_err(|e| invalid(&loc, line, w, format!("EXPOSE {port}: {e}")))?;
                        ports.push(port);
                    }
                }
                InstructionKind::Expose(ports)
            }
            InstructionKind::Volume(v) => InstructionKind::Volume(xs(v)?),
            InstructionKind::Run(r) => {
                let mut r = r.clone();
                r.mounts.clear();
                for flag in &r.mount_flags {
                    let mut m = flag.clone();
                    for (_, v) in &mut m.fields {
                        *v = x(v)?;
                    }
                    let typed = crate::mount::typed(&m).map_err(|e| {
                        let mut err = loc.error(Kind::Syntax, 1, Some("--mount"), format!("RUN --mount: {e}"));
                        if let Error::Syntax { line: l, .. } = &mut err {
                            *l = line;
                        }
                        err
                    })?;
                    r.mounts.push(typed);
                }
                InstructionKind::Run(r)
            }
            // BuildKit leaves shell text, exec arguments, SHELL, MAINTAINER, HEALTHCHECK
            // and ONBUILD triggers as written.
            other => other.clone(),
        };
        Ok(Instruction { span: inst.span, original: inst.original.clone(), kind })
    }

    /// Build args in scope now, with values, for a RUN's environment.
    ///
    /// An ARG that a later ENV of the same name overrides is left out (the ENV wins), ARG
    /// values inherited from the base stage are in, and proxy build args (`HTTP_PROXY`, ...) are included even without an ARG.
    pub fn build_args(&self) -> Vec<(String, String)> {
        let mut out = self.inherited_in_effect();
        for (k, v) in self.history_args() {
            match out.iter_mut().find(|(ok, _)| *ok == k) {
                Some(slot) => slot.1 = v,
                None => out.push((k, v)),
            }
        }
        for p in PROXY_ARGS {
            if out.iter().any(|(k, _)| k == p) {
                continue;
            }
            if let Some(v) = build_arg(&PlanOptions { build_args: self.build_args.clone(), ..Default::default() }, p) {
                out.push((p.to_string(), v.to_string()));
            }
        }
        out
    }

    /// The build args BuildKit records in a RUN's history (`RUN |2 A=1 B=2 ...`): the
    /// declared ARGs with values, proxy ARGs excluded.
    pub fn history_args(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in &self.args {
            let Some(v) = v else { continue };
            if PROXY_ARGS.contains(&k.as_str()) {
                continue;
            }
            // The most recent definition decides: an ENV after the ARG hides it.
            let last = self.env.iter().rev().find(|(ek, _)| ek == k);
            if last.map(|(_, ev)| ev) != Some(v) {
                continue;
            }
            match out.iter_mut().find(|(ok, _)| ok == k) {
                Some(slot) => slot.1 = v.clone(),
                None => out.push((k.clone(), v.clone())),
            }
        }
        out
    }

    /// The whole environment a RUN sees now: base env, ENV and ARG values, last one wins.
    pub fn env(&self) -> Vec<(String, String)> {
        dedup(&self.env)
    }

    /// The image config's environment now: the base env and ENV instructions, without
    /// ARGs. It is what a stage built `FROM` this one starts with.
    pub fn config_env(&self) -> Vec<(String, String)> {
        dedup(&self.config_env)
    }

    /// The ARGs declared in the stage so far, with their values.
    pub fn declared_args(&self) -> &[(String, Option<String>)] {
        &self.args
    }
}

/// A value that expanded fine but is not acceptable, at `line` of the instruction.
fn invalid(loc: &Locator<'_>, line: usize, needle: &str, message: String) -> Error {
    let mut err = loc.error(Kind::Syntax, 1, Some(needle), message);
    if let Error::Syntax { line: l, .. } = &mut err {
        *l = line;
    }
    err
}

/// Why `key`, an ARG name after expansion, cannot name a variable, if it cannot.
fn arg_name(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        Err("which is empty (is the variable it uses set?)")
    } else if key.contains('=') {
        Err("which holds '=' and cannot name a variable")
    } else if key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err("which holds a blank or control character and cannot name a variable")
    } else {
        Ok(())
    }
}

/// Keeps the first position of each key with its last value.
fn dedup(pairs: &[(String, String)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in pairs {
        match out.iter_mut().find(|(ok, _)| ok == k) {
            Some(slot) => slot.1 = v.clone(),
            None => out.push((k.clone(), v.clone())),
        }
    }
    out
}

fn build_arg_value(build_args: &[(String, String)], key: &str) -> Option<String> {
    build_args.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.clone())
}
