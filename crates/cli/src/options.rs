//! Turning command-line arguments into the library's `BuildOptions`.

use crate::args::{BuildArgs, CompressionArg, InputArgs, IsolationArg, SnapshotModeArg};
use anyhow::{Context as _, bail};
use std::path::PathBuf;
use strata_builder_core::{BuildOptions, HostFacts, Isolation, IsolationRequest, choose_isolation, exec};
use strata_snapshot::{Compression, SnapshotMode};

fn split_kv(flag: &str, s: &str) -> anyhow::Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => bail!("{flag} {s:?}: expected KEY=VALUE"),
    }
}

/// `--build-arg K=V` or `K` (value from the environment; skipped when unset, as docker does).
pub fn build_args(raw: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for a in raw {
        match a.split_once('=') {
            Some((k, v)) if !k.is_empty() => out.push((k.to_string(), v.to_string())),
            Some(_) => bail!("--build-arg {a:?}: expected KEY=VALUE or KEY"),
            None => {
                if let Ok(v) = std::env::var(a) {
                    out.push((a.clone(), v));
                }
            }
        }
    }
    Ok(out)
}

/// The Dockerfile path (as given if it exists, else under the context) and the context.
pub fn locate_dockerfile(input: &InputArgs) -> anyhow::Result<(PathBuf, PathBuf)> {
    let context = match &input.context_sub_path {
        Some(sub) => input.context.join(sub),
        None => input.context.clone(),
    };
    let df = if input.dockerfile.is_absolute() || input.dockerfile.exists() { input.dockerfile.clone() } else { context.join(&input.dockerfile) };
    Ok((df, context))
}

/// The front end's plan options for these inputs.
pub fn plan_options(input: &InputArgs) -> anyhow::Result<strata_dockerfile::PlanOptions> {
    Ok(strata_dockerfile::PlanOptions { build_args: build_args(&input.build_args)?, target: input.target.clone(), ..Default::default() })
}

/// Maps `strata build` arguments onto `BuildOptions`.
pub fn build_options(a: &BuildArgs) -> anyhow::Result<BuildOptions> {
    let (dockerfile, context) = locate_dockerfile(&a.input)?;
    let mut o = BuildOptions::new(dockerfile, context);
    if a.destinations.is_empty() && !a.no_push {
        bail!("no --destination given: name where to push the image, or pass --no-push");
    }
    o.destinations = a.destinations.clone();
    for d in &o.destinations {
        d.parse::<strata_registry::Reference>().with_context(|| format!("--destination {d}"))?;
    }
    o.no_push = a.no_push;
    o.build_args = build_args(&a.input.build_args)?;
    o.target = a.input.target.clone();
    o.labels = a.labels.iter().map(|l| split_kv("--label", l)).collect::<anyhow::Result<_>>()?;
    o.oci_layout_path = a.oci_layout_path.clone();
    o.tar_path = a.tar_path.clone();
    o.digest_file = a.digest_file.clone();
    o.snapshot_mode = match a.snapshot_mode {
        SnapshotModeArg::Full => SnapshotMode::Full,
        SnapshotModeArg::Redo => SnapshotMode::Redo,
        SnapshotModeArg::Time => SnapshotMode::Time,
    };
    o.max_layer_size = a.max_layer_size;
    o.single_snapshot = a.single_snapshot;
    if let Some(max) = a.max_download_size {
        o.max_download_size = max;
    }
    o.compression = match a.compression {
        CompressionArg::Gzip => Compression::Gzip { level: a.compression_level.map_or(1, |l| l.clamp(0, 9) as u32) },
        // zstd's workers come on top of the writing thread: none on a single CPU (or 400m).
        CompressionArg::Zstd => Compression::Zstd {
            level: a.compression_level.unwrap_or(3),
            threads: match strata_snapshot::cpu_budget(2) {
                1 => 0,
                n => n as u32,
            },
        },
        CompressionArg::None => Compression::None,
    };
    if a.reproducible {
        let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
            Ok(v) => v.parse::<i64>().with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds"))?,
            Err(_) => 0,
        };
        o.reproducible_epoch = Some(epoch);
    } else if let Ok(v) = std::env::var("SOURCE_DATE_EPOCH") {
        o.reproducible_epoch = Some(v.parse::<i64>().with_context(|| format!("SOURCE_DATE_EPOCH={v:?} is not a number of seconds"))?);
    }
    let request = match a.isolation {
        IsolationArg::Auto => IsolationRequest::Auto,
        IsolationArg::Chroot => IsolationRequest::Exactly(Isolation::Chroot),
        IsolationArg::Rootless => IsolationRequest::Exactly(Isolation::Rootless),
        IsolationArg::None => IsolationRequest::Exactly(Isolation::None),
    };
    let facts = HostFacts::probe();
    o.isolation = choose_isolation(request, &facts)?;
    if request == IsolationRequest::Auto && o.isolation == Isolation::None {
        tracing::info!(
            "this process may not create mount and PID namespaces (root without CAP_SYS_ADMIN, or a seccomp profile \
             that forbids unshare); inside a container, so building in its / (--isolation none), as kaniko does"
        );
    }
    if o.isolation == Isolation::None {
        exec::check_none_isolation(a.force)?;
    }
    o.force = a.force;
    if let Some(w) = &a.work_dir {
        o.work_dir = w.clone();
    }
    o.cache_dir = a.run_cache_dir.clone();
    o.ignore_paths = a.ignore_paths.clone();
    if let Some(p) = &a.custom_platform {
        // One platform, or a comma list built one after the other and pushed as one index.
        let mut parsed: Vec<String> = Vec::new();
        for one in p.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            let platform: strata_registry::Platform = one.parse().map_err(|_| {
                anyhow::anyhow!("--custom-platform {p:?}: {one:?} is not os/arch[/variant], like linux/amd64 or linux/arm64/v8 (several: a comma list)")
            })?;
            parsed.push(platform.to_string());
        }
        if parsed.is_empty() {
            bail!("--custom-platform {p:?}: name a platform, like linux/amd64");
        }
        o.platform = Some(parsed.join(","));
    }
    if a.cache || a.cache_repo.is_some() {
        let mut c = strata_builder_core::CacheOptions { repo: a.cache_repo.clone(), ..Default::default() };
        if let Some(t) = &a.cache_ttl {
            c.ttl = parse_duration(t).with_context(|| format!("--cache-ttl {t:?}: expected a duration such as 336h, 30m or 1h30m"))?;
        }
        o.cache = Some(c);
    }
    o.secrets = a.secrets.iter().map(|s| s.parse::<strata_builder_core::secrets::SecretSpec>().map_err(anyhow::Error::from)).collect::<anyhow::Result<_>>()?;
    for s in &o.secrets {
        // Fail before any layer is pulled when a secret's source is missing (its value is not kept).
        if let strata_builder_core::secrets::SecretSource::File(p) = &s.source {
            std::fs::metadata(p).with_context(|| format!("--secret id={}: cannot read {}", s.id, p.display()))?;
        }
    }
    let r = &mut o.registry;
    r.insecure = a.insecure;
    r.insecure_registries = a.insecure_registries.clone();
    r.skip_tls_verify = a.skip_tls_verify;
    r.skip_tls_verify_registries = a.skip_tls_verify_registries.clone();
    r.insecure_pull = a.insecure_pull;
    r.skip_tls_verify_pull = a.skip_tls_verify_pull;
    let timeout = strata_dockerfile::go_parse::parse_duration(a.aws_timeout.trim())
        .ok()
        .and_then(|d| d.to_std())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| anyhow::anyhow!("--aws-timeout {:?}: expected a positive duration such as 60s or 2m", a.aws_timeout))?;
    r.ecr.api_timeout = Some(timeout);
    for c in &a.registry_certificates {
        // `HOST=PATH` trusts the CA for that registry only; a bare `PATH` for every registry.
        match c.split_once('=') {
            Some((host, path)) if !host.is_empty() => r.registry_ca_certs.push((host.to_string(), PathBuf::from(path))),
            _ => r.ca_certs.push(PathBuf::from(c)),
        }
    }
    for c in &a.registry_client_certs {
        // kaniko's form: REGISTRY=CERT.pem,KEY.pem.
        match c.split_once('=').and_then(|(h, rest)| rest.split_once(',').map(|(cert, key)| (h, cert, key))) {
            Some((host, cert, key)) if !host.is_empty() => r.client_certs.push((host.to_string(), cert.into(), key.into())),
            _ => bail!("--registry-client-cert {c:?}: expected REGISTRY=CERT.pem,KEY.pem"),
        }
    }
    r.registry_mirrors = a.registry_mirrors.clone();
    r.registry_maps = a.registry_maps.iter().map(|m| split_kv("--registry-map", m)).collect::<anyhow::Result<_>>()?;
    r.retries = a.push_retry;
    r.docker_config_dir = std::env::var_os("DOCKER_CONFIG").map(PathBuf::from);
    Ok(o)
}

/// Parses a Go duration (`336h`, `1h30m`, `45s`, `500ms`, as Go's time.ParseDuration reads
/// them); a bare number is hours (drone's `cache_ttl`). Negative durations are refused.
pub fn parse_duration(text: &str) -> anyhow::Result<std::time::Duration> {
    let t = text.trim();
    if let Ok(hours) = t.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(hours.saturating_mul(3600)));
    }
    let d = strata_dockerfile::go_parse::parse_duration(t)?;
    d.to_std().ok_or_else(|| anyhow::anyhow!("{t:?} is negative"))
}

#[cfg(test)]
mod duration_tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn go_durations_and_bare_hours() {
        assert_eq!(parse_duration("336h").expect("ok"), Duration::from_secs(336 * 3600));
        assert_eq!(parse_duration("1h30m").expect("ok"), Duration::from_secs(5400));
        assert_eq!(parse_duration("336h0m0s").expect("ok"), Duration::from_secs(336 * 3600));
        assert_eq!(parse_duration("24").expect("ok"), Duration::from_secs(24 * 3600));
        assert_eq!(parse_duration("500ms").expect("ok"), Duration::from_millis(500));
        assert!(parse_duration("2 weeks").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("h").is_err());
        assert_eq!(parse_duration("1.5h").expect("ok"), Duration::from_secs(5400));
        assert_eq!(parse_duration("90\u{3bc}s").expect("ok"), Duration::from_micros(90));
        assert!(parse_duration("-1h").is_err());
        assert!(parse_duration("1d").is_err());
    }
}
