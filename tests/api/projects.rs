//! Projects, webhook secrets and project secrets.

use serde_json::json;

use crate::helpers::{Auth, spawn_app};

#[tokio::test]
async fn a_project_gets_webhook_urls_and_an_encrypted_secret() {
    let app = spawn_app().await;
    let alice = app.signup("alice@example.com").await;
    app.create_org(&alice, "acme").await;
    let project = app.create_project(&alice, "acme", "web").await;
    assert_eq!(project["default_branch"], "main");
    assert_eq!(project["pipeline_path"], "Jenkinsfile");
    assert_eq!(
        project["webhook"]["gitlab_url"],
        app.url("/hooks/gitlab/acme/web")
    );
    assert_eq!(
        project["webhook"]["github_url"],
        app.url("/hooks/github/acme/web")
    );
    let secret = project["webhook"]["secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 40);

    use sea_orm::{ConnectionTrait, Statement};
    let row = app
        .db
        .query_one_raw(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT webhook_secret_enc FROM projects",
        ))
        .await
        .unwrap()
        .unwrap();
    let sealed: Vec<u8> = row.try_get_by_index(0).unwrap();
    assert!(
        !sealed.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "secret stored in clear"
    );

    let (status, shown) = app.get_as("/api/v1/orgs/acme/projects/web", &alice).await;
    assert_eq!(status, 200);
    assert_eq!(shown["webhook"]["secret"], secret.as_str());
    let viewer = Auth::Token(app.create_token(&alice, "acme", &["read"]).await);
    let (_, shown) = app.get_as("/api/v1/orgs/acme/projects/web", &viewer).await;
    assert!(
        shown["webhook"].get("secret").is_none(),
        "viewers do not see the secret"
    );
}

#[tokio::test]
async fn project_input_is_validated_field_by_field() {
    let app = spawn_app().await;
    let alice = app.signup("alice@example.com").await;
    app.create_org(&alice, "acme").await;
    for (body, field) in [
        (
            json!({"slug": "Web", "name": "Web", "repo_url": "https://x.example/r.git"}),
            "slug",
        ),
        (
            json!({"slug": "web", "name": "Web", "repo_url": "not a url"}),
            "repo_url",
        ),
        (
            json!({"slug": "web", "name": "Web", "repo_url": "https://x.example/r.git", "default_branch": "a b"}),
            "default_branch",
        ),
        (
            json!({"slug": "web", "name": "Web", "repo_url": "https://x.example/r.git", "pipeline_path": "../etc/passwd"}),
            "pipeline_path",
        ),
    ] {
        let (status, err) = app
            .post_as("/api/v1/orgs/acme/projects", &alice, body)
            .await;
        assert_eq!(status, 400, "{err}");
        assert_eq!(err["error"]["details"]["field"], field);
    }
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM projects").await.unwrap(),
        "0"
    );
    app.create_project(&alice, "acme", "web").await;
    let (status, _) = app
        .post_as(
            "/api/v1/orgs/acme/projects",
            &alice,
            json!({"slug": "web", "name": "Again", "repo_url": "https://x.example/r.git"}),
        )
        .await;
    assert_eq!(status, 409);

    let (status, updated) = app
        .call(
            reqwest::Method::PATCH,
            "/api/v1/orgs/acme/projects/web",
            &alice,
            Some(json!({"default_branch": "develop"})),
        )
        .await;
    assert_eq!(
        (status, updated["default_branch"].as_str()),
        (200, Some("develop"))
    );
    let (status, _) = app
        .call(
            reqwest::Method::DELETE,
            "/api/v1/orgs/acme/projects/web",
            &alice,
            None,
        )
        .await;
    assert_eq!(status, 204);
    assert_eq!(
        app.get_as("/api/v1/orgs/acme/projects/web", &alice).await.0,
        404
    );
}

#[tokio::test]
async fn lists_are_paginated_with_a_cursor() {
    let app = spawn_app().await;
    let alice = app.signup("alice@example.com").await;
    app.create_org(&alice, "acme").await;
    for slug in ["one", "two", "three"] {
        app.create_project(&alice, "acme", slug).await;
    }
    let (_, first) = app
        .get_as("/api/v1/orgs/acme/projects?limit=2", &alice)
        .await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = app
        .get_as(
            &format!("/api/v1/orgs/acme/projects?limit=2&cursor={cursor}"),
            &alice,
        )
        .await;
    assert_eq!(second["items"][0]["slug"], "three");
    assert!(second["next_cursor"].is_null());
    assert_eq!(
        app.get_as("/api/v1/orgs/acme/projects?limit=500", &alice)
            .await
            .0,
        400
    );
    assert_eq!(
        app.get_as("/api/v1/orgs/acme/projects?cursor=zzz", &alice)
            .await
            .0,
        400
    );
}

#[tokio::test]
async fn secret_values_go_in_encrypted_and_never_come_out() {
    let app = spawn_app().await;
    let alice = app.signup("alice@example.com").await;
    app.create_org(&alice, "acme").await;
    app.create_project(&alice, "acme", "web").await;
    let path = "/api/v1/orgs/acme/projects/web/secrets/DEPLOY_TOKEN";
    let value = "s3cr3t-deploy-value-1234";
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            path,
            &alice,
            Some(json!({"value": value})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, _) = app
        .call(
            reqwest::Method::PUT,
            path,
            &alice,
            Some(json!({"value": "rotated-value-5678"})),
        )
        .await;
    assert_eq!(status, 200, "replacing answers 200");

    // At rest: ciphertext only; with the server's keys it opens to the latest value.
    use sea_orm::{ConnectionTrait, Statement};
    let row = app
        .db
        .query_one_raw(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT value_enc FROM project_secrets",
        ))
        .await
        .unwrap()
        .unwrap();
    let sealed: Vec<u8> = row.try_get_by_index(0).unwrap();
    assert!(
        !sealed.windows(8).any(|w| w == b"rotated-"),
        "secret stored in clear"
    );
    let me = app.get_as("/api/v1/user", &alice).await.1;
    let user = sluice_core::store::users::get(&app.db, me["id"].as_i64().unwrap())
        .await
        .unwrap();
    let principal = sluice_core::tenancy::Principal::User(user);
    let scope = sluice_core::tenancy::TenantScope::resolve(&app.db, &principal, "acme")
        .await
        .unwrap();
    let stored = sluice_core::store::projects::secret_value(
        &app.db,
        &scope,
        &app.state.keys,
        "web",
        "DEPLOY_TOKEN",
    )
    .await
    .unwrap();
    assert_eq!(stored, "rotated-value-5678");

    let (status, list) = app
        .get_as("/api/v1/orgs/acme/projects/web/secrets", &alice)
        .await;
    assert_eq!(status, 200);
    assert_eq!(list["items"][0]["name"], "DEPLOY_TOKEN");
    assert!(!list.to_string().contains("rotated-value"), "{list}");
    let (_, audit) = app.get_as("/api/v1/orgs/acme/audit", &alice).await;
    assert!(!audit.to_string().contains("rotated-value"), "{audit}");

    let (status, err) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/orgs/acme/projects/web/secrets/-bad",
            &alice,
            Some(json!({"value": "x"})),
        )
        .await;
    assert_eq!(
        (status, err["error"]["details"]["field"].as_str()),
        (400, Some("name"))
    );
    let (status, _) = app.call(reqwest::Method::DELETE, path, &alice, None).await;
    assert_eq!(status, 204);
    let (status, _) = app.call(reqwest::Method::DELETE, path, &alice, None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn concurrent_writes_to_a_project_being_deleted_never_fail_with_500() {
    let app = spawn_app().await;
    let alice = app.signup("alice@example.com").await;
    app.create_org(&alice, "acme").await;
    for round in 0..3 {
        let slug = format!("web{round}");
        app.create_project(&alice, "acme", &slug).await;
        let base = format!("/api/v1/orgs/acme/projects/{slug}");
        let mut specs = Vec::new();
        for i in 0..8 {
            specs.push((
                reqwest::Method::PUT,
                format!("{base}/secrets/KEY_{i}"),
                Some(json!({"value": "v"})),
            ));
            specs.push((
                reqwest::Method::PATCH,
                base.clone(),
                Some(json!({"name": format!("Name {i}")})),
            ));
            if i == 4 {
                specs.push((reqwest::Method::DELETE, base.clone(), None));
            }
        }
        let calls = specs
            .iter()
            .map(|(method, path, body)| app.call(method.clone(), path, &alice, body.clone()));
        let results = futures_util::future::join_all(calls).await;
        for (status, body) in results {
            assert!(
                [200, 201, 204, 404].contains(&status),
                "round {round}: {status} {body}"
            );
        }
    }
}
