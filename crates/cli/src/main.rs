//! The `strata` command: maps flags onto `strata-builder-core` and draws its events.

mod args;
mod events;
mod kaniko_flags;
mod options;
mod plugin;
mod report;
mod signals;
mod size;

use anyhow::Context as _;
use args::{Cli, Command};
use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Plugin mode reads PLUGIN_* settings (and may set AWS_* variables) before any thread starts.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let mode = if plugin::requested(&argv) {
        // Rootless re-execution first, so that only the process that builds reads the settings.
        if plugin::may_run_rootless()
            && let Err(e) = strata_builder_core::exec::enter_user_namespace_if_needed()
        {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
        match plugin::prepare(&argv) {
            Ok(plan) => Mode::Plugin(Box::new(plan)),
            Err(e) => {
                eprintln!("error: {}", report::one_line(&e));
                return ExitCode::FAILURE;
            }
        }
    } else {
        // kaniko's executor command line means the same here.
        let (argv, notes) = match kaniko_flags::normalize(argv) {
            Ok(n) => n,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        let cli = Cli::parse_from(argv);
        // Rootless: re-execute inside a user namespace now, while the process has one thread.
        if let Command::Build(args) = &cli.command
            && matches!(args.isolation, args::IsolationArg::Auto | args::IsolationArg::Rootless)
            && let Err(e) = strata_builder_core::exec::enter_user_namespace_if_needed()
        {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
        Mode::Cli(Box::new(cli), notes)
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match mode {
        Mode::Cli(cli, notes) => runtime.block_on(run(*cli, notes)),
        Mode::Plugin(plan) => runtime.block_on(plugin::run(*plan)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", report::one_line(&e));
            // Stopped by SIGTERM/SIGINT: 143/130, as a shell reports a job killed by it.
            signals::exit_status().map_or(ExitCode::FAILURE, ExitCode::from)
        }
    }
}

/// What this invocation does.
enum Mode {
    Cli(Box<Cli>, Vec<String>),
    Plugin(Box<plugin::Plan>),
}

async fn run(cli: Cli, notes: Vec<String>) -> anyhow::Result<()> {
    match cli.command {
        Command::Build(args) => {
            if args.source_tar.is_some() {
                anyhow::bail!("--source-tar is for `strata push` (push a tarball without building); `strata build` builds from the Dockerfile");
            }
            let progress = events::init_logging(&args.verbosity, &args.log_format)?;
            for n in &notes {
                tracing::warn!("{n}");
            }
            let opts = options::build_options(&args)?;
            tracing::info!(isolation = %opts.isolation, "building {}", opts.dockerfile.display());
            if strata_builder_core::exec::in_user_namespace() {
                tracing::info!(uid_map = %strata_builder_core::exec::userns::describe_uid_map(), "rootless: running in a user namespace");
            }
            signals::stop_build_on_signals(opts.cancel.clone());
            let out = strata_builder_core::build(opts, Some(events::printer(progress))).await?;
            for (path, with_tag) in [(&args.image_name_with_digest_file, false), (&args.image_name_tag_with_digest_file, true)] {
                if let Some(path) = path {
                    plugin::outputs::write_file(path, plugin::outputs::names_with_digest(&args.destinations, &out.digest, with_tag).as_bytes())?;
                }
            }
            print_stdout(&out.digest)
        }
        Command::Push(args) => {
            let progress = events::init_logging(&args.verbosity, &args.log_format)?;
            for n in &notes {
                tracing::warn!("{n}");
            }
            let digest = push_only(&args, options::build_options(&args)?, progress).await?;
            print_stdout(&digest)
        }
        Command::Manifest(args) => {
            let _progress = events::init_logging(&args.verbosity, &args.log_format)?;
            let digest = join_images(&args, options::build_options(&args)?).await?;
            print_stdout(&digest)
        }
        Command::Plan(args) => {
            let (dockerfile, _) = options::locate_dockerfile(&args.input)?;
            let source = strata_dockerfile::source::read(&dockerfile).with_context(|| format!("cannot read Dockerfile {}", dockerfile.display()))?;
            let name = dockerfile.file_name().map_or_else(|| "Dockerfile".into(), |n| n.to_string_lossy().into_owned());
            if source.lossy {
                eprintln!("warning: {name} is not UTF-8; its invalid bytes read as U+FFFD, as Docker's image config would store them");
            }
            let text = source.text;
            let df = strata_dockerfile::parse(&text, &name)?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            match strata_dockerfile::write_plan_json(&df, &options::plan_options(&args.input)?, &mut out).and_then(|()| Ok(std::io::Write::flush(&mut out)?)) {
                Err(strata_dockerfile::PlanWriteError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
                other => Ok(other?),
            }
        }
    }
}

/// `strata push` (and the plugin's push-only mode): the tarball of `args.source_tar` pushed to
/// the destinations of `opts`, the digest files written; returns the manifest digest.
pub(crate) async fn push_only(args: &args::BuildArgs, opts: strata_builder_core::BuildOptions, progress: events::Progress) -> anyhow::Result<String> {
    let Some(archive) = args.source_tar.clone() else {
        anyhow::bail!("strata push needs --source-tar FILE: the image tarball to push (written by strata build --tar-path or docker save)");
    };
    if args.no_push {
        anyhow::bail!("--no-push with push: nothing would happen; push the tarball, or build without pushing");
    }
    tracing::info!("pushing {} to {}", archive.display(), opts.destinations.join(", "));
    signals::stop_build_on_signals(opts.cancel.clone());
    let push = strata_builder_core::PushArchiveOptions {
        archive,
        destinations: opts.destinations.clone(),
        work_dir: opts.work_dir.clone(),
        registry: opts.registry.clone(),
        digest_file: opts.digest_file.clone(),
        cancel: opts.cancel.clone(),
    };
    let out = strata_builder_core::push_archive(push, Some(events::printer(progress))).await?;
    for (path, with_tag) in [(&args.image_name_with_digest_file, false), (&args.image_name_tag_with_digest_file, true)] {
        if let Some(path) = path {
            plugin::outputs::write_file(path, plugin::outputs::names_with_digest(&args.destinations, &out.digest, with_tag).as_bytes())?;
        }
    }
    Ok(out.digest)
}

/// `strata manifest`: the images of `args.images` joined into one index, pushed to the
/// destinations; the digest files written; returns the index digest.
pub(crate) async fn join_images(args: &args::BuildArgs, opts: strata_builder_core::BuildOptions) -> anyhow::Result<String> {
    if args.images.len() < 2 {
        anyhow::bail!("strata manifest needs at least two --image REF (one per platform) to join into an index");
    }
    let sources =
        args.images.iter().map(|i| i.parse::<strata_registry::Reference>().with_context(|| format!("--image {i}"))).collect::<anyhow::Result<Vec<_>>>()?;
    let destinations = opts
        .destinations
        .iter()
        .map(|d| d.parse::<strata_registry::Reference>().with_context(|| format!("--destination {d}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    tracing::info!("joining {} into {}", args.images.join(", "), opts.destinations.join(", "));
    let client = strata_registry::Client::new(opts.registry.clone())?;
    let digest = client.join_index(&sources, &destinations).await?;
    for d in &opts.destinations {
        tracing::info!("pushed index {d}@{digest}");
    }
    if let Some(path) = &opts.digest_file {
        std::fs::write(path, &digest).with_context(|| format!("--digest-file {}", path.display()))?;
    }
    for (path, with_tag) in [(&args.image_name_with_digest_file, false), (&args.image_name_tag_with_digest_file, true)] {
        if let Some(path) = path {
            plugin::outputs::write_file(path, plugin::outputs::names_with_digest(&args.destinations, &digest, with_tag).as_bytes())?;
        }
    }
    Ok(digest)
}

/// Prints a result line on stdout; a closed pipe (`strata plan | head`) is not an error.
fn print_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    match writeln!(std::io::stdout().lock(), "{text}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
