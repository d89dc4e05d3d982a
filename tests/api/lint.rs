//! The Jenkinsfile corpus (tests/jenkinsfiles), `sluice lint` and `POST /api/v1/lint`.
//! Files under `valid/` must pass; each file under `invalid/` lists the diagnostics it must
//! produce as `// expect: LINE:COL text` comments.

use std::path::PathBuf;
use std::process::Command;

use crate::helpers::{Auth, spawn_app};

fn corpus(kind: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/jenkinsfiles")
        .join(kind);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty());
    files
}

#[test]
fn valid_jenkinsfiles_pass() {
    for file in corpus("valid") {
        let source = std::fs::read_to_string(&file).unwrap();
        let result = sluice_core::pipeline::lint(&source);
        let rendered: Vec<String> = result
            .diagnostics
            .iter()
            .map(|d| d.render("f", &source))
            .collect();
        assert!(result.is_valid(), "{}: {rendered:#?}", file.display());
        assert!(result.pipeline.is_some());
    }
}

#[test]
fn the_getting_started_jenkinsfile_is_the_corpus_file() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let guide = std::fs::read_to_string(root.join("docs/GETTING_STARTED.md")).unwrap();
    let block = guide
        .split("```groovy\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("docs/GETTING_STARTED.md has a ```groovy block");
    let corpus =
        std::fs::read_to_string(root.join("tests/jenkinsfiles/valid/getting-started.groovy"))
            .unwrap();
    assert_eq!(block.trim(), corpus.trim());
}

#[test]
fn invalid_jenkinsfiles_report_the_expected_diagnostics() {
    for file in corpus("invalid") {
        let source = std::fs::read_to_string(&file).unwrap();
        let result = sluice_core::pipeline::lint(&source);
        assert!(!result.is_valid(), "{} should be refused", file.display());
        assert!(result.pipeline.is_none(), "never half-accepted");
        let expects: Vec<(u32, u32, String)> = source
            .lines()
            .filter_map(|l| l.strip_prefix("// expect: "))
            .map(|e| {
                let (at, text) = e.split_once(' ').unwrap();
                let (line, col) = at.split_once(':').unwrap();
                (line.parse().unwrap(), col.parse().unwrap(), text.to_owned())
            })
            .collect();
        assert!(
            !expects.is_empty(),
            "{} has no `// expect:` lines",
            file.display()
        );
        for (line, col, text) in expects {
            assert!(
                result
                    .diagnostics
                    .iter()
                    .any(|d| d.pos.line == line && d.pos.col == col && d.message.contains(&text)),
                "{}: no diagnostic {line}:{col} containing {text:?}; got {:#?}",
                file.display(),
                result.diagnostics
            );
        }
    }
}

#[test]
fn the_full_example_becomes_the_expected_model() {
    use sluice_core::pipeline::model::{EnvValue, PipelineOption, StageBody};
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/jenkinsfiles/valid/full.groovy");
    let pipeline = sluice_core::pipeline::lint(&std::fs::read_to_string(path).unwrap())
        .pipeline
        .unwrap();
    assert_eq!(
        pipeline.environment[2].value,
        EnvValue::Credentials {
            id: "DEPLOY_TOKEN".into()
        }
    );
    assert!(
        pipeline
            .options
            .contains(&PipelineOption::Timeout { seconds: 1800 })
    );
    assert!(
        pipeline
            .options
            .contains(&PipelineOption::BuildDiscarder { keep: 20 })
    );
    assert_eq!(pipeline.parameters.len(), 4);
    assert_eq!(pipeline.triggers, ["H 4 * * 1-5"]);
    let names: Vec<&str> = pipeline.stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["Build", "Test", "Matrix", "Staging", "Approve"]);
    assert!(
        matches!(&pipeline.stages[1].body, StageBody::Parallel { stages, .. } if stages.len() == 2)
    );
    assert!(
        matches!(&pipeline.stages[2].body, StageBody::Matrix { axes, excludes, .. } if axes.len() == 2 && excludes.len() == 1)
    );
    assert!(pipeline.stages[3].when_before_agent);
    assert_eq!(
        pipeline.stages[4]
            .input
            .as_ref()
            .unwrap()
            .submitter
            .as_deref(),
        Some("qa@example.com")
    );
    assert_eq!(pipeline.post.conditions.len(), 9);
}

#[test]
fn scheduling_and_checkout_options_become_the_model_without_warnings() {
    use sluice_core::pipeline::model::PipelineOption;
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/jenkinsfiles/valid/plugin-forms.groovy");
    let result = sluice_core::pipeline::lint(&std::fs::read_to_string(path).unwrap());
    let options = &result.pipeline.as_ref().unwrap().options;
    for want in [
        PipelineOption::QuietPeriod { seconds: 5 },
        PipelineOption::RateLimit {
            count: 2,
            period_seconds: 3600,
            user_boost: true,
        },
        PipelineOption::CheckoutToSubdirectory { dir: "app".into() },
    ] {
        assert!(options.contains(&want), "{want:?} not in {options:?}");
    }
    for name in ["quietPeriod", "rateLimitBuilds", "checkoutToSubdirectory"] {
        assert!(
            !result.diagnostics.iter().any(|d| d.message.contains(name)),
            "{name}: {:#?}",
            result.diagnostics
        );
    }
}

#[test]
fn sluice_lint_exits_0_or_1_with_file_line_col_diagnostics() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/jenkinsfiles");
    let ok = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("lint")
        .arg(dir.join("valid/minimal.groovy"))
        .output()
        .unwrap();
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad_path = dir.join("invalid/unknown-things.groovy");
    let bad = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("lint")
        .arg(&bad_path)
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    let expected = format!("{}:10:30: error: unknown step `bat`", bad_path.display());
    assert!(stderr.contains(&expected), "{stderr}");
    assert!(
        stderr.contains(
            "        stage('A') { steps { bat 'dir' } }\n                                 ^"
        ),
        "caret line: {stderr}"
    );
    let missing = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["lint", "/no/such/Jenkinsfile"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
}

#[tokio::test]
async fn the_lint_endpoint_answers_valid_and_diagnostics() {
    let app = spawn_app().await;
    let alice = app.signup("alice@example.com").await;
    app.create_org(&alice, "acme").await;
    let token = app.create_token(&alice, "acme", &["read"]).await;
    let post = |body: &'static str| {
        app.client
            .post(app.url("/api/v1/lint"))
            .bearer_auth(&token)
            .header("content-type", "text/plain")
            .body(body)
            .send()
    };
    let res = post("pipeline { agent any\n stages { stage('a') { steps { sh 'x' } } } }")
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["valid"], true);
    let res = post("pipeline {\n agent any\n stages { stage('a') { steps { script { Jenkins.instance } } } } }")
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["valid"], false);
    assert_eq!(body["diagnostics"][0]["line"], 3);
    assert!(
        body["diagnostics"][0]["message"]
            .as_str()
            .unwrap()
            .contains("`Jenkins` reaches the controller's internals")
    );
    let (status, _) = app
        .post_as("/api/v1/lint", &Auth::None, serde_json::json!("x"))
        .await;
    assert_eq!(status, 401);
}

/// The probe that aborted the server: a Jenkinsfile of 2,000 nested blocks. It gets one
/// diagnostic at the level past the limit, and the server keeps answering.
#[tokio::test]
async fn deeply_nested_jenkinsfiles_get_a_diagnostic_not_a_crash() {
    let app = spawn_app().await;
    let alice = app.signup("alice@example.com").await;
    app.create_org(&alice, "acme").await;
    let token = app.create_token(&alice, "acme", &["read"]).await;
    let levels = 2000;
    let body = format!(
        "pipeline {{\n{}{}}}\n",
        "a {\n".repeat(levels),
        "}\n".repeat(levels)
    );
    let res = app
        .client
        .post(app.url("/api/v1/lint"))
        .bearer_auth(&token)
        .header("content-type", "text/plain")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["valid"], false);
    assert_eq!(body["diagnostics"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["diagnostics"][0]["line"], 101);
    assert_eq!(body["diagnostics"][0]["col"], 3);
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

#[test]
fn sluice_lint_reports_ten_thousand_levels_without_aborting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("Jenkinsfile");
    let levels = 10_000;
    std::fs::write(
        &path,
        format!("{}{}", "pipeline {\n".repeat(levels), "}\n".repeat(levels)),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("lint")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:101:10: error: nested more than 100 levels deep",
            path.display()
        )),
        "{stderr}"
    );
}
