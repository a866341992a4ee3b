//! Property: no input makes the front end panic. Errors are fine; panics are bugs.

use proptest::prelude::*;
use strata_dockerfile::expand::{Lexer, NoEnv};
use strata_dockerfile::{PlanOptions, parse, plan_json};

/// Fragments that steer random text toward the interesting corners of the grammar.
const PIECES: &[&str] = &[
    "FROM ",
    "RUN ",
    "COPY ",
    "ADD ",
    "ENV ",
    "ARG ",
    "LABEL ",
    "CMD ",
    "ENTRYPOINT ",
    "ONBUILD ",
    "HEALTHCHECK ",
    "SHELL ",
    "USER ",
    "WORKDIR ",
    "EXPOSE ",
    "VOLUME ",
    "STOPSIGNAL ",
    "MAINTAINER ",
    "AS ",
    "scratch",
    "alpine",
    "--from=",
    "--mount=",
    "type=cache,",
    "target=/x",
    "--platform=",
    "--chown=",
    "--network=none",
    "--link",
    "<<EOF",
    "<<-EOF",
    "<<'EOF'",
    "EOF",
    "\n",
    "\\\n",
    "\t",
    " ",
    "#",
    "# escape=`\n",
    "`",
    "\\",
    "\"",
    "'",
    "$",
    "${",
    "}",
    ":-",
    ":+",
    ":?",
    "#",
    "##",
    "%",
    "%%",
    "/",
    "//",
    "A",
    "B=1",
    "=",
    "[",
    "]",
    "\"a\"",
    ",",
    "0",
    "1",
    "CMD",
    "NONE",
    "\r\n",
    "é",
    "\u{feff}",
];

fn check(text: &str) {
    if let Ok(df) = parse(text, "Dockerfile") {
        let opts = PlanOptions {
            build_args: vec![("A".into(), "v".into())],
            target_platform: Some("linux/amd64".into()),
            build_platform: Some("linux/amd64".into()),
            ..Default::default()
        };
        let _ = plan_json(&df, &opts);
        let _ = plan_json(&df, &PlanOptions { target: Some("0".into()), ..opts });
    }
    let _ = Lexer::new('\\').process_words(text, &NoEnv);
    let _ = Lexer::new('`').process_word(text, &vec![("A".to_string(), "x y".to_string())]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC*") {
        check(&text);
    }

    #[test]
    fn dockerfile_like_text_never_panics(pieces in proptest::collection::vec(0..PIECES.len(), 0..60)) {
        let text: String = pieces.iter().map(|&i| PIECES[i]).collect();
        check(&text);
        check(&format!("FROM alpine\n{text}"));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Issue 13's hostile shapes, at random sizes: expansions nested past the limit (stack
    /// overflow before), thousands of stages, one very long line, unclosed quotes and heredocs.
    #[test]
    fn nested_and_huge_shapes_never_panic(depth in 0usize..12_000, shape in 0usize..6, n in 1usize..3_000) {
        let text = match shape {
            0 => format!("FROM scratch\nARG X={}x{}\nRUN echo $X\n", "${U:-".repeat(depth), "}".repeat(depth)),
            1 => format!("FROM scratch\nENV A={}\n", "${U:+".repeat(depth)),
            2 => (0..n).map(|i| if i == 0 { "FROM scratch AS s0\n".to_string() } else { format!("FROM s{} AS s{i}\n", i - 1) }).collect(),
            3 => format!("FROM scratch\nRUN {}\n", "a \\\n".repeat(n)),
            4 => format!("FROM scratch\nRUN \"{}\n", "'\"".repeat(depth / 4)),
            _ => format!("FROM scratch\n{}", "RUN <<EOF\n".repeat(n)),
        };
        check(&text);
    }
}
