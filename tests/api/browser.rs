//! Headless Chromium (Debian `chromium`, driven by npm `playwright-core`) walking the pages.
//! The flows live in `tests/browser/*.mjs`; `.ci/run` installs Chromium and runs `npm ci`.

use std::path::PathBuf;
use std::process::Command;

use crate::helpers::{Auth, spawn_app};

/// Runs a browser flow against `base` and returns its JSON result line.
pub async fn run_flow(script: &str, args: Vec<String>) -> serde_json::Value {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "run `npm ci` in {} (or `bash .ci/run`) first",
        dir.display()
    );
    let script = script.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg(&script)
            .args(&args)
            .current_dir(&dir)
            .output()
    })
    .await
    .unwrap()
    .expect("node on PATH");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "browser flow failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .expect("a JSON result line");
    serde_json::from_str(line).unwrap()
}

#[tokio::test]
async fn browser_signup_org_project_token_then_the_token_lists_projects() {
    let app = spawn_app().await;
    let result = run_flow("signup-to-token.mjs", vec![app.url("")]).await;
    let token = result["token"].as_str().unwrap().to_owned();
    let (status, projects) = app
        .get_as("/api/v1/orgs/analytical/projects", &Auth::Token(token))
        .await;
    assert_eq!(status, 200, "{projects}");
    assert_eq!(projects["items"][0]["slug"], "engine");
    assert_eq!(
        projects["items"][0]["repo_url"],
        "https://git.example.com/analytical/engine.git"
    );
}
