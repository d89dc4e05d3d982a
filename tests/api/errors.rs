use crate::helpers::{assert_error, spawn_app};

#[tokio::test]
async fn unknown_routes_answer_404_in_the_error_shape() {
    let app = spawn_app().await;
    assert_error(app.get("/no/such/route").await, 404, "not_found").await;
    assert_error(app.get("/static/missing.css").await, 404, "not_found").await;
    assert_error(
        app.get("/api/v1/orgs/acme/nothing/here").await,
        404,
        "not_found",
    )
    .await;
    assert_error(app.get("/api/v1/nothing").await, 404, "not_found").await;
}

#[tokio::test]
async fn wrong_methods_answer_405_in_the_error_shape() {
    let app = spawn_app().await;
    let res = app.client.post(app.url("/healthz")).send().await.unwrap();
    assert_error(res, 405, "method_not_allowed").await;
    let res = app.client.delete(app.url("/metrics")).send().await.unwrap();
    assert_error(res, 405, "method_not_allowed").await;
    let res = app
        .client
        .put(app.url("/api/v1/user"))
        .send()
        .await
        .unwrap();
    assert_error(res, 405, "method_not_allowed").await;
    let res = app
        .client
        .put(app.url("/api/v1/orgs/acme/projects"))
        .send()
        .await
        .unwrap();
    assert_error(res, 405, "method_not_allowed").await;
}

#[tokio::test]
async fn every_response_carries_a_distinct_request_id() {
    let app = spawn_app().await;
    let first = app.get("/healthz").await;
    let second = app.get("/no/such/route").await;
    let a = first.headers()["x-request-id"].to_str().unwrap().to_owned();
    let b = second.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(a.len(), 36, "{a}");
    assert_ne!(a, b);
}
