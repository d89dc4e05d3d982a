//! The OpenAPI document: generated from the code, covering every API route, checked in at
//! docs/openapi.json, and fuzzed with schemathesis against a running server.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use serde_json::json;
use utoipa::OpenApi;

use crate::helpers::spawn_app;

fn documented() -> BTreeSet<(String, String)> {
    let doc = serde_json::to_value(sluice_api::openapi::ApiDoc::openapi()).unwrap();
    let mut ops = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            ops.insert((method.to_uppercase(), path.clone()));
        }
    }
    ops
}

#[test]
fn every_json_route_is_documented() {
    let ops = documented();
    let json_routes = sluice_api::route_table()
        .into_iter()
        .filter(|(_, p)| {
            (p.starts_with("/api/v1/") && *p != "/api/v1/openapi.json")
                || p.starts_with("/auth/") && !p.starts_with("/auth/oauth")
        })
        // actix's tail match `{path:.*}` is the documented `{path}`.
        .map(|(m, p)| (m.to_string(), p.replace("{path:.*}", "{path}")));
    for route in json_routes {
        assert!(
            ops.contains(&route),
            "{route:?} is routed but not in the OpenAPI document"
        );
    }
}

#[test]
fn checked_in_openapi_matches_the_code() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
    let generated = sluice_api::openapi::ApiDoc::openapi()
        .to_pretty_json()
        .unwrap()
        + "\n";
    if std::env::var_os("SLUICE_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "docs/openapi.json is out of date: run `SLUICE_UPDATE_OPENAPI=1 cargo test --test api openapi` and commit it"
    );
}

#[tokio::test]
async fn openapi_json_and_the_docs_page_are_served() {
    let app = spawn_app().await;
    let res = app.get("/api/v1/openapi.json").await;
    assert_eq!(res.status(), 200);
    let doc: serde_json::Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["paths"]["/api/v1/orgs/{org}/projects"]["post"].is_object());
    let html = app.get("/api/docs").await.text().await.unwrap();
    assert!(
        html.contains("/api/v1/orgs/{org}/tokens"),
        "docs page lists the endpoints"
    );
    assert!(html.contains("href=\"/api/v1/openapi.json\""));
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_or_schema_mismatch() {
    let app = spawn_app().await;
    let owner = app.signup("fuzz@example.com").await;
    app.create_org(&owner, "acme").await;
    app.create_project(&owner, "acme", "web").await;
    let (status, _) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/orgs/acme/projects/web/secrets/API_KEY",
            &owner,
            Some(json!({"value": "v"})),
        )
        .await;
    assert_eq!(status, 201);
    let token = app.create_token(&owner, "acme", &["admin"]).await;
    let schema = app.url("/api/v1/openapi.json");
    // One worker: with two threads, CPython 3.11.7's `ast.parse` (used by hypothesis to
    // describe filters) can fail with "AST constructor recursion depth mismatch" (a CPython
    // race fixed in 3.11.8), which schemathesis reports as an error of the operation.
    // CI uses a fixed seed so a landing never hinges on luck; locally every run explores anew
    // (set SLUICE_SCHEMATHESIS_SEED to replay one).
    let seed = std::env::var("SLUICE_SCHEMATHESIS_SEED")
        .ok()
        .or_else(|| std::env::var_os("CI").map(|_| "20261129".to_owned()));
    let scratch = tempfile::tempdir().unwrap();
    let cwd = scratch.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("schemathesis")
            .current_dir(cwd)
            .args(["run", &schema, "--no-color", "--max-examples", "25", "--workers", "1"])
            .args(["--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance"])
            .args(["-H", &format!("Authorization: Bearer {token}")])
            .args(seed.iter().flat_map(|seed| ["--seed".to_owned(), seed.clone()]))
            .output()
    })
    .await
    .unwrap()
    .expect("schemathesis on PATH (pip install schemathesis; .ci/run does)");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis failed:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(report.contains("passed"), "{report}");
}
