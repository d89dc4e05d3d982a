//! Strings and credentials as Jenkins has them: Groovy escapes reach the log and scripts as
//! Groovy decodes them (`\033` is ESC, not a NUL followed by "33"), a NUL that would reach a
//! process fails its step with a clear reason, and secrets are named like Jenkins credential
//! ids, so `credentials('deploy-token')` works.

use serde_json::json;

use crate::execution::{SECRET, push_to_fleet, setup, text_log};
use crate::fleet::wait_for_run;
use crate::helpers::spawn_app;

#[tokio::test]
async fn groovy_escapes_and_a_credential_id_with_a_dash_run_as_in_jenkins() {
    let app = spawn_app().await;
    let jenkinsfile = r#"pipeline {
    agent any
    environment { TOKEN = credentials('deploy-token') }
    stages {
        stage('A') {
            steps {
                echo "\033[32mgreen\033[0m \u0041\u0042C tab[\t] space[\s]"
                sh 'test "$TOKEN" = "s3cr3t-Value-4242" && echo token-ok'
            }
        }
    }
    post { unsuccessful { echo 'post-unsuccessful-ran' } }
}
"#;
    let (owner, repo, hook) = setup(&app, jenkinsfile).await;
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/orgs/acme/projects/web/secrets/deploy-token",
            &owner,
            Some(json!({"value": SECRET})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/orgs/acme/projects/web/secrets/deploy%20token",
            &owner,
            Some(json!({"value": "x"})),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Jenkins credential id"),
        "{body}"
    );
    let (_, secrets) = app
        .get_as("/api/v1/orgs/acme/projects/web/secrets", &owner)
        .await;
    assert!(secrets.to_string().contains("deploy-token"), "{secrets}");

    let pushed = push_to_fleet(&app, &hook, &repo).await;
    let run = wait_for_run(&app, &owner, &pushed.path, &["succeeded", "failed"]).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let log = text_log(&app, &owner, pushed.number).await;
    assert!(
        log.contains("\u{1b}[32mgreen\u{1b}[0m ABC tab[\t] space[ ]"),
        "{log:?}"
    );
    assert!(log.contains("token-ok"), "{log}");
    assert!(
        !log.contains("post-unsuccessful-ran"),
        "a success is not unsuccessful"
    );
    assert!(!log.contains(SECRET), "the secret is masked");
}

#[tokio::test]
async fn a_nul_that_would_reach_a_process_fails_its_step_with_the_reason() {
    let app = spawn_app().await;
    let jenkinsfile = r#"pipeline {
    agent any
    stages {
        stage('A') {
            steps {
                echo 'before'
                sh "echo a\0b"
                echo 'never'
            }
        }
    }
}
"#;
    let lint = sluice_core::pipeline::lint(jenkinsfile);
    assert!(lint.is_valid(), "Groovy accepts it: {:?}", lint.diagnostics);
    assert!(
        lint.diagnostics
            .iter()
            .any(|d| d.pos.line == 7 && d.message.contains("NUL")),
        "lint warns at the escape: {:?}",
        lint.diagnostics
    );
    let (owner, repo, hook) = setup(&app, jenkinsfile).await;
    let pushed = push_to_fleet(&app, &hook, &repo).await;
    let run = wait_for_run(&app, &owner, &pushed.path, &["succeeded", "failed"]).await;
    assert_eq!(run["status"], "failed", "{run}");
    let reason = run["reason"].as_str().unwrap();
    assert!(
        reason.contains("line 7") && reason.contains("NUL character"),
        "{reason}"
    );
    let log = text_log(&app, &owner, pushed.number).await;
    assert!(log.contains("before") && !log.contains("never"), "{log}");
}

#[tokio::test]
async fn file_and_ssh_key_credentials_are_private_files_removed_after_the_block() {
    let app = spawn_app().await;
    let jenkinsfile = r#"pipeline {
    agent any
    stages {
        stage('Deploy') {
            steps {
                withCredentials([
                    file(credentialsId: 'kubeconfig', variable: 'KCFG'),
                    sshUserPrivateKey(credentialsId: 'deploy-key', keyFileVariable: 'KEY')
                ]) {
                    sh '''
                        test "$(stat -c %a "$KEY")" = 600 && echo key-mode-600
                        test "$(stat -c %a "$KCFG")" = 600 && echo file-mode-600
                        grep -q "BEGIN OPENSSH" "$KEY" && echo key-content-ok
                        echo "$KEY" > key-path.txt
                    '''
                }
                sh 'test ! -e "$(cat key-path.txt)" && echo key-removed'
            }
        }
    }
}
"#;
    let (owner, repo, hook) = setup(&app, jenkinsfile).await;
    for (name, value) in [
        ("kubeconfig", "apiVersion: v1\nkind: Config\n"),
        (
            "deploy-key",
            "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----\n",
        ),
    ] {
        let (status, body) = app
            .call(
                reqwest::Method::PUT,
                &format!("/api/v1/orgs/acme/projects/web/secrets/{name}"),
                &owner,
                Some(json!({ "value": value })),
            )
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let pushed = push_to_fleet(&app, &hook, &repo).await;
    let run = wait_for_run(&app, &owner, &pushed.path, &["succeeded", "failed"]).await;
    let log = text_log(&app, &owner, pushed.number).await;
    assert_eq!(run["status"], "succeeded", "{run}\n{log}");
    for line in [
        "key-mode-600",
        "file-mode-600",
        "key-content-ok",
        "key-removed",
    ] {
        assert!(log.contains(line), "missing {line:?} in:\n{log}");
    }
}
