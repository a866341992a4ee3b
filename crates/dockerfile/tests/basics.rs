//! End-to-end checks of parse + plan + StageScope on common Dockerfiles.

use strata_dockerfile::*;

const COMMON: &str = r#"# syntax=docker/dockerfile:1
ARG GO=1.22
ARG BASE=alpine:3.20
FROM --platform=$BUILDPLATFORM golang:${GO} AS Builder
ARG GO
ENV CGO_ENABLED=0 \
    GOOS=linux
# a comment between instructions
WORKDIR /src
COPY --chown=1000:1000 --chmod=755 go.mod go.sum ./
RUN --mount=type=cache,target=/root/.cache go build -o /out/app ./cmd/app
FROM ${BASE}
LABEL org.opencontainers.image.title="my app" version=$GO
ENV PATH=/app:$PATH HOME=/root
COPY --from=builder /out/app /app/app
USER 1000:1000
EXPOSE 8080/tcp 53/udp
VOLUME ["/data"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --retries=3 CMD wget -q -O- http://localhost:8080/ || exit 1
SHELL ["/bin/sh", "-eu", "-c"]
ENTRYPOINT ["/app/app"]
CMD ["--help"]
"#;

fn must<T>(r: Result<T, Error>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn parses_common_dockerfile() {
    let df = must(parse(COMMON, "Dockerfile"));
    assert_eq!(df.directives, vec![("syntax".to_string(), "docker/dockerfile:1".to_string())]);
    assert_eq!(df.meta_args.len(), 2);
    assert_eq!(df.stages.len(), 2);
    let b = &df.stages[0];
    assert_eq!(b.name.as_deref(), Some("builder"));
    assert_eq!(b.platform.as_deref(), Some("$BUILDPLATFORM"));
    assert_eq!(b.span.start_line, 4);
    let env = &b.instructions[1];
    assert_eq!(env.span, Span { start_line: 6, end_line: 7 });
    assert_eq!(env.kind, InstructionKind::Env(vec![("CGO_ENABLED".into(), "0".into()), ("GOOS".into(), "linux".into())]));
    match &b.instructions[3].kind {
        InstructionKind::Copy(c) => {
            assert_eq!(c.sources, vec!["go.mod", "go.sum"]);
            assert_eq!(c.dest, "./");
            assert_eq!(c.chown.as_deref(), Some("1000:1000"));
            assert_eq!(c.chmod_flag.as_deref(), Some("755"));
        }
        k => panic!("{k:?}"),
    }
    match &b.instructions[4].kind {
        InstructionKind::Run(r) => {
            assert_eq!(r.command, Command::Shell("go build -o /out/app ./cmd/app".into()));
            assert_eq!(r.mount_flags[0].kind, MountKind::Cache);
            assert_eq!(r.mount_flags[0].field(&["target"]), Some("/root/.cache"));
        }
        k => panic!("{k:?}"),
    }
    let r = &df.stages[1].instructions;
    assert_eq!(r.last().map(|i| &i.kind), Some(&InstructionKind::Cmd(Command::Exec(vec!["--help".into()]))));
}

#[test]
fn plans_and_expands() {
    let df = must(parse(COMMON, "Dockerfile"));
    let opts = PlanOptions {
        build_args: vec![("GO".into(), "1.23".into()), ("UNUSED".into(), "x".into())],
        build_platform: Some("linux/amd64".into()),
        ..Default::default()
    };
    let plan = must(plan(&df, &opts));
    assert_eq!(plan.stages.len(), 2);
    assert_eq!(plan.stages[0].base, StageBase::Image("golang:1.23".into()));
    assert_eq!(plan.stages[0].platform.as_deref(), Some("linux/amd64"));
    assert_eq!(plan.stages[1].base, StageBase::Image("alpine:3.20".into()));
    assert_eq!(plan.stages[1].deps, vec![0]);
    assert_eq!(plan.resolve_stage("BUILDER"), Some(0));
    assert_eq!(plan.resolve_stage("1"), Some(1));
    assert!(plan.warnings.iter().any(|w| w.message.contains("UNUSED")));

    let mut scope = StageScope::new(&df, &opts, 1, &[("PATH".into(), "/usr/bin".into())]);
    let out: Vec<Instruction> = df.stages[1].instructions.iter().map(|i| must(scope.apply(i))).collect();
    // GO was not redeclared in this stage: meta ARGs are only visible in FROM.
    assert_eq!(out[0].kind, InstructionKind::Label(vec![("org.opencontainers.image.title".into(), "my app".into()), ("version".into(), "".into())]));
    assert_eq!(out[1].kind, InstructionKind::Env(vec![("PATH".into(), "/app:/usr/bin".into()), ("HOME".into(), "/root".into())]));
    let mut s0 = StageScope::new(&df, &opts, 0, &[]);
    for i in &df.stages[0].instructions {
        must(s0.apply(i));
    }
    assert_eq!(s0.build_args(), vec![("GO".to_string(), "1.23".to_string())]);
}

#[test]
fn error_names_file_line_and_suggests() {
    let text = "FROM alpine AS builder\nRUN true\nFROM alpine\nCOPY --from=builer /a /b\n";
    let df = must(parse(text, "Dockerfile"));
    let err = plan(&df, &PlanOptions::default()).err().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(err, "Dockerfile:4:13: COPY --from=builer: no stage named \"builer\" (did you mean \"builder\"?)\n  COPY --from=builer /a /b");
    let err = parse("FROM a\nRUNN x\n", "Dockerfile").err().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(err, "Dockerfile:2:1: unknown instruction: RUNN (did you mean \"RUN\"?)\n  RUNN x");
}

#[test]
fn heredoc_scripts_follow_buildkit() {
    let text = "FROM a\nRUN <<EOF\necho one\nEOF\nRUN <<EOF\n#!/usr/bin/env python3\nprint(1)\nEOF\nRUN cat > /f <<A && cat <<-B\nx\nA\n\ty\n\tB\nRUN echo plain\nRUN <<  EOF\necho two\nEOF\nRUN cat << X > /g\nz\nX\n";
    let df = must(parse(text, "Dockerfile"));
    let scripts: Vec<Option<HeredocScript>> = df.stages[0]
        .instructions
        .iter()
        .map(|i| match &i.kind {
            InstructionKind::Run(r) => r.heredoc_script(),
            _ => None,
        })
        .collect();
    assert_eq!(scripts[0], Some(HeredocScript::Shell("echo one\n".into())));
    assert_eq!(scripts[1], Some(HeredocScript::Executable { name: "EOF".into(), content: "#!/usr/bin/env python3\nprint(1)\n".into() }));
    assert_eq!(scripts[2], Some(HeredocScript::Shell("cat > /f <<A && cat <<-B\nx\nA\ny\nB".into())));
    assert_eq!(scripts[3], None);
    // Blanks after `<<` (BuildKit frontend 1.16): still the simple form, or appended bodies.
    assert_eq!(scripts[4], Some(HeredocScript::Shell("echo two\n".into())));
    assert_eq!(scripts[5], Some(HeredocScript::Shell("cat << X > /g\nz\nX".into())));
}

#[test]
fn error_without_source_text_has_no_blank_line() {
    let err = parse("", "Dockerfile").err().map(|e| e.to_string()).unwrap_or_default();
    assert_eq!(err, "Dockerfile:1:1: file with no instructions");
}

#[test]
fn onbuild_triggers_of_a_base_image() {
    let triggers = vec!["COPY . /app/src".to_string(), "RUN cd /app/src && make".to_string()];
    let insts = must(parse_onbuild_triggers(&triggers, "base:1 ONBUILD"));
    assert_eq!(insts.len(), 2);
    assert_eq!(insts[1].span.start_line, 2);
    assert!(matches!(&insts[1].kind, InstructionKind::Run(r) if r.command == Command::Shell("cd /app/src && make".into())));
    let err = parse_onbuild_triggers(&["FROM x".to_string()], "base:1 ONBUILD").err().map(|e| e.to_string());
    assert_eq!(err.as_deref(), Some("base:1 ONBUILD:1:1: FROM isn't allowed as an ONBUILD trigger\n  FROM x"));
}

#[test]
fn run_network_is_typed_at_parse_time() {
    use strata_dockerfile::Network;
    let net = |flag: &str| -> Result<Option<Network>, Error> {
        let df = parse(&format!("FROM scratch\nRUN {flag} true\n"), "Dockerfile")?;
        match &df.stages[0].instructions[0].kind {
            InstructionKind::Run(r) => Ok(r.network),
            k => panic!("{k:?}"),
        }
    };
    assert_eq!(net("").ok(), Some(None));
    assert_eq!(net("--network=none").ok(), Some(Some(Network::None)));
    assert_eq!(net("--network=host").ok(), Some(Some(Network::Host)));
    assert_eq!(net("--network=default").ok(), Some(Some(Network::Default)));
    let err = net("--network=NONE").expect_err("case matters, as in BuildKit");
    assert!(err.to_string().contains("Dockerfile:2") && err.to_string().contains("RUN: unsupported network mode \"NONE\""), "{err}");
}

#[test]
fn arg_name_expands_with_the_base_image_env() {
    // The base image's ENV (known only when the stage is built) names the ARG, as dockerd
    // 20.10's BuildKit and kaniko do; the build arg then sets it and RUN sees it.
    let df = must(parse("FROM alpine\nARG ${fromimage}=bar other=${fromimage}\nRUN echo $cli\n", "Dockerfile"));
    let opts = PlanOptions { build_args: vec![("cli".into(), "set".into())], ..Default::default() };
    let mut scope = StageScope::new(&df, &opts, 0, &[("fromimage".into(), "cli".into())]);
    let out = must(scope.apply(&df.stages[0].instructions[0]));
    assert_eq!(out.kind, InstructionKind::Arg(vec![("cli".into(), Some("set".into())), ("other".into(), Some("cli".into()))]));
    assert_eq!(scope.build_args(), vec![("cli".to_string(), "set".to_string()), ("other".to_string(), "cli".to_string())]);

    // Without that ENV the name is empty: refused with the file and line, not an ARG named "".
    let mut bare = StageScope::new(&df, &opts, 0, &[]);
    let err = bare.apply(&df.stages[0].instructions[0]).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.starts_with("Dockerfile:2:5: ARG ${fromimage}: the name expands to \"\", which is empty"), "{err}");
}

#[test]
fn a_stage_built_on_a_stage_sees_its_arg_values() {
    // dockerd 20.10's BuildKit (checked) keeps a stage's ARG values in the environment of the
    // stages built on it: `ARG NAME="$NAME-dev"` there gives "base-dev", and RUN sees NAME,
    // though the image config does not hold it and RUN's history lists only the stage's own.
    let text = "FROM alpine AS base\nARG NAME=base\nARG HIDDEN=1\nENV HIDDEN=env\nFROM base\nARG NAME=\"$NAME-dev\"\nFROM base\nRUN echo $NAME\n";
    let df = must(parse(text, "Dockerfile"));
    let opts = PlanOptions::default();
    let mut base = StageScope::new(&df, &opts, 0, &[]);
    for i in &df.stages[0].instructions {
        must(base.apply(i));
    }
    assert_eq!(base.args_in_effect(), vec![("NAME".to_string(), "base".to_string())]);
    let mut dev = StageScope::new(&df, &opts, 1, &base.config_env());
    dev.inherit_args(&base.args_in_effect());
    let out = must(dev.apply(&df.stages[1].instructions[0]));
    assert_eq!(out.kind, InstructionKind::Arg(vec![("NAME".into(), Some("base-dev".into()))]));
    let mut plain = StageScope::new(&df, &opts, 2, &base.config_env());
    plain.inherit_args(&base.args_in_effect());
    must(plain.apply(&df.stages[2].instructions[0]));
    assert_eq!(plain.build_args(), vec![("NAME".to_string(), "base".to_string())]);
    assert!(plain.history_args().is_empty());
    assert_eq!(plain.config_env(), vec![("HIDDEN".to_string(), "env".to_string())]);
}
