//! Execs, container logs and the kubelet's stops on the Kubernetes API STAND-IN
//! (tests/api/kube_standin/), through the unchanged kube-rs client: an exec streams stdout and
//! stderr live and ends with its exit status, takes stdin until the client closes it, runs in
//! the pod's directory with only the pod's environment, and is killed (no status) when its
//! pod is deleted, passes its deadline, or an injected drop breaks its connection.

use std::time::Duration;

use chrono::Utc;
use futures_util::{AsyncBufReadExt as _, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::Error;
use kube::api::{Api, AttachParams, AttachedProcess, DeleteParams, LogParams, PostParams};
use sluice_kube::pod_status::{PodState, pod_state};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use crate::helpers::wait_until;
use crate::kube_standin_api::{
    DEADLINE, NS, build_pod_for, ready_pod, restricted_namespace, standin, wait_for_state,
};

/// What an exec printed and how it ended (`None`: no status, the connection was dropped).
struct Finished {
    stdout: String,
    stderr: String,
    status: Option<Status>,
}

/// Reads an exec's output to its end, and its status.
async fn finish(mut process: AttachedProcess) -> Finished {
    let mut stdout = process.stdout().unwrap();
    let mut stderr = process.stderr().unwrap();
    let status = process.take_status().unwrap();
    let (mut out, mut err) = (String::new(), String::new());
    let (_, _, status) = tokio::time::timeout(DEADLINE, async {
        tokio::join!(
            stdout.read_to_string(&mut out),
            stderr.read_to_string(&mut err),
            status
        )
    })
    .await
    .expect("the exec ends");
    Finished {
        stdout: out,
        stderr: err,
        status,
    }
}

/// Waits for an exec whose connection breaks: no status, and kube-rs's task ends with the
/// broken socket. (Its stdout and stderr then never reach their end: kube-rs drops their
/// writers without closing them, so a reader must not wait for that.)
async fn broken(mut process: AttachedProcess) {
    let status = process.take_status().unwrap();
    let status = tokio::time::timeout(DEADLINE, status).await.unwrap();
    assert!(status.is_none(), "no status on a broken exec: {status:?}");
    let joined = tokio::time::timeout(DEADLINE, process.join())
        .await
        .unwrap();
    assert!(joined.is_err(), "the socket breaks: {joined:?}");
}

async fn exec(pods: &Api<Pod>, pod: &str, command: &[&str]) -> AttachedProcess {
    let params = AttachParams::default().container("build").stderr(true);
    pods.exec(pod, command.to_vec(), &params).await.unwrap()
}

#[tokio::test]
async fn exec_streams_stdout_stderr_and_the_exit_status_on_the_standin() {
    let (kube, client) = standin();
    restricted_namespace(&client, NS).await;
    let pods = ready_pod(&client, 11).await;

    let script = "echo out; echo err >&2; exit 3";
    let done = finish(exec(&pods, "run-11-1", &["sh", "-c", script]).await).await;
    assert_eq!(
        (done.stdout.as_str(), done.stderr.as_str()),
        ("out\n", "err\n")
    );
    let status = done.status.expect("a status");
    assert_eq!(status.status.as_deref(), Some("Failure"));
    assert_eq!(status.reason.as_deref(), Some("NonZeroExitCode"));
    assert!(
        status
            .message
            .as_deref()
            .unwrap()
            .starts_with("command terminated with non-zero exit code")
    );
    let cause = &status.details.unwrap().causes.unwrap()[0];
    assert_eq!(
        (cause.reason.as_deref(), cause.message.as_deref()),
        (Some("ExitCode"), Some("3"))
    );

    // It runs in the pod's directory with the pod's environment, not the test's.
    let script = "pwd; echo \"$HOME $HOSTNAME\"; env | cut -d= -f1 | sort | tr '\\n' ' '";
    let done = finish(exec(&pods, "run-11-1", &["sh", "-c", script]).await).await;
    assert_eq!(
        done.status.unwrap().status.as_deref(),
        Some("Success"),
        "{}",
        done.stderr
    );
    let dir = kube.pod_dir(NS, "run-11-1").unwrap();
    let lines: Vec<&str> = done.stdout.lines().collect();
    assert_eq!(lines[0], dir.display().to_string());
    assert_eq!(lines[1], format!("{} run-11-1", dir.join("home").display()));
    assert!(lines[2].contains("PATH") && lines[2].contains("HOSTNAME"));
    assert!(
        !lines[2].contains("CARGO"),
        "the test's environment leaked: {}",
        lines[2]
    );
    assert_eq!(kube.exec_count(), 2);

    // No such pod, or a wrong container: answered before any upgrade.
    let missing = pods
        .exec("run-99-1", ["true"], &AttachParams::default())
        .await;
    assert!(
        matches!(&missing, Err(Error::Api(s)) if s.code == 404),
        "{:?}",
        missing.err()
    );
    let params = AttachParams::default().container("sidecar");
    let wrong = pods.exec("run-11-1", ["true"], &params).await;
    assert!(matches!(&wrong, Err(Error::Api(s)) if s.code == 400));
}

#[tokio::test]
async fn exec_stdin_is_written_and_closed_by_the_client_on_the_standin() {
    let (_kube, client) = standin();
    restricted_namespace(&client, NS).await;
    let pods = ready_pod(&client, 12).await;
    let params = AttachParams::default().stdin(true).stderr(true);
    let mut process = pods.exec("run-12-1", ["cat"], &params).await.unwrap();
    let mut stdin = process.stdin().unwrap();
    stdin.write_all(b"secret script\nline two\n").await.unwrap();
    // Closing the writer closes the process's stdin (v5 `[255, 0]`), so `cat` ends. (Only
    // dropping it would not: kube-rs's stdin pipe sees no end then.)
    stdin.shutdown().await.unwrap();
    let done = finish(process).await;
    assert_eq!(done.stdout, "secret script\nline two\n");
    assert_eq!(done.status.unwrap().status.as_deref(), Some("Success"));
}

#[tokio::test]
async fn a_long_exec_streams_its_lines_as_they_come_on_the_standin() {
    let (kube, client) = standin();
    restricted_namespace(&client, NS).await;
    let pods = ready_pod(&client, 13).await;
    let script = "for i in 1 2 3; do echo $i; sleep 0.2; done";
    let mut process = exec(&pods, "run-13-1", &["sh", "-c", script]).await;
    let mut stdout = tokio::io::BufReader::new(process.stdout().unwrap());
    let mut first = String::new();
    tokio::time::timeout(DEADLINE, stdout.read_line(&mut first))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first, "1\n");
    // The first line came while the command still runs.
    assert_eq!(kube.running_execs("run-13-1"), 1);
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).await.unwrap();
    assert_eq!(rest, "2\n3\n");
    let status = process.take_status().unwrap().await.unwrap();
    assert_eq!(status.status.as_deref(), Some("Success"));
    wait_until(DEADLINE, || async { kube.running_execs("run-13-1") == 0 }).await;
}

#[tokio::test]
async fn deleting_a_pod_kills_its_running_exec_promptly_on_the_standin() {
    let (kube, client) = standin();
    restricted_namespace(&client, NS).await;
    let pods = ready_pod(&client, 14).await;
    let dir = kube.pod_dir(NS, "run-14-1").unwrap();
    // A background child in the exec's process group goes too.
    let script = "sleep 30 & echo $!; wait";
    let mut process = exec(&pods, "run-14-1", &["sh", "-c", script]).await;
    let mut stdout = tokio::io::BufReader::new(process.stdout().unwrap());
    let mut pid = String::new();
    stdout.read_line(&mut pid).await.unwrap();
    let proc_dir = format!("/proc/{}", pid.trim());
    assert!(std::path::Path::new(&proc_dir).exists());
    let status = process.take_status().unwrap();

    // The first delete fails on purpose; the retry goes through.
    kube.fail_next_deletes(1);
    let first = pods.delete("run-14-1", &DeleteParams::default()).await;
    assert!(matches!(&first, Err(Error::Api(s)) if s.code == 500));
    assert_eq!(kube.running_execs("run-14-1"), 1);
    let started = std::time::Instant::now();
    pods.delete("run-14-1", &DeleteParams::default())
        .await
        .unwrap();
    let status = tokio::time::timeout(DEADLINE, status).await.unwrap();
    assert!(status.is_none(), "no status when the pod goes: {status:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(kube.running_execs("run-14-1"), 0);
    // The sleep is dead (or a zombie waiting for init to reap it).
    wait_until(DEADLINE, || async {
        std::fs::read_to_string(format!("{proc_dir}/stat"))
            .map_or(true, |stat| stat.contains(") Z "))
    })
    .await;
    assert!(!dir.exists(), "the pod's directory is removed");
    assert!(matches!(pods.get("run-14-1").await, Err(Error::Api(s)) if s.code == 404));
}

#[tokio::test]
async fn an_injected_drop_breaks_the_exec_after_the_mark_and_kills_it_on_the_standin() {
    let (kube, client) = standin();
    restricted_namespace(&client, NS).await;
    let pods = ready_pod(&client, 15).await;
    kube.drop_exec_when_output_contains("MARK");
    let script = "echo before; sleep 0.1; echo MARK; sleep 30";
    let mut process = exec(&pods, "run-15-1", &["sh", "-c", script]).await;
    let mut stdout = process.stdout().unwrap();
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains("MARK") {
        let mut buf = [0u8; 256];
        let n = tokio::time::timeout(DEADLINE, stdout.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        seen.extend_from_slice(&buf[..n]);
    }
    assert_eq!(String::from_utf8_lossy(&seen), "before\nMARK\n");
    broken(process).await;
    wait_until(DEADLINE, || async { kube.running_execs("run-15-1") == 0 }).await;

    // Once per call: the next exec with the mark runs to its end.
    let done = finish(exec(&pods, "run-15-1", &["echo", "MARK again"]).await).await;
    assert_eq!(done.stdout, "MARK again\n");
    assert_eq!(done.status.unwrap().status.as_deref(), Some("Success"));
}

#[tokio::test]
async fn a_pod_past_its_deadline_fails_and_its_execs_are_killed_on_the_standin() {
    let (kube, client) = standin();
    restricted_namespace(&client, NS).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let pod = build_pod_for(16, "debian:bookworm-slim", Some(1));
    pods.create(&PostParams::default(), &pod).await.unwrap();
    wait_for_state(&pods, "run-16-1", |s| *s == PodState::Ready).await;
    broken(exec(&pods, "run-16-1", &["sleep", "30"]).await).await;
    let pod = pods.get("run-16-1").await.unwrap();
    assert_eq!(
        pod_state(&pod, Utc::now(), Duration::from_secs(60)),
        PodState::Ended {
            reason: "DeadlineExceeded".into()
        }
    );
    assert_eq!(kube.running_execs("run-16-1"), 0);
    let late = pods
        .exec("run-16-1", ["true"], &AttachParams::default())
        .await;
    match late {
        Err(Error::Api(s)) => {
            assert_eq!(s.code, 400);
            assert!(
                s.message.starts_with("container not running"),
                "{}",
                s.message
            );
        }
        other => panic!("{:?}", other.err()),
    }
}

#[tokio::test]
async fn pod_logs_are_served_and_followed_until_the_pod_goes_on_the_standin() {
    let (kube, client) = standin();
    restricted_namespace(&client, NS).await;
    let pods = ready_pod(&client, 17).await;
    let log = pods.logs("run-17-1", &LogParams::default()).await.unwrap();
    assert_eq!(log, "container build started\n");
    let missing = pods.logs("run-99-1", &LogParams::default()).await;
    assert!(matches!(&missing, Err(Error::Api(s)) if s.code == 404));

    let follow = LogParams {
        follow: true,
        ..LogParams::default()
    };
    let mut lines = pods.log_stream("run-17-1", &follow).await.unwrap().lines();
    let mut next = async || {
        tokio::time::timeout(DEADLINE, lines.try_next())
            .await
            .unwrap()
            .unwrap()
    };
    assert_eq!(next().await.as_deref(), Some("container build started"));
    kube.append_log(NS, "run-17-1", "step one");
    assert_eq!(next().await.as_deref(), Some("step one"));
    pods.delete("run-17-1", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(next().await, None, "the log ends with the pod");
}
