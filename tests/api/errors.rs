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

#[tokio::test]
async fn nul_and_control_characters_are_refused_not_500() {
    // PostgreSQL cannot store NUL in text: such input must be refused at the edge.
    let app = spawn_app().await;
    let (status, _) = app
        .post_as(
            "/auth/login",
            &crate::helpers::Auth::None,
            serde_json::json!({"email": "a\u{0}@example.com", "password": "whatever1"}),
        )
        .await;
    assert_eq!(status, 401);
    let alice = app.signup("alice@example.com").await;
    app.create_org(&alice, "acme").await;
    assert_eq!(
        app.get_as("/api/v1/orgs/ac%00me/projects", &alice).await.0,
        404
    );
    assert_eq!(
        app.get_as("/api/v1/orgs/acme/projects/w%00b", &alice)
            .await
            .0,
        404
    );
    let (status, err) = app
        .post_as(
            "/api/v1/orgs/acme/projects",
            &alice,
            serde_json::json!({"slug": "web", "name": "We\u{0}b", "repo_url": "https://x.example/w.git"}),
        )
        .await;
    assert_eq!(
        (status, err["error"]["details"]["field"].as_str()),
        (400, Some("name"))
    );
    // A NUL cannot travel in a header, but it can inside HTTP Basic's base64.
    let token = format!("slc_{}", "\u{0}".repeat(43));
    let basic = crate::helpers::Auth::Basic("alice@example.com".into(), token);
    assert_eq!(app.get_as("/api/v1/orgs", &basic).await.0, 401);
}
