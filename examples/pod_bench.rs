//! The Kubernetes executor's overhead from a build pod being ready to a step's first line of
//! output, against the Kubernetes API stand-in the tests use (tests/api/kube_standin; no
//! cluster runs here), through the real kube-rs client and the exec API:
//!
//!   cargo run --release --example pod_bench -- PODS
//!
//! For each of PODS pods: create it, watch it until ready (as the executor does), then time
//! preparing the agent (one exec) and launching `echo first` until its line arrives (one exec
//! that follows the step). Prints p50, p90, p99 and the worst of that overhead, and of the
//! whole start from creation.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The tests use all of the stand-in; the benchmark only starts it.
#[allow(dead_code)]
#[path = "../tests/api/kube_standin/mod.rs"]
mod kube_standin;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, PostParams};
use sluice_core::config::Settings;
use sluice_kube::TenantPlan;
use sluice_kube::agent::KubeAgent;
use sluice_kube::pod::{BuildPod, build_pod};
use sluice_kube::pod_status::{PodState, pod_state};
use sluice_kube::provisioner::Provisioner;
use sluice_worker::agent::{Agent, Env, WORKSPACE};
use tokio_util::sync::CancellationToken;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what}: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} pods)",
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.9)),
        ms(percentile(&times, 0.99)),
        ms(*times.last().unwrap()),
        times.len()
    );
}

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let count: i64 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(50);
    let kube = kube_standin::KubeStandIn::start();
    let config = kube::Config::new(kube.url.parse().unwrap());
    let client = kube::Client::try_from(config).unwrap();
    let settings = Settings::default();
    Provisioner::new(client.clone(), settings.clone())
        .apply_org("bench", 4)
        .await
        .unwrap();
    let plan = TenantPlan::new(&settings, 4);
    let pods: Api<Pod> = Api::namespaced(client, "sluice-t-bench");
    let mut overhead = Vec::new();
    let mut whole = Vec::new();
    for run in 1..=count {
        let pod = build_pod(&BuildPod {
            org: "bench",
            project: "web",
            run_id: run,
            attempt: 1,
            controller: "bench",
            image: "debian:bookworm-slim".into(),
            deadline_secs: None,
            plan: &plan,
        });
        let name = pod.metadata.name.clone().unwrap();
        let created = Instant::now();
        pods.create(&PostParams::default(), &pod).await.unwrap();
        loop {
            let pod = pods.get(&name).await.unwrap();
            if pod_state(&pod, chrono::Utc::now(), Duration::from_secs(60)) == PodState::Ready {
                break;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let ready = Instant::now();
        let agent = KubeAgent::attach(pods.clone(), &name).await.unwrap();
        let first = Mutex::new(None);
        let output = |line: &str| {
            if line == "first" {
                let mut first = first.lock().unwrap();
                first.get_or_insert_with(Instant::now);
            }
        };
        agent
            .run(
                "echo first",
                &Env::new(),
                WORKSPACE,
                &output,
                &CancellationToken::new(),
            )
            .await
            .unwrap();
        let at = first.lock().unwrap().expect("the step printed its line");
        overhead.push(at - ready);
        whole.push(at - created);
        agent.finish().await.unwrap();
    }
    report("pod ready -> first step output", overhead);
    report("pod created -> first step output", whole);
}
