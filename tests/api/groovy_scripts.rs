//! Groovy in real runs: `script` blocks, `when { expression }` and computed environment
//! values, on a real worker with a real git checkout. The Jenkinsfile follows the shapes of
//! public ones (docs/JENKINSFILE.md names them): the commit's short SHA from
//! `sh(returnStdout:)`, a version read from a file and bumped, test suites run in `parallel`
//! from a map of closures, a failing step caught, a deploy guarded by an expression.

use crate::execution::{head, push_to_fleet, setup, text_log};
use crate::fleet::wait_for_run;
use crate::helpers::spawn_app;

/// A run of a Jenkinsfile, ended: its API view, its log, its number and its commit.
struct Built {
    run: serde_json::Value,
    log: String,
    number: i64,
    sha: String,
}

/// Pushes `jenkinsfile` to a new project and waits for a worker to end its run.
async fn built(jenkinsfile: &str) -> Built {
    let app = spawn_app().await;
    let (owner, repo, hook) = setup(&app, jenkinsfile).await;
    let pushed = push_to_fleet(&app, &hook, &repo).await;
    let ended = ["succeeded", "unstable", "failed", "cancelled"];
    let run = wait_for_run(&app, &owner, &pushed.path, &ended).await;
    Built {
        log: text_log(&app, &owner, pushed.number).await,
        run,
        number: pushed.number,
        sha: head(&repo),
    }
}

impl Built {
    fn assert_status(&self, status: &str) {
        assert_eq!(self.run["status"], status, "{}\n{}", self.run, self.log);
    }

    fn assert_logged(&self, lines: &[&str]) {
        for line in lines {
            assert!(
                self.log.contains(line),
                "missing {line:?} in:\n{}",
                self.log
            );
        }
    }

    fn assert_not_logged(&self, lines: &[&str]) {
        for line in lines {
            assert!(
                !self.log.contains(line),
                "{line:?} should not be logged:\n{}",
                self.log
            );
        }
    }
}

const JENKINSFILE: &str = r#"#!/usr/bin/env groovy
pipeline {
    agent any
    parameters { booleanParam(name: 'PUBLISH', defaultValue: true, description: 'publish') }
    environment {
        SHORT_SHA = sh(script: 'git rev-parse --short=7 HEAD', returnStdout: true).trim()
        STAMP = 'build-' +
            env.BUILD_NUMBER
    }
    stages {
        stage('Version') {
            steps {
                writeFile file: 'VERSION', text: '1.4\n'
                script {
                    def raw = readFile('VERSION').trim()
                    def (major, minor) = raw.tokenize('.').collect { it.toInteger() }
                    version = "${major}.${minor + 1}"
                    env.APP_VERSION = version
                    echo "exists=${fileExists('VERSION')} missing=${fileExists('nope.txt')}"
                    echo "sha=${env.SHORT_SHA} stamp=${env.STAMP}"
                }
            }
        }
        stage('Test') {
            steps {
                script {
                    def branches = [:]
                    ['unit', 'lint'].each { suite ->
                        branches[suite] = { sh "echo suite-${suite}-ran" }
                    }
                    parallel branches
                    def status = sh(script: 'exit 4', returnStatus: true)
                    echo "status=${status}"
                    try {
                        sh 'echo failing; exit 3'
                        echo 'not-reached'
                    } catch (err) {
                        echo "recovered: ${err.message}"
                    } finally {
                        echo 'finally-ran'
                    }
                    dir('sub') {
                        writeFile file: 'x.txt', text: 'in sub'
                    }
                    echo "sub-file=${readFile('sub/x.txt')}"
                    def interpreted = sh(script: '#!/bin/sh\necho from-shebang', returnStdout: true).trim()
                    echo "shebang=${interpreted}"
                }
                sh 'echo "app-version=$APP_VERSION"'
                echo "declared-sees-binding=${version} upper=${version.replace('.', '_')}"
            }
        }
        stage('Skipped') {
            when { expression { return env.BRANCH_NAME == 'no-such-branch' } }
            steps { echo 'never-printed' }
        }
        stage('Publish') {
            when { expression { params.PUBLISH && env.BRANCH_NAME ==~ /main|release\/.+/ } }
            steps {
                script {
                    currentBuild.result = 'UNSTABLE'
                    echo "result=${currentBuild.result} number=${currentBuild.number}"
                }
            }
        }
    }
}
"#;

#[tokio::test]
async fn script_blocks_expressions_and_computed_values_run_as_in_jenkins() {
    let b = built(JENKINSFILE).await;
    b.assert_status("unstable");
    b.assert_logged(&[
        "exists=true missing=false",
        &format!("sha={} stamp=build-{}", &b.sha[..7], b.number),
        "suite-unit-ran",
        "suite-lint-ran",
        "status=4",
        "recovered: line 35: script returned exit code 3",
        "finally-ran",
        "sub-file=in sub",
        "shebang=from-shebang",
        "app-version=1.5",
        "declared-sees-binding=1.5 upper=1_5",
        &format!("result=UNSTABLE number={}", b.number),
    ]);
    b.assert_not_logged(&["not-reached", "never-printed"]);
    let stages: Vec<(String, String)> = b.run["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_owned(),
                s["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        stages.contains(&("Skipped".into(), "skipped".into())),
        "{stages:?}"
    );
}

#[tokio::test]
async fn an_endless_script_loop_fails_the_run_with_the_budget_reason() {
    let jenkinsfile = r#"pipeline {
    agent any
    stages {
        stage('Loop') {
            steps {
                script {
                    def n = 0
                    while (true) { n++ }
                }
            }
        }
    }
}
"#;
    let b = built(jenkinsfile).await;
    b.assert_status("failed");
    // The reason names the loop's line and the budget.
    b.assert_logged(&["line 8:", "evaluation steps"]);
}

#[tokio::test]
async fn input_in_a_script_returns_its_parameters() {
    let app = spawn_app().await;
    let jenkinsfile = r#"pipeline {
    agent any
    stages {
        stage('Release') {
            steps {
                script {
                    def target = input message: 'Where to?', parameters: [
                        choice(name: 'REGION', choices: ['eu-west-1', 'us-east-1'], description: 'Region')
                    ]
                    echo "single=${target}"
                    def answers = input(message: 'Details?', ok: 'Go', parameters: [
                        string(name: 'TAG', defaultValue: 'v1', description: 'Tag'),
                        booleanParam(name: 'CANARY', defaultValue: false, description: 'Canary')
                    ])
                    echo "tag=${answers.TAG} canary=${answers.CANARY} is-boolean=${answers.CANARY instanceof Boolean}"
                    def none = input 'Proceed?'
                    echo "none=${none}"
                }
            }
        }
    }
}
"#;
    let (owner, repo, hook) = setup(&app, jenkinsfile).await;
    let pushed = push_to_fleet(&app, &hook, &repo).await;
    let approve = format!("{}/approve", pushed.path);
    let mut answered = serde_json::Value::Null;
    for params in [
        serde_json::json!({"REGION": "us-east-1"}),
        serde_json::json!({"TAG": "v2", "CANARY": "true"}),
        serde_json::json!({}),
    ] {
        // The next gate: waiting again, on a gate not yet answered.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let gate = loop {
            let run = wait_for_run(&app, &owner, &pushed.path, &["waiting"]).await;
            if run["waiting_for"]["id"] != answered["id"] {
                break run["waiting_for"].clone();
            }
            assert!(std::time::Instant::now() < deadline, "no next gate: {run}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        answered = gate.clone();
        let (status, body) = app
            .post_as(
                &approve,
                &owner,
                serde_json::json!({"id": gate["id"], "approve": true, "params": params}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let run = wait_for_run(&app, &owner, &pushed.path, &["succeeded", "failed"]).await;
    let log = text_log(&app, &owner, pushed.number).await;
    assert_eq!(run["status"], "succeeded", "{run}\n{log}");
    for line in [
        "single=us-east-1",
        "tag=v2 canary=true is-boolean=true",
        "none=null",
    ] {
        assert!(log.contains(line), "missing {line:?} in:\n{log}");
    }
}

#[tokio::test]
async fn the_parallel_step_form_and_wrapper_steps_run() {
    let jenkinsfile = r#"pipeline {
    agent any
    stages {
        stage('Fan out') {
            steps {
                milestone 1
                parallel(
                    first: { sh 'echo first-branch' },
                    "second one": { echo 'second-branch' },
                    failFast: true
                )
                timestamps {
                    ansiColor('xterm') {
                        writeFile file: 'out.txt', text: 'artifact'
                    }
                }
                archive 'out.txt'
            }
        }
        stage('Fail fast') {
            steps {
                catchError(buildResult: 'UNSTABLE', stageResult: 'FAILURE') {
                    parallel(
                        broken: { error 'branch broke' },
                        slow: { sh 'sleep 30; echo slow-finished' },
                        failFast: true
                    )
                }
            }
        }
    }
}
"#;
    let b = built(jenkinsfile).await;
    b.assert_status("unstable");
    b.assert_logged(&[
        "[Fan out / first] first-branch",
        "[Fan out / second one] second-branch",
        "archived out.txt",
        "branch broke",
    ]);
    // failFast stopped the slow branch.
    b.assert_not_logged(&["slow-finished"]);
}

#[tokio::test]
async fn when_conditions_building_tag_equals_triggered_by_and_restarted_run() {
    let jenkinsfile = r#"pipeline {
    agent any
    stages {
        stage('Tag only') {
            when { buildingTag() }
            steps { echo 'tag-stage-ran' }
        }
        stage('Equal') {
            when {
                beforeInput true
                equals expected: 'main', actual: env.BRANCH_NAME
            }
            steps { echo 'equals-stage-ran' }
        }
        stage('Numbers') {
            when { equals expected: 2, actual: currentBuild.number + 1 }
            steps { echo 'numbers-stage-ran' }
        }
        stage('Pushed') {
            when { triggeredBy 'GitHubPushCause' }
            steps { echo 'push-stage-ran' }
        }
        stage('Nightly') {
            when { triggeredBy cause: 'TimerTrigger' }
            steps { echo 'timer-stage-ran' }
        }
        stage('Restarted') {
            when { isRestartedRun() }
            steps { echo 'restart-stage-ran' }
        }
    }
}
"#;
    let b = built(jenkinsfile).await;
    b.assert_status("succeeded");
    b.assert_logged(&["equals-stage-ran", "numbers-stage-ran", "push-stage-ran"]);
    b.assert_not_logged(&["tag-stage-ran", "timer-stage-ran", "restart-stage-ran"]);
}

/// A parallel stage with `failFast true`, or any with `parallelsAlwaysFailFast()`: the first
/// failing branch stops the others, and the run fails with its reason.
#[tokio::test]
async fn fail_fast_parallel_stages_stop_the_other_branches() {
    for (options, stage_flag) in [
        ("", "failFast true"),
        ("options { parallelsAlwaysFailFast() }", ""),
    ] {
        let jenkinsfile = format!(
            r#"pipeline {{
    agent any
    {options}
    stages {{
        stage('Checks') {{
            {stage_flag}
            parallel {{
                stage('Broken') {{ steps {{ error 'branch broke' }} }}
                stage('Slow') {{ steps {{ sh 'sleep 30; echo slow-finished' }} }}
            }}
        }}
    }}
}}
"#
        );
        let b = built(&jenkinsfile).await;
        b.assert_status("failed");
        let reason = b.run["reason"].as_str().unwrap();
        assert!(reason.contains("branch broke"), "{}", b.run);
        // The slow branch was stopped.
        b.assert_not_logged(&["slow-finished"]);
    }
}

/// `skipStagesAfterUnstable()`: once a stage makes the build unstable, the stages after it are
/// skipped and the run stays unstable; without the option they run. `triggers { githubPush()
/// }` is accepted (the webhook already does it).
#[tokio::test]
async fn skip_stages_after_unstable_skips_the_rest_once_the_build_is_unstable() {
    for (options, later_runs) in [("options { skipStagesAfterUnstable() }", false), ("", true)] {
        let jenkinsfile = format!(
            r#"#!groovy
pipeline {{
    agent any
    {options}
    triggers {{ githubPush() }}
    stages {{
        stage('Test') {{ steps {{ unstable 'two flaky tests' }} }}
        stage('Deploy') {{ steps {{ echo 'deploy-ran' }} }}
    }}
}}
"#
        );
        let b = built(&jenkinsfile).await;
        b.assert_status("unstable");
        if later_runs {
            b.assert_logged(&["deploy-ran"]);
        } else {
            b.assert_not_logged(&["deploy-ran"]);
            b.assert_logged(&[
                "stage `Deploy` skipped: the build is unstable (skipStagesAfterUnstable)",
            ]);
        }
    }
}

/// Groovy outside `pipeline { }`, as many Jenkinsfiles have it: helper methods (typed
/// parameters, a default, recursion, one calling another) and a variable, used from `script`
/// blocks and `when { expression }`.
#[tokio::test]
async fn methods_and_variables_outside_the_pipeline_are_callable_from_scripts() {
    let b = built(
        r##"#!/usr/bin/env groovy
def appName = 'shop'

def notify(String status, String channel = '#builds') {
    echo "${appName} ${status} to ${channel}"
}

String versionOf(String raw) {
    return raw.trim() + '-' + env.BUILD_NUMBER
}

def fact(int n) { n <= 1 ? 1 : n * fact(n - 1) }

boolean shouldShip() { return fact(3) == 6 }

pipeline {
    agent any
    stages {
        stage('Use') {
            steps {
                script {
                    notify('started')
                    notify('paged', '#ops')
                    currentBuild.displayName = "#${env.BUILD_NUMBER} ${versionOf('2.0')}"
                    currentBuild.description = "Built ${appName}"
                    echo "version=${versionOf(' 1.2 ')} fact=${fact(5)}"
                }
            }
        }
        stage('Ship') {
            when { expression { shouldShip() } }
            steps { echo 'SHIPPED' }
        }
    }
}
"##,
    )
    .await;
    b.assert_status("succeeded");
    // What the script set is kept with the run, for the API, the page and the Jenkins API.
    let name = format!("#{n} 2.0-{n}", n = b.number);
    assert_eq!(b.run["display_name"], name.as_str(), "{}", b.run);
    assert_eq!(b.run["description"], "Built shop", "{}", b.run);
    b.assert_logged(&[
        "shop started to #builds",
        "shop paged to #ops",
        &format!("version=1.2-{} fact=120", b.number),
        "SHIPPED",
    ]);
}
