//! RUN: build the command line (shell, exec or heredoc), run it isolated, snapshot the changes.

use super::fail;
use crate::build::Builder;
use crate::error::BuildError;
use crate::exec::{run_chroot, RunSpec, RunStatus};
use crate::stage::{layer_from_changes, StageRun};
use crate::user::resolve_user;
use strata_dockerfile::{Command, HeredocScript, Instruction, Run};

/// The argv a RUN executes, and the executable heredoc script to provide (name, content).
pub fn command_line(shell: &[String], run: &Run) -> (Vec<String>, Option<(String, String)>) {
    match (&run.command, run.heredoc_script()) {
        (_, Some(HeredocScript::Executable { name, content })) => (vec![format!("/dev/pipes/{name}")], Some((name, content))),
        (_, Some(HeredocScript::Shell(script))) => {
            let mut argv = shell.to_vec();
            argv.push(script);
            (argv, None)
        }
        (Command::Exec(args), None) => (args.clone(), None),
        (Command::Shell(text), None) => {
            let mut argv = shell.to_vec();
            argv.push(text.clone());
            (argv, None)
        }
    }
}

/// History text for a RUN, BuildKit style: `RUN |N K=V ... /bin/sh -c cmd # buildkit`.
fn created_by(argv: &[String], args: &[(String, String)]) -> String {
    let shown: Vec<String> = args.iter().filter(|(k, _)| !is_proxy_arg(k)).map(|(k, v)| format!("{k}={v}")).collect();
    let prefix = if shown.is_empty() { String::new() } else { format!("|{} {} ", shown.len(), shown.join(" ")) };
    format!("RUN {prefix}{} # buildkit", argv.join(" "))
}

fn is_proxy_arg(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "http_proxy" | "https_proxy" | "ftp_proxy" | "no_proxy" | "all_proxy"
    )
}

pub(crate) fn execute(b: &mut Builder, st: &mut StageRun, inst: &Instruction, run: &Run) -> Result<(), BuildError> {
    let (argv, script) = command_line(&st.shell(), run);
    let user = resolve_user(&st.rootfs, st.config.config.user.as_deref().unwrap_or("")).map_err(|m| fail(b, inst, m))?;
    let mut env = st.config.env_pairs();
    let args = st.scope.build_args();
    for (k, v) in &args {
        if !env.iter().any(|(ek, _)| ek == k) {
            env.push((k.clone(), v.clone()));
        }
    }
    if !env.iter().any(|(k, _)| k == "HOME") {
        env.push(("HOME".into(), user.home.clone()));
    }
    let cwd = st.workdir();
    super::workdir::ensure_dir(&st.rootfs, &cwd, None).map_err(|e| fail(b, inst, format!("cannot create working directory {cwd}: {e}")))?;
    let spec = RunSpec {
        rootfs: st.rootfs.clone(),
        argv: argv.clone(),
        env,
        cwd,
        uid: user.uid,
        gid: user.gid,
        groups: user.groups.clone(),
        network_none: run.network.as_deref() == Some("none"),
        scripts: script.into_iter().collect(),
    };
    let shown = match &run.command {
        Command::Shell(t) => t.clone(),
        Command::Exec(a) => format!("{a:?}"),
    };
    let status = match b.opts.isolation {
        crate::Isolation::Chroot => run_chroot(&spec),
        other => return Err(fail(b, inst, format!("isolation {other} is not supported yet; use --isolation chroot as root"))),
    }
    .map_err(|e| fail(b, inst, format!("cannot start {shown:?}: {e}")))?;
    match status {
        RunStatus::Exited(0) => {}
        RunStatus::Exited(code) => {
            return Err(BuildError::RunFailed { file: b.file_name.clone(), line: inst.span.start_line, command: shown, code })
        }
        RunStatus::Signaled(signal) => {
            return Err(BuildError::RunKilled { file: b.file_name.clone(), line: inst.span.start_line, command: shown, signal })
        }
    }
    let history = created_by(&argv, &args);
    if b.opts.single_snapshot {
        st.history_metadata(history);
        return Ok(());
    }
    let changes = st.snapshotter.diff()?;
    let layer = layer_from_changes(&st.rootfs, &changes, &b.layer_opts, &b.store)?;
    if let Some(l) = &layer {
        b.emit(crate::progress::BuildEvent::LayerWritten { digest: l.digest.clone(), size: l.size });
    }
    st.history_layer(history, layer);
    Ok(())
}
