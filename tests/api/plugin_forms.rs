//! The declarative forms of older and plugin-heavy Jenkinsfiles, run end to end on a real
//! worker: `agent { node { … } }`, block steps as options, computed option values, the
//! `password` parameter, `when { changelog, changeset }`, `step([$class: …])`, `publishHTML`,
//! `lock` across runs, matrix `excludes` with `notValues`, and a cron trigger and build
//! discarder computed from the run's environment.

use std::time::Duration;

use serde_json::json;

use crate::execution::{SECRET, push, setup, text_log};
use crate::fleet::{Backend, git, project_for, queue, start_fleet, wait_for_run};
use crate::helpers::spawn_app;

const ENDED: [&str; 4] = ["succeeded", "unstable", "failed", "cancelled"];

const PIPELINE: &str = r#"pipeline {
    agent { node { label 'any'; customWorkspace 'ignored' } }
    environment { KEEP = '3' }
    triggers { cron(env.BRANCH_NAME == 'main' ? 'H 4 * * *' : '') }
    options {
        buildDiscarder(logRotator(numToKeepStr: "${env.KEEP}"))
        timeout(time: "${params.MINUTES}", unit: 'MINUTES')
        withCredentials([string(credentialsId: 'DEPLOY_TOKEN', variable: 'TOKEN')])
        ansiColor('xterm')
    }
    parameters {
        password(name: 'SIGNING_KEY', defaultValue: 'default-signing-key-77', description: 'key')
        string(name: 'MINUTES', defaultValue: '5', description: 'limit')
        string(name: 'NAP', defaultValue: '0', description: 'seconds to sleep')
    }
    stages {
        stage('Build') {
            steps {
                sh 'echo "token=$TOKEN key=$SIGNING_KEY"; sleep "$NAP"'
                sh 'mkdir -p dist coverage/css reports && echo app > dist/app.txt && echo "<h1>cov</h1>" > coverage/index.html && echo "h1{}" > coverage/css/site.css'
                sh 'printf "<testsuite name=\\"s\\" tests=\\"1\\"><testcase classname=\\"c\\" name=\\"t\\"/></testsuite>" > reports/unit.xml'
                step([$class: 'ArtifactArchiver', artifacts: 'dist/**'])
                step([$class: 'JUnitResultArchiver', testResults: 'reports/*.xml'])
                publishHTML(target: [reportDir: 'coverage', reportFiles: 'index.html', reportName: 'Code Coverage', keepAll: true])
            }
        }
        stage('Docs changed') {
            when { changeset 'docs/**/*.md' }
            steps { echo 'DOCS CHANGED' }
        }
        stage('Code changed') {
            when { changeset '*.rs' }
            steps { echo 'CODE CHANGED' }
        }
        stage('Deploy') {
            when { changelog '.*\\[deploy\\].*' }
            steps { echo 'DEPLOY ASKED' }
        }
        stage('Platforms') {
            matrix {
                axes {
                    axis { name 'OS'; values 'linux', 'mac', 'bsd' }
                    axis { name 'ARCH'; values 'amd64', 'arm64' }
                }
                excludes {
                    exclude {
                        axis { name 'OS'; notValues 'linux' }
                        axis { name 'ARCH'; values 'arm64' }
                    }
                }
                stages { stage('Cell') { steps { sh 'echo "cell $OS/$ARCH"' } } }
            }
        }
    }
}
"#;

#[tokio::test]
async fn plugin_forms_run_as_jenkins_runs_them() {
    let app = spawn_app().await;
    let (owner, repo, hook) = setup(&app, PIPELINE).await;
    std::fs::create_dir_all(repo.dir.path().join("docs/guide")).unwrap();
    std::fs::write(repo.dir.path().join("docs/guide/intro.md"), "# Intro").unwrap();
    git(repo.dir.path(), &["add", "docs"]);
    git(
        repo.dir.path(),
        &["commit", "--quiet", "-m", "Document the thing [deploy]"],
    );
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 1);
    let number = push(&app, &hook, &repo).await;
    let path = format!("/api/v1/orgs/acme/projects/web/runs/{number}");
    let run = wait_for_run(&app, &owner, &path, &ENDED).await;
    let log = text_log(&app, &owner, number).await;
    assert_eq!(run["status"], "succeeded", "{run}\n{log}");
    // The option's withCredentials binds the secret; it and the password are masked.
    assert!(log.contains("token=**** key=****"), "{log}");
    assert!(
        !log.contains(SECRET) && !log.contains("default-signing-key-77"),
        "{log}"
    );
    assert!(
        log.contains("DOCS CHANGED") && log.contains("DEPLOY ASKED"),
        "{log}"
    );
    // The computed cron and count, evaluated with the run's environment (on main).
    assert_eq!(
        app.scalar("SELECT pipeline_cron FROM projects WHERE slug = 'web'")
            .await
            .as_deref(),
        Some("H 4 * * *")
    );
    assert_eq!(
        app.scalar("SELECT CAST(build_keep AS BIGINT) FROM projects WHERE slug = 'web'")
            .await
            .as_deref(),
        Some("3")
    );
    assert!(!log.contains("CODE CHANGED"), "{log}");
    // notValues: the arm64 cells of every OS but linux are left out.
    for cell in [
        "cell linux/amd64",
        "cell linux/arm64",
        "cell mac/amd64",
        "cell bsd/amd64",
    ] {
        assert!(log.contains(cell), "{cell} missing:\n{log}");
    }
    assert!(
        !log.contains("cell mac/arm64") && !log.contains("cell bsd/arm64"),
        "{log}"
    );
    assert_eq!(run["tests"]["passed"], 1, "{run}");
    // The password is hidden wherever the run is shown.
    assert_eq!(run["params"]["SIGNING_KEY"], "****", "{run}");
    assert_eq!(run["params"]["MINUTES"], "5", "{run}");
    let (_, artifacts) = app.get_as(&format!("{path}/artifacts"), &owner).await;
    let paths: Vec<&str> = artifacts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["path"].as_str().unwrap())
        .collect();
    for want in [
        "dist/app.txt",
        "Code-Coverage/index.html",
        "Code-Coverage/css/site.css",
    ] {
        assert!(paths.contains(&want), "{want} not in {paths:?}");
    }

    // A password given to a run is masked and hidden too, and a computed timeout applies.
    let (status, body) = app
        .post_as(
            "/api/v1/orgs/acme/projects/web/runs",
            &owner,
            json!({"params": {"SIGNING_KEY": "given-key-31337", "MINUTES": "0.02", "NAP": "20"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["params"]["SIGNING_KEY"], "****", "{body}");
    let number = body["number"].as_i64().unwrap();
    let path = format!("/api/v1/orgs/acme/projects/web/runs/{number}");
    let run = wait_for_run(&app, &owner, &path, &ENDED).await;
    let log = text_log(&app, &owner, number).await;
    assert!(!log.contains("given-key-31337"), "{log}");
    assert_eq!(
        run["status"], "failed",
        "a 1.2 s timeout from a parameter:\n{run}\n{log}"
    );
    assert!(
        run["reason"].as_str().unwrap().contains("timed out"),
        "{run}"
    );
}

const LOCKING: &str = r#"pipeline {
    agent any
    stages {
        stage('Deploy') {
            steps {
                lock(resource: 'staging', variable: 'HELD') {
                    sh 'echo "in $HELD at $(date +%s%N)"; sleep 1; echo "out at $(date +%s%N)"'
                }
            }
        }
    }
}
"#;

/// Two projects of one org lock the same resource: one waits for the other, never overlapping.
#[tokio::test]
async fn a_lock_is_held_by_one_run_of_the_org_at_a_time() {
    let app = spawn_app().await;
    let (owner, repo, _hook) = setup(&app, LOCKING).await;
    project_for(&app, &owner, "acme", "api", &repo).await;
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let _fleet = start_fleet(&app, q, 1, 2);
    let mut paths = Vec::new();
    for project in ["web", "api"] {
        let runs = format!("/api/v1/orgs/acme/projects/{project}/runs");
        let (status, body) = app.post_as(&runs, &owner, json!({})).await;
        assert_eq!(status, 201, "{body}");
        paths.push((project, format!("{runs}/{}", body["number"])));
    }
    let mut spans = Vec::new();
    let mut waited = 0;
    for (project, path) in &paths {
        let run = wait_for_run(&app, &owner, path, &ENDED).await;
        let (_, log) = app.get_as(&format!("{path}/log"), &owner).await;
        let log = log.as_str().unwrap_or_default().to_owned();
        assert_eq!(run["status"], "succeeded", "{project}: {run}\n{log}");
        assert!(log.contains("in staging at"), "{log}");
        assert!(log.contains("[sluice] lock on `staging` released"), "{log}");
        if log.contains("[sluice] waiting for the lock on `staging`") {
            waited += 1;
        }
        let at = |word: &str| -> u128 {
            let line = log.lines().find(|l| l.contains(word)).unwrap();
            line.rsplit(' ').next().unwrap().parse().unwrap()
        };
        spans.push((at("in staging at"), at("out at")));
    }
    assert_eq!(waited, 1, "exactly one run waited");
    let (a, b) = (spans[0], spans[1]);
    assert!(
        a.1 <= b.0 || b.1 <= a.0,
        "the locked sections overlapped: {spans:?}"
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM resource_locks")
            .await
            .as_deref(),
        Some("0"),
        "every lock was given back"
    );
}
