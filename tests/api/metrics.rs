use std::io::Write;
use std::process::{Command, Stdio};

use crate::helpers::spawn_app;

#[tokio::test]
async fn http_metrics_are_labelled_by_route_template_never_raw_path() {
    let app = spawn_app().await;
    app.get("/static/app.css").await;
    app.get("/static/favicon.svg").await;
    app.get("/users/12345/secret-path").await;
    app.client.post(app.url("/healthz")).send().await.unwrap();
    let text = app.get("/metrics").await.text().await.unwrap();

    assert!(
        text.contains(
            r#"sluice_http_requests_total{method="GET",route="/static/{file}",status="200"} 2"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"sluice_http_requests_total{method="GET",route="unmatched",status="404"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"sluice_http_requests_total{method="POST",route="/healthz",status="405"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(
        r#"sluice_http_request_duration_seconds_count{method="GET",route="/static/{file}"} 2"#
    ));
    assert!(!text.contains("12345"), "raw path leaked into labels");
    assert!(!text.contains("app.css"), "raw path leaked into labels");
}

#[tokio::test]
async fn metrics_pass_promtool_check() {
    let app = spawn_app().await;
    app.get("/healthz").await;
    let res = app.get("/metrics").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = res.text().await.unwrap();
    assert!(
        text.contains("process_resident_memory_bytes"),
        "process metrics exported"
    );

    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool on PATH (Debian package `prometheus`; .ci/run installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
