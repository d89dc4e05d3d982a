//! Multibranch projects and change requests, end to end: a real repository with a pull
//! request ref, signed GitHub and GitLab deliveries, a real worker. Every branch builds
//! through the project's `branches` filter; pull and merge requests run as change requests
//! (`BRANCH_NAME=PR-n`, `CHANGE_*`, `when { changeRequest() }`), a fork's without secrets;
//! every run records its ref type, commit, message and author whoever started it.

use std::time::Duration;

use serde_json::{Value, json};
use sluice_core::crypto::hmac_sha256_hex;

use crate::execution::{SECRET, head, setup, text_log};
use crate::fleet::{Backend, git, queue, start_fleet, wait_for_run};
use crate::helpers::{TestApp, spawn_app};

const ENDED: [&str; 4] = ["succeeded", "unstable", "failed", "cancelled"];

async fn deliver(
    app: &TestApp,
    secret: &str,
    event: &str,
    body: Vec<u8>,
    form: bool,
) -> (u16, Value) {
    let signature = format!("sha256={}", hmac_sha256_hex(secret.as_bytes(), &body));
    let content_type = if form {
        "application/x-www-form-urlencoded"
    } else {
        "application/json"
    };
    let res = app
        .client
        .post(app.url("/hooks/github/acme/web"))
        .header("content-type", content_type)
        .header("x-github-event", event)
        .header("x-github-delivery", uuid::Uuid::new_v4().to_string())
        .header("x-hub-signature-256", signature)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn gitlab(
    app: &TestApp,
    token: &str,
    event: &str,
    headers: &[(&str, &str)],
    body: &Value,
) -> (u16, Value) {
    let mut req = app
        .client
        .post(app.url("/hooks/gitlab/acme/web"))
        .header("x-gitlab-token", token)
        .header("x-gitlab-event", event);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let res = req.json(body).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn github_push(branch: &str, sha: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "ref": format!("refs/heads/{branch}"),
        "after": sha,
        "head_commit": {"id": sha, "message": "Add a thing\n\nWith a body.", "author": {"name": "Ada", "email": "ada@example.com"}},
        "repository": {"full_name": "acme/web"},
    }))
    .unwrap()
}

const PIPELINE: &str = r#"pipeline {
    agent any
    stages {
        stage('Review') {
            when { changeRequest() }
            steps {
                sh 'echo "review $BRANCH_NAME #$CHANGE_ID $CHANGE_BRANCH->$CHANGE_TARGET fork=$CHANGE_FORK by $CHANGE_AUTHOR: $CHANGE_TITLE"'
            }
        }
        stage('Into main') {
            when { changeRequest target: 'main' }
            steps { echo 'targets main' }
        }
        stage('From a fix branch') {
            when { changeRequest branch: 'fix-*', comparator: 'GLOB' }
            steps { echo 'FIX BRANCH BUILD' }
        }
        stage('Deploy') {
            when { branch 'main' }
            steps { echo 'DEPLOYING main' }
        }
        stage('Branch') {
            when { not { changeRequest() } }
            steps { sh 'echo "branch build of $BRANCH_NAME"' }
        }
        stage('Publish') {
            steps {
                withCredentials([string(credentialsId: 'DEPLOY_TOKEN', variable: 'T')]) {
                    sh 'test -n "$T" && echo published'
                }
            }
        }
    }
}
"#;

/// A pull request from a fork (`refs/pull/5/head` in the base repository, as GitHub keeps
/// it), on a branch named `main` like the fork's default: it runs as PR-5, the `branch
/// 'main'` deploy stage does not run, and the project's secrets are withheld.
#[tokio::test]
async fn a_forks_pull_request_runs_as_a_change_request_without_secrets() {
    let app = spawn_app().await;
    let (owner, repo, hook) = setup(&app, PIPELINE).await;
    let base = head(&repo);
    // The fork's commit, kept by the provider under the pull request's head ref only.
    git(repo.dir.path(), &["checkout", "--quiet", "-b", "scratch"]);
    std::fs::write(repo.dir.path().join("change.txt"), "from the fork").unwrap();
    git(repo.dir.path(), &["add", "change.txt"]);
    git(
        repo.dir.path(),
        &["commit", "--quiet", "-m", "Fork change\n\nDetails."],
    );
    let proposed = head(&repo);
    git(
        repo.dir.path(),
        &["update-ref", "refs/pull/5/head", &proposed],
    );
    git(repo.dir.path(), &["checkout", "--quiet", "main"]);
    git(repo.dir.path(), &["branch", "--quiet", "-D", "scratch"]);

    let pr = json!({
        "action": "opened",
        "number": 5,
        "pull_request": {
            "number": 5, "title": "Fix the thing", "html_url": "https://github.com/acme/web/pull/5",
            "user": {"login": "mallory"},
            "head": {"ref": "main", "sha": proposed, "repo": {"full_name": "mallory/web"}},
            "base": {"ref": "main", "sha": base, "repo": {"full_name": "acme/web"}},
        },
    });
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 1);
    let (status, answer) = deliver(
        &app,
        &hook,
        "pull_request",
        serde_json::to_vec(&pr).unwrap(),
        false,
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let number = answer["run"].as_i64().unwrap();
    let path = format!("/api/v1/orgs/acme/projects/web/runs/{number}");
    let run = wait_for_run(&app, &owner, &path, &ENDED).await;
    let log = text_log(&app, &owner, number).await;
    assert_eq!(run["status"], "failed", "{run}\n{log}");
    assert_eq!(run["commit"], proposed.as_str());
    assert_eq!(run["ref_type"], "change_request");
    assert_eq!(run["change"]["fork"], "mallory/web");
    // Described by the checkout, as the pull request payload has no commit message.
    assert_eq!(run["commit_message"], "Fork change\n\nDetails.");
    assert_eq!(run["commit_author"], "Test <test@example.com>");
    assert!(
        log.contains("review PR-5 #5 main->main fork=mallory/web by mallory: Fix the thing"),
        "{log}"
    );
    assert!(log.contains("targets main"), "{log}");
    assert!(!log.contains("FIX BRANCH BUILD"), "{log}");
    assert!(
        !log.contains("DEPLOYING main"),
        "a fork's branch named main deployed:\n{log}"
    );
    assert!(!log.contains("branch build of"), "{log}");
    assert!(!log.contains("published"), "{log}");
    assert!(log.contains("[sluice] secrets withheld"), "{log}");
    let reason = run["reason"].as_str().unwrap();
    assert!(
        reason.contains("secrets are withheld") && reason.contains("fork_secrets"),
        "{reason}"
    );

    // A branch of the project's own repository, pushed: a branch build with the secrets.
    // Its Jenkinsfile adds a schedule, which a branch other than the default does not apply.
    git(repo.dir.path(), &["checkout", "--quiet", "-b", "fix-login"]);
    std::fs::write(
        repo.dir.path().join("Jenkinsfile"),
        PIPELINE.replacen(
            "agent any",
            "agent any\n    triggers { cron('H 5 * * *') }",
            1,
        ),
    )
    .unwrap();
    git(
        repo.dir.path(),
        &["commit", "--quiet", "-am", "on a branch"],
    );
    let sha = head(&repo);
    let (status, answer) =
        deliver(&app, &hook, "push", github_push("fix-login", &sha), false).await;
    assert_eq!(status, 202, "{answer}");
    let number = answer["run"].as_i64().unwrap();
    let path = format!("/api/v1/orgs/acme/projects/web/runs/{number}");
    let run = wait_for_run(&app, &owner, &path, &ENDED).await;
    let log = text_log(&app, &owner, number).await;
    assert_eq!(run["status"], "succeeded", "{run}\n{log}");
    assert_eq!(
        (run["ref"].as_str(), run["ref_type"].as_str()),
        (Some("fix-login"), Some("branch"))
    );
    assert!(log.contains("branch build of fix-login"), "{log}");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM projects WHERE pipeline_cron IS NOT NULL")
            .await
            .as_deref(),
        Some("0"),
        "a branch's Jenkinsfile rescheduled the project"
    );
    assert!(log.contains("published"), "{log}");
    assert!(!log.contains("review "), "{log}");
    assert!(!log.contains(SECRET), "{log}");
}

/// A same-repository merge request from `fix-*`: no fork, so the secrets are there; and an
/// admin may give forks the secrets, a developer may not.
#[tokio::test]
async fn merge_requests_run_as_mr_n_and_fork_secrets_are_an_admin_setting() {
    let app = spawn_app().await;
    let (owner, repo, hook) = setup(&app, PIPELINE).await;
    git(repo.dir.path(), &["checkout", "--quiet", "-b", "fix-typo"]);
    git(
        repo.dir.path(),
        &["commit", "--quiet", "--allow-empty", "-m", "Fix a typo"],
    );
    let sha = head(&repo);
    git(
        repo.dir.path(),
        &["update-ref", "refs/merge-requests/3/head", &sha],
    );
    git(repo.dir.path(), &["checkout", "--quiet", "main"]);
    let mr = json!({
        "object_kind": "merge_request",
        "user": {"username": "ada"},
        "object_attributes": {
            "iid": 3, "action": "open", "title": "Fix a typo", "url": "https://gitlab.example.com/acme/web/-/merge_requests/3",
            "source_branch": "fix-typo", "target_branch": "main", "source_project_id": 7, "target_project_id": 7,
            "last_commit": {"id": sha, "message": "Fix a typo", "author": {"name": "Ada", "email": "ada@example.com"}},
        },
    });
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 1);
    let (status, answer) = gitlab(
        &app,
        &hook,
        "Merge Request Hook",
        &[("x-gitlab-event-uuid", "u1")],
        &mr,
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    let number = answer["run"].as_i64().unwrap();
    let path = format!("/api/v1/orgs/acme/projects/web/runs/{number}");
    let run = wait_for_run(&app, &owner, &path, &ENDED).await;
    let log = text_log(&app, &owner, number).await;
    assert_eq!(run["status"], "succeeded", "{run}\n{log}");
    assert!(
        log.contains("review MR-3 #3 fix-typo->main fork= by ada: Fix a typo"),
        "{log}"
    );
    assert!(log.contains("FIX BRANCH BUILD"), "{log}");
    assert!(log.contains("published"), "{log}");
    assert!(!log.contains("DEPLOYING"), "{log}");

    // Giving forks the secrets takes an admin.
    let (dev, _) = app
        .join(&owner, "acme", "dev@example.com", "developer")
        .await;
    let (status, body) = app
        .call(
            reqwest::Method::PATCH,
            "/api/v1/orgs/acme/projects/web",
            &dev,
            Some(json!({"fork_secrets": true})),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("fork_secrets"),
        "{body}"
    );
    let (status, body) = app
        .call(
            reqwest::Method::PATCH,
            "/api/v1/orgs/acme/projects/web",
            &owner,
            Some(json!({"fork_secrets": true})),
        )
        .await;
    assert_eq!(
        (status, body["fork_secrets"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
}

/// Deliveries that start nothing, or start a run once: the branch filter, a title-only merge
/// request edit, GitLab's retries under one `Idempotency-Key`, GitHub's form-encoded bodies.
#[tokio::test]
async fn branch_filters_title_edits_retries_and_form_bodies() {
    let app = spawn_app().await;
    let owner = app.signup("owner@example.com").await;
    app.create_org(&owner, "acme").await;
    let (status, project) = app
        .post_as(
            "/api/v1/orgs/acme/projects",
            &owner,
            json!({"slug": "web", "name": "Web", "repo_url": "https://github.com/acme/web.git"}),
        )
        .await;
    assert_eq!(status, 201, "{project}");
    assert_eq!(project["branches"], json!(["*"]));
    assert_eq!(project["fork_secrets"], false);
    let hook = project["webhook"]["secret"].as_str().unwrap().to_owned();

    // A bad filter names the field and changes nothing.
    for bad in [json!([]), json!(["two words"]), json!(["!only-excludes"])] {
        let (status, body) = app
            .call(
                reqwest::Method::PATCH,
                "/api/v1/orgs/acme/projects/web",
                &owner,
                Some(json!({"branches": bad})),
            )
            .await;
        assert_eq!(
            (status, body["error"]["details"]["field"].as_str()),
            (400, Some("branches")),
            "{body}"
        );
    }
    let (status, body) = app
        .call(
            reqwest::Method::PATCH,
            "/api/v1/orgs/acme/projects/web",
            &owner,
            Some(json!({"branches": ["main", "release/*", "!release/*-wip"]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["branches"],
        json!(["main", "release/*", "!release/*-wip"])
    );

    let sha = "da1560886d4f094c3e6c9ef40349f7d38b5d27d7";
    let (status, answer) = deliver(&app, &hook, "push", github_push("feature/x", sha), false).await;
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer["ignored"]
            .as_str()
            .unwrap()
            .contains("branches filter"),
        "{answer}"
    );
    let (status, answer) = deliver(
        &app,
        &hook,
        "push",
        github_push("release/2-wip", sha),
        false,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) =
        deliver(&app, &hook, "push", github_push("release/2.1", sha), false).await;
    assert_eq!((status, answer["run"].as_i64()), (202, Some(1)), "{answer}");

    // GitHub's form-encoded delivery: the JSON in `payload`, the signature over the form.
    let json_body = String::from_utf8(github_push("main", sha)).unwrap();
    let form: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &json_body)
        .finish();
    let (status, answer) = deliver(&app, &hook, "push", form.into_bytes(), true).await;
    assert_eq!((status, answer["run"].as_i64()), (202, Some(2)), "{answer}");
    let (status, answer) = deliver(&app, &hook, "push", b"other=1".to_vec(), true).await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("payload"),
        "{answer}"
    );

    // GitLab: a title-only edit starts nothing; an update with commits does, once, whatever
    // event UUID each retry carries.
    let mut mr = json!({
        "object_kind": "merge_request",
        "user": {"username": "ada"},
        "object_attributes": {
            "iid": 9, "action": "update", "title": "New title", "url": "https://gitlab.example.com/acme/web/-/merge_requests/9",
            "source_branch": "topic", "target_branch": "main", "source_project_id": 8, "target_project_id": 7,
            "source": {"path_with_namespace": "ada/web"},
            "last_commit": {"id": sha, "message": "m", "author": {"name": "Ada", "email": "ada@example.com"}},
        },
        "changes": {"title": {"previous": "Old title", "current": "New title"}},
    });
    let (status, answer) = gitlab(
        &app,
        &hook,
        "Merge Request Hook",
        &[("idempotency-key", "k0")],
        &mr,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["ignored"],
        "merge request update without new commits"
    );
    mr["object_attributes"]["oldrev"] = json!("95790bf891e76fee5e1747ab589903a6a1f80f22");
    let (status, answer) = gitlab(
        &app,
        &hook,
        "Merge Request Hook",
        &[("idempotency-key", "k1"), ("x-gitlab-event-uuid", "first")],
        &mr,
    )
    .await;
    assert_eq!((status, answer["run"].as_i64()), (202, Some(3)), "{answer}");
    let (status, answer) = gitlab(
        &app,
        &hook,
        "Merge Request Hook",
        &[("idempotency-key", "k1"), ("x-gitlab-event-uuid", "retry")],
        &mr,
    )
    .await;
    assert_eq!(
        (status, answer["ignored"].as_str()),
        (200, Some("duplicate delivery")),
        "{answer}"
    );
    let (_, run) = app
        .get_as("/api/v1/orgs/acme/projects/web/runs/3", &owner)
        .await;
    assert_eq!(run["ref"], "refs/merge-requests/9/head");
    assert_eq!(run["change"]["fork"], "ada/web");

    // A wrong or missing token is explained in GitLab's terms.
    let (status, err) = gitlab(&app, "nope", "Push Hook", &[], &json!({})).await;
    assert_eq!(status, 401);
    assert_eq!(
        err["error"]["message"],
        "X-Gitlab-Token does not match this project's webhook secret"
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM runs").await.as_deref(),
        Some("3")
    );
}

/// Runs started from the API, the UI's button and the Jenkins API record their commit when
/// they are created (the ref is looked up then), and its message and author once checked out.
#[tokio::test]
async fn runs_from_the_api_the_ui_and_the_jenkins_api_record_their_commit() {
    let app = spawn_app().await;
    let (owner, repo, _hook) = setup(
        &app,
        "pipeline { agent any\n stages { stage('A') { steps { echo 'hi' } } } }\n",
    )
    .await;
    git(repo.dir.path(), &["tag", "-a", "v1", "-m", "one"]);
    let first = head(&repo);
    git(
        repo.dir.path(),
        &["commit", "--quiet", "--allow-empty", "-m", "Second commit"],
    );
    let second = head(&repo);

    let runs = "/api/v1/orgs/acme/projects/web/runs";
    let (status, run) = app.post_as(runs, &owner, json!({})).await;
    assert_eq!(status, 201, "{run}");
    assert_eq!(
        (run["commit"].as_str(), run["ref_type"].as_str()),
        (Some(second.as_str()), Some("branch"))
    );
    let (status, run) = app.post_as(runs, &owner, json!({"ref": "v1"})).await;
    assert_eq!(status, 201, "{run}");
    assert_eq!(
        (run["commit"].as_str(), run["ref_type"].as_str()),
        (Some(first.as_str()), Some("tag"))
    );
    let (status, err) = app
        .post_as(runs, &owner, json!({"ref": "no-such-branch"}))
        .await;
    assert_eq!(
        (status, err["error"]["details"]["field"].as_str()),
        (400, Some("ref")),
        "{err}"
    );
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no-such-branch"),
        "{err}"
    );

    // The Jenkins API's build, with the user's API token.
    let (_, token) = app
        .post_as(
            "/api/v1/orgs/acme/tokens",
            &owner,
            json!({"name": "ci", "scopes": ["write"]}),
        )
        .await;
    let res = app
        .client
        .post(app.url("/jenkins/acme/job/web/build"))
        .bearer_auth(token["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let (_, run) = app.get_as(&format!("{runs}/3"), &owner).await;
    assert_eq!(
        (run["trigger"].as_str(), run["commit"].as_str()),
        (Some("jenkins"), Some(second.as_str()))
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM runs").await.as_deref(),
        Some("3")
    );

    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 1);
    let run = wait_for_run(&app, &owner, &format!("{runs}/1"), &ENDED).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["commit_message"], "Second commit");
    assert_eq!(run["commit_author"], "Test <test@example.com>");
    let run = wait_for_run(&app, &owner, &format!("{runs}/2"), &ENDED).await;
    assert_eq!(
        (run["commit_message"].as_str(), run["ref_type"].as_str()),
        (Some("pipeline"), Some("tag"))
    );

    // The Jenkins API shows it where the git plugin does.
    let (_, build) = app.get_as("/jenkins/acme/job/web/1/api/json", &owner).await;
    assert_eq!(
        build["actions"][0]["lastBuiltRevision"]["SHA1"],
        second.as_str(),
        "{build}"
    );
    assert_eq!(build["changeSets"][0]["items"][0]["msg"], "Second commit");
    assert_eq!(
        build["changeSets"][0]["items"][0]["author"]["fullName"],
        "Test <test@example.com>"
    );

    // The run page shows what was built.
    let (_, page) = app.page("/orgs/acme/projects/web/runs/1", &owner).await;
    assert!(
        page.contains("Second commit") && page.contains("test@example.com"),
        "{page}"
    );
}

/// A cron run's ref is looked up as soon as it is queued (in the background, so the
/// dispatcher is not held up), before any worker takes it.
#[tokio::test]
async fn a_cron_run_records_its_commit_while_queued() {
    use sea_orm::ConnectionTrait;
    let app = spawn_app().await;
    let (owner, repo, _hook) = setup(
        &app,
        "pipeline { agent any\n stages { stage('A') { steps { echo 'hi' } } } }\n",
    )
    .await;
    app.db
        .execute_unprepared("UPDATE projects SET pipeline_cron = '* * * * *'")
        .await
        .unwrap();
    let from = chrono::Utc::now();
    let fired = sluice_core::cron_runs::fire_due(
        &app.db,
        from,
        from + chrono::Duration::minutes(1),
        Some(&app.state.repo_access),
    )
    .await
    .unwrap();
    assert_eq!(fired, 1);
    let path = "/api/v1/orgs/acme/projects/web/runs/1";
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, run) = app.get_as(path, &owner).await;
        assert_eq!(run["status"], "queued", "no worker runs here: {run}");
        if run["commit"] == head(&repo).as_str() {
            assert_eq!(
                (run["trigger"].as_str(), run["ref_type"].as_str()),
                (Some("cron"), Some("branch"))
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the cron run's commit was never recorded: {run}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
