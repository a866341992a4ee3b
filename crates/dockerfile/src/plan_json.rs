//! The plan as JSON, for `strata plan`: stages in build order with their bases and each
//! instruction after expansion, with its source lines.

use crate::{BuildPlan, Dockerfile, Error, PlanOptions, StageBase, StageScope, plan};
use serde_json::{Value, json};

/// Plans `df` and renders the result with every instruction expanded.
///
/// A stage built on an image starts from an empty environment (the image's own ENV is not
/// known without pulling it); a stage built on another stage starts from that stage's.
pub fn plan_json(df: &Dockerfile, opts: &PlanOptions) -> Result<Value, Error> {
    let plan: BuildPlan = plan(df, opts)?;
    let mut final_env: Vec<Option<Vec<(String, String)>>> = vec![None; df.stages.len()];
    let mut stages = Vec::new();
    for ps in &plan.stages {
        let base_env = match ps.base {
            StageBase::Stage(j) => final_env.get(j).cloned().flatten().unwrap_or_default(),
            _ => Vec::new(),
        };
        let mut scope = StageScope::new(df, opts, ps.index, &base_env);
        let mut insts = Vec::new();
        let Some(stage) = df.stages.get(ps.index) else {
            continue;
        };
        for inst in &stage.instructions {
            let e = scope.apply(inst)?;
            let args = match serde_json::to_value(&e.kind) {
                Ok(Value::Object(m)) => m.into_iter().next().map(|(_, v)| v).unwrap_or(Value::Null),
                Ok(v) => v,
                Err(_) => Value::Null,
            };
            insts.push(json!({
                "line": e.span.start_line,
                "end_line": e.span.end_line,
                "instruction": e.kind.keyword(),
                "original": e.original,
                "args": args,
            }));
        }
        if let Some(slot) = final_env.get_mut(ps.index) {
            *slot = Some(scope.config_env());
        }
        let base = match &ps.base {
            StageBase::Scratch => json!("scratch"),
            StageBase::Image(i) => json!({ "image": i }),
            StageBase::Stage(j) => {
                json!({ "stage": j, "name": df.stages.get(*j).and_then(|s| s.name.clone()) })
            }
        };
        stages.push(json!({
            "index": ps.index,
            "name": ps.name,
            "line": ps.span.start_line,
            "base": base,
            "platform": ps.platform,
            "deps": ps.deps,
            "build_args": scope.history_args().into_iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
            "instructions": insts,
        }));
    }
    Ok(json!({
        "file": df.file_name,
        "target": plan.target,
        "stages": stages,
        "warnings": plan.warnings,
    }))
}
