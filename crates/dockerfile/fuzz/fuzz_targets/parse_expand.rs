//! Fuzz target: any text must parse, plan and expand without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_dockerfile::{PlanOptions, parse, plan_json};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(df) = parse(&text, "Dockerfile") else {
        return;
    };
    let opts = PlanOptions {
        build_args: vec![
            ("A".into(), "x y".into()),
            ("HTTP_PROXY".into(), "p".into()),
        ],
        target_platform: Some("linux/arm64/v8".into()),
        build_platform: Some("linux/amd64".into()),
        ..Default::default()
    };
    let _ = plan_json(&df, &opts);
    let _ = plan_json(
        &df,
        &PlanOptions {
            target: Some("0".into()),
            ..opts
        },
    );
});
