use serde_json::Value;

use crate::helpers::{assert_error, redis_url, spawn_app, spawn_app_with};

#[tokio::test]
async fn healthz_answers_200() {
    let app = spawn_app().await;
    let res = app.get("/healthz").await;
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("x-request-id"));
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

#[tokio::test]
async fn readyz_answers_200_when_the_database_answers() {
    let app = spawn_app().await;
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["checks"][0]["component"], "database");
    assert_eq!(body["checks"][0]["ok"], true);
    assert_eq!(
        body["checks"].as_array().unwrap().len(),
        1,
        "no queue check without Redis"
    );
}

#[tokio::test]
async fn readyz_fails_with_503_when_the_database_is_gone() {
    let app = spawn_app().await;
    assert_eq!(app.get("/readyz").await.status(), 200);
    app.lose_database().await;
    let body = assert_error(app.get("/readyz").await, 503, "unavailable").await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("database"),
        "{body}"
    );
    assert_eq!(body["error"]["details"]["checks"][0]["ok"], false);
    // Liveness does not depend on the database.
    assert_eq!(app.get("/healthz").await.status(), 200);
}

#[tokio::test]
async fn readyz_checks_redis_when_it_is_configured() {
    let app = spawn_app_with(|s| s.redis_url = Some(redis_url().into())).await;
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["checks"][1]["component"], "queue");
    assert_eq!(body["checks"][1]["ok"], true);
}

#[tokio::test]
async fn readyz_names_redis_when_it_does_not_answer() {
    // Port 1 on loopback: nothing listens there.
    let app = spawn_app_with(|s| s.redis_url = Some("redis://127.0.0.1:1".to_owned().into())).await;
    let body = assert_error(app.get("/readyz").await, 503, "unavailable").await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("queue") && !message.contains("database"),
        "{body}"
    );
    assert_eq!(body["error"]["details"]["checks"][0]["ok"], true);
    assert_eq!(body["error"]["details"]["checks"][1]["ok"], false);
}
