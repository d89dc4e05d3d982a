//! What a hostile build does to escape its step: `setsid`, a cleared environment, double
//! forks, a detached process holding the step's stdout. Every process a step starts stays
//! under its supervisor: it ends with the step, a timeout or a cancel ends the run promptly,
//! and a worker killed with SIGKILL takes its build processes with it.
//!
//! Each probe sleeps for a distinctive number of seconds, longer than the tests' deadlines, so
//! a process that escaped both shows up by its command line and keeps the run from ending.

use std::time::Duration;

use serde_json::json;

use crate::execution::{Pushed, push_to_fleet, setup, text_log};
use crate::fleet::{Backend, git_repo, project_for, wait_for_run};
use crate::helpers::{spawn_app, wait_until};

/// Processes whose whole command line is `command` (e.g. `sleep 4305`; the shells and
/// supervisors whose scripts mention it do not count).
fn processes_running(command: &str) -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmd| {
                let args: Vec<&[u8]> = cmd.split(|b| *b == 0).filter(|a| !a.is_empty()).collect();
                args.join(&b' ') == command.as_bytes()
            })
        })
        .collect()
}

/// A unique sleep length, so parallel tests never see each other's processes.
fn unique_seconds() -> u32 {
    5000 + (uuid::Uuid::new_v4().as_u128() % 90_000) as u32
}

#[tokio::test]
async fn processes_a_step_detaches_end_with_the_step() {
    let app = spawn_app().await;
    let (a, b) = (unique_seconds(), unique_seconds());
    let jenkinsfile = format!(
        r#"pipeline {{
    agent any
    stages {{
        stage('Escape') {{
            steps {{
                sh 'env -u WORKSPACE setsid sleep {a} & env -i sh -c "setsid sleep {b} &" ; sleep 1; echo detached'
                sh 'echo next-step'
            }}
        }}
    }}
}}
"#
    );
    let (owner, repo, secret) = setup(&app, &jenkinsfile).await;
    let Pushed {
        fleet: _fleet,
        number,
        path,
    } = push_to_fleet(&app, &secret, &repo).await;
    let run = wait_for_run(&app, &owner, &path, &["succeeded", "failed", "cancelled"]).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let log = text_log(&app, &owner, number).await;
    assert!(
        log.contains("detached") && log.contains("next-step"),
        "{log}"
    );
    assert_eq!(processes_running(&format!("sleep {a}")), Vec::<i32>::new());
    assert_eq!(processes_running(&format!("sleep {b}")), Vec::<i32>::new());
}

#[tokio::test]
async fn a_timeout_ends_a_run_whose_detached_process_holds_stdout() {
    let app = spawn_app().await;
    let a = unique_seconds();
    let jenkinsfile = format!(
        r#"pipeline {{
    agent any
    options {{ timeout(time: 3, unit: 'SECONDS') }}
    stages {{
        stage('Hold') {{
            steps {{
                sh 'env -u WORKSPACE setsid sleep {a} & sleep 1; echo detached; sleep {a}'
            }}
        }}
    }}
}}
"#
    );
    let (owner, repo, secret) = setup(&app, &jenkinsfile).await;
    let Pushed {
        fleet: _fleet,
        path,
        ..
    } = push_to_fleet(&app, &secret, &repo).await;
    let run = wait_for_run(&app, &owner, &path, &["succeeded", "failed", "cancelled"]).await;
    assert_eq!(run["status"], "failed", "{run}");
    assert!(
        run["reason"].as_str().unwrap().contains("timed out after"),
        "{run}"
    );
    assert_eq!(processes_running(&format!("sleep {a}")), Vec::<i32>::new());
}

#[tokio::test]
async fn a_cancel_ends_a_run_whatever_its_processes_do() {
    let app = spawn_app().await;
    let (a, b) = (unique_seconds(), unique_seconds());
    let jenkinsfile = format!(
        r#"pipeline {{
    agent any
    stages {{
        stage('Hold') {{
            steps {{
                sh 'trap "" TERM; env -u WORKSPACE setsid sleep {a} & env -i sh -c "setsid sleep {b} &"; echo started; sleep {a}'
            }}
        }}
    }}
}}
"#
    );
    let (owner, repo, secret) = setup(&app, &jenkinsfile).await;
    let Pushed {
        fleet: _fleet,
        number,
        path,
    } = push_to_fleet(&app, &secret, &repo).await;
    wait_until(Duration::from_secs(30), || async {
        text_log(&app, &owner, number).await.contains("started")
            && processes_running(&format!("sleep {b}")).len() == 1
    })
    .await;
    let asked = std::time::Instant::now();
    let (status, body) = app
        .post_as(&format!("{path}/cancel"), &owner, json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    // Far above the 2 s it takes (see the printed figure), far below the sleeps.
    let ended = std::cell::Cell::new(false);
    wait_until(Duration::from_secs(20), || async {
        let (_, run) = app.get_as(&path, &owner).await;
        ended.set(run["status"] == "cancelled");
        ended.get()
    })
    .await;
    println!("cancel → cancelled in {:?}", asked.elapsed());
    assert_eq!(processes_running(&format!("sleep {a}")), Vec::<i32>::new());
    assert_eq!(processes_running(&format!("sleep {b}")), Vec::<i32>::new());
}

/// A `sluice worker` process killed with SIGKILL: its supervisors see their lifeline close and
/// kill the build's processes at once, before any other worker takes the run over.
#[tokio::test]
async fn a_killed_worker_takes_its_build_processes_with_it() {
    let app = spawn_app().await;
    let owner = app.signup("owner@example.com").await;
    app.create_org(&owner, "acme").await;
    let (a, b) = (unique_seconds(), unique_seconds());
    let repo = git_repo(&format!(
        "pipeline {{ agent any\n stages {{ stage('Slow') {{ steps {{ sh 'env -i sh -c \"setsid sleep {a} &\"; sleep {b}' }} }} }} }}\n"
    ));
    project_for(&app, &owner, "acme", "web", &repo).await;
    let scratch = tempfile::tempdir().unwrap();
    let prefix = format!("sluice-test-{}", uuid::Uuid::new_v4().simple());
    let mut worker =
        crate::worker_processes::worker(&app, Backend::Embedded, &prefix, scratch.path());
    let (status, _) = app
        .post_as("/api/v1/orgs/acme/projects/web/runs", &owner, json!({}))
        .await;
    assert_eq!(status, 201);
    wait_until(Duration::from_secs(30), || async {
        processes_running(&format!("sleep {a}")).len() == 1
            && processes_running(&format!("sleep {b}")).len() == 1
    })
    .await;
    worker.start_kill().unwrap();
    worker.wait().await.unwrap();
    wait_until(Duration::from_secs(10), || async {
        processes_running(&format!("sleep {a}")).is_empty()
            && processes_running(&format!("sleep {b}")).is_empty()
    })
    .await;
}
