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

/// A run page in Chromium: the log updates live, a gate is approved with its button.
#[tokio::test]
async fn browser_watches_a_run_log_live_and_approves_its_gate() {
    use crate::fleet::{Backend, git_repo, project_for, queue, start_fleet, wait_for_run};
    let app = spawn_app().await;
    let owner = app.signup("qa@example.com").await;
    app.create_org(&owner, "acme").await;
    let repo = git_repo(
        r#"pipeline {
    agent any
    stages {
        stage('Build') {
            steps {
                sh 'for i in $(seq 1 40); do printf "\\033[32mtick-%s\\033[0m\\n" "$i"; sleep 0.25; done'
            }
        }
        stage('Checks') {
            parallel {
                stage('Unit') { steps { echo 'unit' } }
                stage('Lint') { steps { echo 'lint' } }
            }
        }
        stage('Release') {
            input {
                message 'Ship it?'
                ok 'Ship'
            }
            steps { echo 'shipped' }
        }
    }
}
"#,
    );
    project_for(&app, &owner, "acme", "web", &repo).await;
    let q = queue(&app, Backend::Embedded, std::time::Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 1);
    let (status, run) = app
        .post_as(
            "/api/v1/orgs/acme/projects/web/runs",
            &owner,
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 201, "{run}");
    let page = "/orgs/acme/projects/web/runs/1".to_owned();
    let result = run_flow(
        "run-live.mjs",
        vec![
            app.url(""),
            "qa@example.com".into(),
            "correct horse battery".into(),
            page,
        ],
    )
    .await;
    assert!(
        result["later"].as_i64() > result["early"].as_i64(),
        "{result}"
    );
    let run = wait_for_run(
        &app,
        &owner,
        "/api/v1/orgs/acme/projects/web/runs/1",
        &["succeeded", "failed", "cancelled"],
    )
    .await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let (_, audit) = app.get_as("/api/v1/orgs/acme/audit", &owner).await;
    assert!(audit.to_string().contains("run.approve"), "{audit}");
}

/// A release page in Chromium: its steps and traffic split follow the release live, and the
/// finished release is rolled back with its button.
#[tokio::test]
async fn browser_watches_a_release_go_through_its_steps_and_rolls_it_back() {
    use crate::fleet::{Backend, queue, start_fleet};
    use crate::release_support::{
        Releases, bump, newest_release, pipeline, release_of, release_project, run_ended,
    };
    let app = spawn_app().await;
    let flags = tempfile::tempdir().unwrap();
    let (owner, repo, hook) = release_project(
        &app,
        &pipeline("instances: 3, monitorSeconds: 8"),
        flags.path(),
    )
    .await;
    let q = queue(&app, Backend::Embedded, std::time::Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 1);
    let _releases = Releases::start(&app, "releases-a", std::time::Duration::from_secs(10));
    let first = crate::execution::push(&app, &hook, &repo).await;
    assert_eq!(run_ended(&app, &owner, first).await["status"], "succeeded");
    bump(&repo);
    let second = crate::execution::push(&app, &hook, &repo).await;
    let id = release_of(&app, &owner, second).await;
    let result = run_flow(
        "release-live.mjs",
        vec![
            app.url(""),
            "owner@example.com".into(),
            "correct horse battery".into(),
            format!("/orgs/acme/projects/web/releases/{id}"),
        ],
    )
    .await;
    assert_eq!(
        result["shares"],
        serde_json::json!(["33", "67"]),
        "{result}"
    );
    let release = newest_release(&app, &owner).await;
    assert_eq!(release["status"], "rolled_back", "{release}");
    let (_, audit) = app.get_as("/api/v1/orgs/acme/audit", &owner).await;
    assert!(audit.to_string().contains("release.rollback"), "{audit}");
    let (status, project) = app.page("/orgs/acme/projects/web", &owner).await;
    assert_eq!(status, 200);
    assert!(
        project.contains("Environments") && project.contains("production"),
        "{project}"
    );
}

/// The project settings page in Chromium against a real `sshd`: repository and branches
/// edited (a bad value refused by field), an SSH deploy key generated and tested, a secret
/// added and deleted, the webhook secret rotated, the project deleted after confirming.
#[tokio::test]
async fn browser_edits_project_settings_and_connects_a_private_repository() {
    use crate::fleet::{git_repo, project_for};
    use crate::git_servers::{Sshd, bare_copy};
    let app = spawn_app().await;
    let owner = app.signup("admin@example.com").await;
    let (status, body) = app
        .post_as(
            "/api/v1/orgs",
            &owner,
            serde_json::json!({"slug": "acme", "name": "Acme Corp"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let repo = git_repo("pipeline { agent any }");
    project_for(&app, &owner, "acme", "web", &repo).await;
    let (status, body) = app
        .call(
            reqwest::Method::PATCH,
            "/api/v1/orgs/acme/projects/web",
            &owner,
            Some(serde_json::json!({"name": "Web"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (bare_root, bare) = bare_copy(&repo);
    let sshd = Sshd::start().await;
    let token = "glpat-browser-token-5521";
    let http = crate::git_servers::start_http(bare_root.path(), "ci-bot", token);
    let (_, before) = app.get_as("/api/v1/orgs/acme/projects/web", &owner).await;
    let result = run_flow(
        "project-settings.mjs",
        vec![
            app.url(""),
            "admin@example.com".into(),
            "correct horse battery".into(),
            "/orgs/acme/projects/web/settings".into(),
            sshd.url(&bare),
            sshd.authorized_keys().display().to_string(),
            format!("{http}/app.git"),
            token.into(),
        ],
    )
    .await;
    assert_ne!(before["webhook"]["secret"], result["after"], "{result}");
    assert!(
        result["connected"]
            .as_str()
            .unwrap()
            .contains(&crate::execution::head(&repo)[..12]),
        "{result}"
    );
    let (status, _) = app.get_as("/api/v1/orgs/acme/projects/web", &owner).await;
    assert_eq!(status, 404, "deleted");
    let audit = app
        .scalar(
            "SELECT COUNT(*) FROM audit_log WHERE action IN \
             ('project.update', 'repository.credential', 'secret.put', 'webhook.rotate', 'project.delete')",
        )
        .await;
    assert_eq!(audit.as_deref(), Some("8"), "each change audited");
}

/// No page scrolls sideways on a phone (360, 390 and 414 px wide).
#[tokio::test]
async fn browser_pages_fit_phone_widths() {
    use crate::fleet::{Backend, git_repo, project_for, queue, start_fleet, wait_for_run};
    let app = spawn_app().await;
    let owner = app.signup("phone@example.com").await;
    app.create_org(&owner, "acme").await;
    let repo = git_repo(
        r#"pipeline {
    agent any
    stages {
        stage('A build stage with a rather long name') {
            steps { sh 'echo a-long-line-without-spaces-$(head -c 300 /dev/zero | tr "\\0" x)' }
        }
    }
}
"#,
    );
    project_for(&app, &owner, "acme", "web", &repo).await;
    app.create_token(&owner, "acme", &["read"]).await;
    let q = queue(&app, Backend::Embedded, std::time::Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 1);
    let (status, run) = app
        .post_as(
            "/api/v1/orgs/acme/projects/web/runs",
            &owner,
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 201, "{run}");
    wait_for_run(
        &app,
        &owner,
        "/api/v1/orgs/acme/projects/web/runs/1",
        &["succeeded", "failed"],
    )
    .await;
    let pages = [
        "/orgs",
        "/orgs/acme/projects",
        "/orgs/acme/projects/web",
        "/orgs/acme/projects/web/settings",
        "/orgs/acme/projects/web/runs/1",
        "/orgs/acme/projects/web/releases",
        "/orgs/acme/settings",
        "/orgs/acme/tokens",
        "/api/docs",
        "/lint",
    ];
    let mut args = vec![
        app.url(""),
        "phone@example.com".into(),
        "correct horse battery".into(),
    ];
    args.extend(pages.iter().map(|p| p.to_string()));
    let result = run_flow("phone-layouts.mjs", args).await;
    assert_eq!(result["checked"], pages.len() * 3, "{result}");
    assert_eq!(result["overflows"], serde_json::json!([]), "{result:#}");
}

/// The lint page shows each diagnostic with its source line and a caret.
#[tokio::test]
async fn browser_lints_a_pasted_jenkinsfile_with_a_caret_under_the_fault() {
    let app = spawn_app().await;
    app.signup("lint@example.com").await;
    let result = run_flow(
        "lint-page.mjs",
        vec![
            app.url(""),
            "lint@example.com".into(),
            "correct horse battery".into(),
        ],
    )
    .await;
    assert_eq!(result["where"], "Jenkinsfile:5:21", "{result}");
}

/// "Run with parameters" in Chromium: the picker lists branches and tags, the form is built
/// from the declared parameters, and the run gets exactly what was chosen.
#[tokio::test]
async fn browser_runs_a_tag_with_parameters() {
    use crate::fleet::{Backend, git, git_repo, project_for, queue, start_fleet, wait_for_run};
    let app = spawn_app().await;
    let owner = app.signup("runner@example.com").await;
    app.create_org(&owner, "acme").await;
    let repo = git_repo(
        r#"pipeline {
    agent any
    parameters {
        string(name: 'TARGET', defaultValue: 'staging', description: 'Where to deploy')
        choice(name: 'REGION', choices: ['eu', 'us'], description: 'Which region')
        booleanParam(name: 'DRY_RUN', defaultValue: true, description: 'Only print')
        text(name: 'NOTES', defaultValue: '', description: 'Release notes')
        password(name: 'TOKEN', defaultValue: 'default-token', description: 'Registry token')
    }
    stages {
        stage('Show') {
            steps { sh 'echo "target=$TARGET region=$REGION dry=$DRY_RUN token=$TOKEN"' }
        }
    }
}
"#,
    );
    git(repo.dir.path(), &["tag", "v1.0"]);
    git(repo.dir.path(), &["branch", "feature/x"]);
    project_for(&app, &owner, "acme", "web", &repo).await;
    let q = queue(&app, Backend::Embedded, std::time::Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 1);
    // A run of main records the parameters the form offers.
    let (status, run) = app
        .post_as(
            "/api/v1/orgs/acme/projects/web/runs",
            &owner,
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 201, "{run}");
    let ended = ["succeeded", "failed"];
    wait_for_run(
        &app,
        &owner,
        "/api/v1/orgs/acme/projects/web/runs/1",
        &ended,
    )
    .await;

    let result = run_flow(
        "run-params.mjs",
        vec![
            app.url(""),
            "runner@example.com".into(),
            "correct horse battery".into(),
            "/orgs/acme/projects/web".into(),
        ],
    )
    .await;
    assert_eq!(result["run"], "/orgs/acme/projects/web/runs/2", "{result}");
    let run = wait_for_run(
        &app,
        &owner,
        "/api/v1/orgs/acme/projects/web/runs/2",
        &ended,
    )
    .await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["ref"], "v1.0", "{run}");
    assert_eq!(run["ref_type"], "tag", "{run}");
    assert_eq!(run["params"]["TARGET"], "production", "{run}");
    assert_eq!(run["params"]["REGION"], "us", "{run}");
    assert_eq!(run["params"]["DRY_RUN"], "false", "{run}");
    assert_eq!(run["params"]["NOTES"], "first line\nsecond line", "{run}");
    assert_eq!(run["params"]["TOKEN"], "****", "{run}");
    let log = crate::execution::text_log(&app, &owner, 2).await;
    assert!(
        log.contains("target=production region=us dry=false token=****"),
        "{log}"
    );
    assert!(!log.contains("typed-secret-4711"), "{log}");

    // A ref the repository lacks: the form again, saying why, with the values kept.
    let (status, _, html) = app
        .submit(
            "/orgs/acme/projects/web/runs",
            &owner,
            &[("ref", "nope"), ("param_TARGET", "kept-value")],
        )
        .await;
    assert_eq!(status, 400, "{html}");
    assert!(
        html.contains("Not started (ref): the repository has no branch or tag `nope`"),
        "{html}"
    );
    assert!(html.contains("value=\"kept-value\""), "{html}");
}

/// The project page's stage view: runs × stages, waiting runs standing out, live updates.
#[tokio::test]
async fn browser_shows_a_live_stage_view_of_recent_runs() {
    use crate::fleet::{Backend, git_repo, project_for, queue, start_fleet, wait_for_run};
    let app = spawn_app().await;
    let owner = app.signup("stages@example.com").await;
    app.create_org(&owner, "acme").await;
    let repo = git_repo(
        r#"pipeline {
    agent any
    stages {
        stage('Build') { steps { sh 'sleep 1; echo built' } }
        stage('Test') { steps { echo 'tested' } }
        stage('Approve') {
            input { message 'Ship it?' }
            steps { echo 'shipped' }
        }
    }
}
"#,
    );
    project_for(&app, &owner, "acme", "web", &repo).await;
    let q = queue(&app, Backend::Embedded, std::time::Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 2);
    let runs = "/api/v1/orgs/acme/projects/web/runs";
    let (status, run) = app.post_as(runs, &owner, serde_json::json!({})).await;
    assert_eq!(status, 201, "{run}");
    wait_for_run(&app, &owner, &format!("{runs}/1"), &["waiting"]).await;
    let (status, body) = app
        .post_as(&format!("{runs}/1/cancel"), &owner, serde_json::json!({}))
        .await;
    assert!((200..300).contains(&status), "{body}");
    wait_for_run(&app, &owner, &format!("{runs}/1"), &["cancelled"]).await;
    let (status, run) = app.post_as(runs, &owner, serde_json::json!({})).await;
    assert_eq!(status, 201, "{run}");
    wait_for_run(&app, &owner, &format!("{runs}/2"), &["waiting"]).await;
    let result = run_flow(
        "project-live.mjs",
        vec![
            app.url(""),
            "stages@example.com".into(),
            "correct horse battery".into(),
            "/orgs/acme/projects/web".into(),
            runs.into(),
        ],
    )
    .await;
    assert_eq!(result["columns"][1], "Build", "{result}");
    wait_for_run(&app, &owner, &format!("{runs}/3"), &["waiting"]).await;
}

/// A run page while the run goes on: sections per parallel branch and for post, a clickable
/// stage graph with durations, and artifacts, failing tests, duration and reason arriving
/// without a reload.
#[tokio::test]
async fn browser_follows_a_runs_details_live() {
    use crate::fleet::{Backend, git_repo, project_for, queue, start_fleet, wait_for_run};
    let app = spawn_app().await;
    let owner = app.signup("details@example.com").await;
    app.create_org(&owner, "acme").await;
    let repo = git_repo(
        r#"pipeline {
    agent any
    parameters { string(name: 'GO_FILE', defaultValue: '', description: 'a file to wait for first') }
    stages {
        stage('Slow') { steps { sh 'if [ -n "$GO_FILE" ]; then while [ ! -f "$GO_FILE" ]; do sleep 0.1; done; fi; echo slow done' } }
        stage('Both') {
            parallel {
                stage('Left') { steps { sh 'for i in 1 2 3; do echo left-$i; sleep 0.3; done' } }
                stage('Right') { steps { sh 'sleep 0.15; for i in 1 2 3; do echo right-$i; sleep 0.3; done' } }
            }
        }
        stage('Package') {
            steps {
                sh 'mkdir -p dist reports && echo app > dist/app.txt'
                archiveArtifacts artifacts: 'dist/**'
                sh 'sleep 1'
                writeFile file: 'reports/unit.xml', text: '<testsuite name="shop" tests="2" failures="1"><testcase classname="shop" name="adds_items"/><testcase classname="shop" name="checkout_total"><failure message="expected 42 but was 41">at shop.rs:10</failure></testcase></testsuite>'
                junit 'reports/*.xml'
                sh 'sleep 1'
                error 'deliberate failure'
            }
        }
    }
    post { always { echo 'POST-ALWAYS' } }
}
"#,
    );
    project_for(&app, &owner, "acme", "web", &repo).await;
    let q = queue(&app, Backend::Embedded, std::time::Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 1);
    let runs = "/api/v1/orgs/acme/projects/web/runs";
    let ended = ["succeeded", "unstable", "failed", "cancelled"];
    let (status, run) = app.post_as(runs, &owner, serde_json::json!({})).await;
    assert_eq!(status, 201, "{run}");
    wait_for_run(&app, &owner, &format!("{runs}/1"), &ended).await;
    // The second run waits for a file the flow writes once the page is open, so the page
    // sees everything arrive.
    let go = tempfile::tempdir().unwrap();
    let go_file = go.path().join("go").display().to_string();
    let (status, run) = app
        .post_as(
            runs,
            &owner,
            serde_json::json!({"params": {"GO_FILE": go_file}}),
        )
        .await;
    assert_eq!(status, 201, "{run}");
    let result = run_flow(
        "run-details.mjs",
        vec![
            app.url(""),
            "details@example.com".into(),
            "correct horse battery".into(),
            "/orgs/acme/projects/web/runs/2".into(),
            go_file.clone(),
        ],
    )
    .await;
    assert!(
        result["summaries"].as_array().unwrap().len() >= 5,
        "{result}"
    );
}

/// Signed in, `/` is a dashboard: runs waiting for you, your projects' last runs, activity.
#[tokio::test]
async fn browser_lands_on_a_dashboard_after_signing_in() {
    use crate::fleet::{Backend, git_repo, project_for, queue, start_fleet, wait_for_run};
    let app = spawn_app().await;
    let owner = app.signup("dash@example.com").await;
    app.create_org(&owner, "acme").await;
    // Someone else's org with a project: never on this dashboard.
    let stranger = app.signup("stranger@example.com").await;
    let (status, _) = app
        .post_as(
            "/api/v1/orgs",
            &stranger,
            serde_json::json!({"slug": "secret", "name": "Secret Org"}),
        )
        .await;
    assert_eq!(status, 201);
    let gated = git_repo(
        r#"pipeline {
    agent any
    stages {
        stage('Deploy') {
            input { message 'Deploy to staging?' }
            steps { echo 'deployed' }
        }
    }
}
"#,
    );
    let plain =
        git_repo("pipeline { agent any\n stages { stage('Build') { steps { echo 'ok' } } } }");
    project_for(&app, &owner, "acme", "web", &gated).await;
    project_for(&app, &owner, "acme", "api", &plain).await;
    project_for(&app, &stranger, "secret", "hidden", &plain).await;
    let q = queue(&app, Backend::Embedded, std::time::Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 2);
    for project in ["api", "web"] {
        let runs = format!("/api/v1/orgs/acme/projects/{project}/runs");
        let (status, run) = app.post_as(&runs, &owner, serde_json::json!({})).await;
        assert_eq!(status, 201, "{run}");
    }
    wait_for_run(
        &app,
        &owner,
        "/api/v1/orgs/acme/projects/api/runs/1",
        &["succeeded"],
    )
    .await;
    wait_for_run(
        &app,
        &owner,
        "/api/v1/orgs/acme/projects/web/runs/1",
        &["waiting"],
    )
    .await;
    // A viewer may not approve: nothing waits for them, though a run waits.
    let (viewer, _) = app
        .join(&owner, "acme", "viewer@example.com", "viewer")
        .await;
    let (status, html) = app.page("/", &viewer).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("No run is waiting for your approval."),
        "{html}"
    );
    assert!(html.contains("status-waiting"), "yet the run waits: {html}");
    let result = run_flow(
        "dashboard.mjs",
        vec![
            app.url(""),
            "dash@example.com".into(),
            "correct horse battery".into(),
        ],
    )
    .await;
    assert_eq!(result["activity"], 2, "{result}");
}

/// An invitation link opened signed out: org and role shown, sign up, back, accept.
#[tokio::test]
async fn browser_accepts_an_invitation_after_signing_up() {
    let app = spawn_app().await;
    let owner = app.signup("owner@example.com").await;
    let (status, _) = app
        .post_as(
            "/api/v1/orgs",
            &owner,
            serde_json::json!({"slug": "acme", "name": "Acme Corp"}),
        )
        .await;
    assert_eq!(status, 201);
    let (status, invitation) = app
        .post_as(
            "/api/v1/orgs/acme/invitations",
            &owner,
            serde_json::json!({"email": "grace@example.com", "role": "developer"}),
        )
        .await;
    assert_eq!(status, 201, "{invitation}");
    let token = invitation["accept_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let result = run_flow(
        "invitation.mjs",
        vec![
            app.url(""),
            format!("/invitations/{token}"),
            "grace@example.com".into(),
        ],
    )
    .await;
    assert_eq!(result["notice"], "You joined Acme Corp as developer.");
    let role = app
        .scalar(
            "SELECT m.role FROM memberships m JOIN users u ON u.id = m.user_id \
             WHERE u.email = 'grace@example.com'",
        )
        .await;
    assert_eq!(role.as_deref(), Some("developer"));
}
