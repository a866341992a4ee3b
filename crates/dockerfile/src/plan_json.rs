//! The plan as JSON, for `strata plan`: stages in build order with their bases and each
//! instruction after expansion, with its source lines.

use crate::plan::Inherited;
use crate::{BuildPlan, Dockerfile, Error, PlanOptions, StageBase, StageScope, plan};
use serde_json::{Value, json};

/// Plans `df` and renders the result with every instruction expanded.
///
/// A stage built on an image starts from an empty environment (the image's own ENV is not
/// known without pulling it); a stage built on another stage starts from that stage's.
pub fn plan_json(df: &Dockerfile, opts: &PlanOptions) -> Result<Value, Error> {
    let mut out = Vec::new();
    write_plan_json(df, opts, &mut out).map_err(|e| match e {
        WriteError::Plan(e) => e,
        WriteError::Io(e) => unreachable_io(e),
    })?;
    Ok(serde_json::from_slice(&out).unwrap_or(Value::Null))
}

/// Writing into a Vec cannot fail; this keeps the types honest without a panic.
fn unreachable_io(e: std::io::Error) -> Error {
    Error::Stage { file: String::new(), line: 0, col: 0, message: format!("writing the plan: {e}"), line_text: String::new() }
}

/// Why the plan could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The Dockerfile does not plan.
    #[error(transparent)]
    Plan(#[from] Error),
    /// The output could not be written.
    #[error("writing the plan: {0}")]
    Io(#[from] std::io::Error),
}

/// [`plan_json`] written to `w` as pretty JSON one instruction at a time, so that memory
/// follows the Dockerfile's size, not the (much larger) JSON's.
pub fn write_plan_json(df: &Dockerfile, opts: &PlanOptions, w: &mut dyn std::io::Write) -> Result<(), WriteError> {
    let plan: BuildPlan = plan(df, opts)?;
    // Each stage's config env and ARG values in effect at its end, for the stages built on it.
    let mut final_env: Vec<Option<Inherited>> = vec![None; df.stages.len()];
    let pretty = |v: &Value, indent: usize| -> Result<String, std::io::Error> {
        let text = serde_json::to_string_pretty(v).map_err(std::io::Error::other)?;
        Ok(text.replace('\n', &format!("\n{}", " ".repeat(indent))))
    };
    write!(w, "{{\n  \"file\": {},\n  \"target\": {},\n  \"stages\": [", pretty(&json!(df.file_name), 2)?, pretty(&json!(plan.target), 2)?)?;
    let mut first_stage = true;
    for ps in &plan.stages {
        let Some(stage) = df.stages.get(ps.index) else {
            continue;
        };
        let (base_env, base_args) = match ps.base {
            StageBase::Stage(j) => final_env.get(j).cloned().flatten().unwrap_or_default(),
            _ => Default::default(),
        };
        let base = match &ps.base {
            StageBase::Scratch => json!("scratch"),
            StageBase::Image(i) => json!({ "image": i }),
            StageBase::Stage(j) => {
                json!({ "stage": j, "name": df.stages.get(*j).and_then(|s| s.name.clone()) })
            }
        };
        let head = json!({
            "index": ps.index,
            "name": ps.name,
            "line": ps.span.start_line,
            "base": base,
            "platform": ps.platform,
            "deps": ps.deps,
        });
        let head = pretty(&head, 4)?;
        let head = head.trim_end().trim_end_matches('}').trim_end();
        write!(w, "{}\n    {head},\n      \"instructions\": [", if first_stage { "" } else { "," })?;
        first_stage = false;
        let mut scope = StageScope::new(df, opts, ps.index, &base_env);
        scope.inherit_args(&base_args);
        for (n, inst) in stage.instructions.iter().enumerate() {
            let e = scope.apply(inst)?;
            let args = match serde_json::to_value(&e.kind) {
                Ok(Value::Object(m)) => m.into_iter().next().map(|(_, v)| v).unwrap_or(Value::Null),
                Ok(v) => v,
                Err(_) => Value::Null,
            };
            let one = json!({
                "line": e.span.start_line,
                "end_line": e.span.end_line,
                "instruction": e.kind.keyword(),
                "original": e.original,
                "args": args,
            });
            write!(w, "{}\n        {}", if n == 0 { "" } else { "," }, pretty(&one, 8)?)?;
        }
        let args: Vec<Value> = scope.history_args().into_iter().map(|(k, v)| json!([k, v])).collect();
        write!(w, "\n      ],\n      \"build_args\": {}\n    }}", pretty(&json!(args), 6)?)?;
        if let Some(slot) = final_env.get_mut(ps.index) {
            *slot = Some((scope.config_env(), scope.args_in_effect()));
        }
    }
    writeln!(w, "\n  ],\n  \"warnings\": {}\n}}", pretty(&json!(plan.warnings), 2)?)?;
    Ok(())
}
