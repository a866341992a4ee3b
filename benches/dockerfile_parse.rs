//! Parse and expand a generated 2,000-instruction Dockerfile.
//!
//! `cargo bench -p strata-benches --bench dockerfile_parse`; divide the reported time by
//! 2,000 for the time per instruction.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::fmt::Write as _;
use strata_dockerfile::{PlanOptions, StageScope, parse, plan};

/// Instructions in the generated file (FROM lines included).
const INSTRUCTIONS: usize = 2_000;

/// A realistic mix: stages, ARG/ENV with expansion, COPY/RUN with flags, continuations,
/// heredocs and metadata instructions.
fn generate() -> String {
    let mut s = String::from("# syntax=docker/dockerfile:1\nARG BASE=alpine\nARG TAG=3.20\n");
    let mut n = 2;
    let mut stage = 0;
    while n < INSTRUCTIONS {
        if n % 200 == 2 {
            let _ = writeln!(s, "FROM --platform=$BUILDPLATFORM ${{BASE}}:${{TAG}} AS stage{stage}");
            let _ = writeln!(s, "ARG TARGETARCH");
            stage += 1;
            n += 2;
            continue;
        }
        let i = n;
        let line = match i % 10 {
            0 => format!("ENV VAR{i}=value{i} PATH=/opt/{i}/bin:$PATH"),
            1 => format!("RUN --mount=type=cache,target=/root/.cache/{i} set -e; \\\n    echo building {i} && \\\n    make -j4 target{i}"),
            2 => format!("COPY --chown=1000:1000 --chmod=0644 src/{i}/ /app/${{VAR{}:-default}}/", i - 2),
            3 => format!("WORKDIR /work/${{TARGETARCH}}/{i}"),
            4 => format!("LABEL org.example.step{i}=\"step {i}\" version=${{TAG:-none}}"),
            5 => format!("ARG OPT{i}=${{VAR{}##*e}}", i - 5),
            6 => format!("RUN <<EOF\necho heredoc {i}\nls -la /app\nEOF"),
            7 => format!("EXPOSE {}/tcp", 8000 + i % 1000),
            8 if stage >= 2 => format!("COPY --from=stage{} /app/{i} /copied/{i}", stage - 2),
            8 => format!("COPY --from=busybox:latest /bin/busybox /copied/{i}"),
            _ => format!("USER ${{UID:-1000}}:{}", i % 100),
        };
        s.push_str(&line);
        s.push('\n');
        n += 1;
    }
    s.push_str("CMD [\"/app/run\"]\n");
    s
}

fn parse_and_expand(text: &str) -> usize {
    let df = parse(text, "Dockerfile").unwrap_or_else(|e| panic!("{e}"));
    let opts = PlanOptions {
        build_args: vec![("TAG".into(), "3.19".into())],
        target_platform: Some("linux/amd64".into()),
        build_platform: Some("linux/amd64".into()),
        ..Default::default()
    };
    let p = plan(&df, &opts).unwrap_or_else(|e| panic!("{e}"));
    let mut expanded = 0;
    for st in &p.stages {
        let mut scope = StageScope::new(&df, &opts, st.index, &[]);
        for inst in &df.stages[st.index].instructions {
            scope.apply(inst).unwrap_or_else(|e| panic!("{e}"));
            expanded += 1;
        }
    }
    expanded
}

fn bench(c: &mut Criterion) {
    let text = generate();
    let df = parse(&text, "Dockerfile").unwrap_or_else(|e| panic!("{e}"));
    let count = df.meta_args.len() + df.stages.iter().map(|s| 1 + s.instructions.len()).sum::<usize>();
    assert_eq!(count, INSTRUCTIONS + 1, "generator drifted");
    let mut g = c.benchmark_group("dockerfile");
    g.throughput(Throughput::Elements(count as u64));
    g.bench_with_input(BenchmarkId::new("parse", count), &text, |b, t| b.iter(|| parse(t, "Dockerfile")));
    g.bench_with_input(BenchmarkId::new("parse_plan_expand", count), &text, |b, t| b.iter(|| parse_and_expand(t)));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
