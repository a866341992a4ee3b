//! Golden cases: `tests/golden/*.txt` hold Dockerfiles and the plan strata makes of them.
//!
//! A file holds many cases:
//!
//! ```text
//! === case name
//! args: --build-arg K=V --target t --platform linux/arm64 --build-platform linux/amd64
//! FROM busybox
//! RUN echo hi
//! --- expect
//! stage 0 base=image:"busybox" ...
//! ```
//!
//! The `args:` line is optional. Platforms default to linux/amd64 so results do not depend
//! on the machine. In the Dockerfile text `<TAB>` stands for a tab and `<CR>` for a carriage
//! return, so that they show in review. Run with `UPDATE_GOLDEN=1` to rewrite the expected
//! outputs, then review the diff like code.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use strata_dockerfile::{PlanOptions, parse, plan_json};

struct Case {
    name: String,
    args: Option<String>,
    input: String,
    expect: String,
}

fn read_cases(text: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut cur: Option<Case> = None;
    let mut in_expect = false;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("=== ") {
            cases.extend(cur.take());
            cur = Some(Case { name: name.trim().to_string(), args: None, input: String::new(), expect: String::new() });
            in_expect = false;
            continue;
        }
        let Some(c) = cur.as_mut() else { continue };
        if line == "--- expect" {
            in_expect = true;
        } else if in_expect {
            c.expect.push_str(line);
            c.expect.push('\n');
        } else if c.input.is_empty() && c.args.is_none() && line.starts_with("args:") {
            c.args = Some(line["args:".len()..].trim().to_string());
        } else {
            c.input.push_str(line);
            c.input.push('\n');
        }
    }
    cases.extend(cur);
    for c in &mut cases {
        c.expect = c.expect.trim_end().to_string() + "\n";
    }
    cases
}

fn options(args: Option<&str>) -> PlanOptions {
    let mut o = PlanOptions { target_platform: Some("linux/amd64".into()), build_platform: Some("linux/amd64".into()), ..Default::default() };
    let words: Vec<&str> = args.unwrap_or_default().split_whitespace().collect();
    let mut i = 0;
    while i < words.len() {
        let v = words.get(i + 1).copied().unwrap_or_default().to_string();
        match words[i] {
            "--build-arg" => {
                let (k, val) = v.split_once('=').unwrap_or((v.as_str(), ""));
                o.build_args.push((k.to_string(), val.to_string()));
            }
            "--target" => o.target = Some(v),
            "--platform" => o.target_platform = Some(v),
            "--build-platform" => o.build_platform = Some(v),
            other => panic!("unknown golden option {other}"),
        }
        i += 2;
    }
    o
}

/// Objects with their keys sorted, whatever map serde_json was built with: the workspace may
/// or may not enable its `preserve_order` feature, and the golden text must not change.
fn canonical(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(m) => {
            let mut entries: Vec<(&String, &serde_json::Value)> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k.clone(), canonical(v))).collect())
        }
        serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

fn compact(v: &serde_json::Value) -> String {
    serde_json::to_string(&canonical(v)).unwrap_or_default()
}

/// Renders a case's outcome in a form that reads well in review.
fn render(input: &str, args: Option<&str>) -> String {
    let text = input.replace("<TAB>", "\t").replace("<CR>", "\r");
    let df = match parse(&text, "Dockerfile") {
        Ok(df) => df,
        Err(e) => return format!("error: {e}\n"),
    };
    let json = match plan_json(&df, &options(args)) {
        Ok(j) => j,
        Err(e) => return format!("error: {e}\n"),
    };
    let mut out = String::new();
    if df.escape != '\\' || !df.directives.is_empty() {
        let _ = writeln!(out, "directives {} escape={:?}", compact(&serde_json::json!(df.directives)), df.escape);
    }
    for stage in json["stages"].as_array().into_iter().flatten() {
        let base = match &stage["base"] {
            serde_json::Value::String(s) => s.clone(),
            b if b.get("image").is_some() => format!("image:{}", compact(&b["image"])),
            b => format!("stage:{}", compact(&b["stage"])),
        };
        let _ = write!(out, "stage {} L{}", stage["index"], stage["line"]);
        if !stage["name"].is_null() {
            let _ = write!(out, " name={}", compact(&stage["name"]));
        }
        let _ = write!(out, " base={base}");
        if !stage["platform"].is_null() {
            let _ = write!(out, " platform={}", compact(&stage["platform"]));
        }
        if stage["deps"].as_array().is_some_and(|d| !d.is_empty()) {
            let _ = write!(out, " deps={}", compact(&stage["deps"]));
        }
        if stage["build_args"].as_array().is_some_and(|d| !d.is_empty()) {
            let _ = write!(out, " args={}", compact(&stage["build_args"]));
        }
        out.push('\n');
        for inst in stage["instructions"].as_array().into_iter().flatten() {
            let (l, e) = (&inst["line"], &inst["end_line"]);
            let lines = if l == e { format!("L{l}") } else { format!("L{l}-{e}") };
            let kw = inst["instruction"].as_str().unwrap_or_default();
            let _ = writeln!(out, "  {lines} {kw} {}", compact(&inst["args"]));
        }
    }
    for w in json["warnings"].as_array().into_iter().flatten() {
        let line = w["line"].as_u64().map(|l| format!(" L{l}")).unwrap_or_default();
        let message = w["message"].as_str().unwrap_or_default();
        let _ = writeln!(out, "warning{line}: {message}");
    }
    out
}

fn golden_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    files.sort();
    files
}

#[test]
fn golden_cases() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    let mut total = 0;
    for file in golden_files() {
        let text = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let cases = read_cases(&text);
        let mut rewritten = String::new();
        for c in &cases {
            total += 1;
            let actual = render(&c.input, c.args.as_deref()).trim_end().to_string() + "\n";
            if actual != c.expect {
                failures.push(format!("{} / {}\n--- expected\n{}--- actual\n{}", file.display(), c.name, c.expect, actual));
            }
            let _ = writeln!(rewritten, "=== {}", c.name);
            if let Some(a) = &c.args {
                let _ = writeln!(rewritten, "args: {a}");
            }
            rewritten.push_str(&c.input);
            rewritten.push_str("--- expect\n");
            rewritten.push_str(&actual);
            rewritten.push('\n');
        }
        if update {
            std::fs::write(&file, rewritten.trim_end().to_string() + "\n").unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        }
    }
    assert!(total >= 200, "only {total} golden cases");
    if !update {
        assert!(failures.is_empty(), "{} of {total} golden cases differ:\n\n{}", failures.len(), failures.join("\n"));
    }
}
