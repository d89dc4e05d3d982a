//! Run benchmarks against a running `sluice serve` (see `scripts/bench-runs.sh`):
//!
//!   run_bench latency BASE_URL RUNS
//!     Pushes RUNS signed GitHub webhooks one after another and measures, for each, the time
//!     from sending the webhook to the first `sh` step running (the step writes the time it
//!     started to a file). Prints p50, p99 and the maximum.
//!
//!   run_bench follow-latency API_A API_B REDIS_URL QUEUE_PREFIX LINES
//!     Across processes (see `scripts/bench-scaleout.sh`): starts a run on replica A that
//!     prints LINES timestamps 30 ms apart, follows it on replica B, and listens on the bus
//!     (`<prefix>:events`) for the worker's flush announcements. Prints, per flush, the time
//!     from its announcement to the follower's next line, and per line the time from the
//!     step printing it to the follower getting it (which includes the worker's flush
//!     interval).
//!
//!   run_bench followers BASE_URL SERVER_PID FOLLOWERS MEGABYTES
//!     Starts a run printing MEGABYTES of log, connects FOLLOWERS live SSE followers at once,
//!     and checks each received every line exactly once, in order, and the end event. Prints
//!     the server's peak and final resident memory, and how long the build took with and
//!     without followers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

struct Api {
    base: String,
    client: reqwest::Client,
    token: String,
}

fn git(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "Bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.com")
        .env("GIT_COMMITTER_NAME", "Bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.com")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

fn repo(jenkinsfile: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "--quiet", "--initial-branch=main"]);
    std::fs::write(dir.path().join("Jenkinsfile"), jenkinsfile).unwrap();
    git(dir.path(), &["add", "Jenkinsfile"]);
    git(dir.path(), &["commit", "--quiet", "-m", "pipeline"]);
    let head = std::process::Command::new("git")
        .arg("-C")
        .arg(dir.path())
        .args(["rev-parse", "HEAD"])
        .output()
        .unwrap();
    let sha = String::from_utf8(head.stdout).unwrap().trim().to_owned();
    (dir, sha)
}

impl Api {
    /// Signs up a fresh account, creates an org and an admin token.
    async fn new(base: &str) -> Api {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(600))
            .build()
            .unwrap();
        let n = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let res = client
            .post(format!("{base}/auth/signup"))
            .json(&json!({"email": format!("bench{n}@example.com"), "password": "correct horse battery", "name": "Bench"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let cookie = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix("sluice_session="))
            .map(|v| v.split(';').next().unwrap().to_owned())
            .unwrap();
        let body: Value = res.json().await.unwrap();
        let csrf = body["csrf_token"].as_str().unwrap().to_owned();
        let org = format!("bench{}", n % 1_000_000_000);
        let post = |path: &str, body: Value| {
            client
                .post(format!("{base}{path}"))
                .header("cookie", format!("sluice_session={cookie}"))
                .header("x-csrf-token", &csrf)
                .json(&body)
                .send()
        };
        let res = post("/api/v1/orgs", json!({"slug": org, "name": org}))
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let res = post(
            &format!("/api/v1/orgs/{org}/tokens"),
            json!({"name": "bench", "scopes": ["admin"]}),
        )
        .await
        .unwrap();
        let token: Value = res.json().await.unwrap();
        // Room for many runs at once.
        client
            .patch(format!("{base}/api/v1/orgs/{org}"))
            .bearer_auth(token["token"].as_str().unwrap())
            .json(&json!({"max_concurrent_runs": 100}))
            .send()
            .await
            .unwrap();
        Api {
            base: format!("{base}/api/v1/orgs/{org}"),
            client,
            token: token["token"].as_str().unwrap().to_owned(),
        }
    }

    /// Creates a project building `url`; returns its webhook secret.
    async fn project(&self, slug: &str, url: &str) -> String {
        let res = self
            .client
            .post(format!("{}/projects", self.base))
            .bearer_auth(&self.token)
            .json(&json!({"slug": slug, "name": slug, "repo_url": url}))
            .send()
            .await
            .unwrap();
        let body: Value = res.json().await.unwrap();
        body["webhook"]["secret"].as_str().unwrap().to_owned()
    }

    async fn run(&self, slug: &str, number: i64) -> Value {
        self.client
            .get(format!("{}/projects/{slug}/runs/{number}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn wait_ended(&self, slug: &str, number: i64) -> Value {
        loop {
            let run = self.run(slug, number).await;
            if ["succeeded", "failed", "cancelled", "unstable"]
                .iter()
                .any(|s| run["status"] == *s)
            {
                return run;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

async fn latency(base: &str, runs: usize) {
    let api = Api::new(base).await;
    let marks = tempfile::tempdir().unwrap();
    let (repo_dir, sha) = repo(&format!(
        "pipeline {{\n agent any\n stages {{\n  stage('First') {{\n   steps {{\n    sh 'date +%s%N > {}/$BUILD_NUMBER'\n   }}\n  }}\n }}\n}}\n",
        marks.path().display()
    ));
    let url = format!("file://{}", repo_dir.path().display());
    let org = api.base.rsplit('/').next().unwrap().to_owned();
    let secret = api.project("latency", &url).await;
    let hook = format!("{}/hooks/github/{org}/latency", base);
    let mut millis = Vec::new();
    let (mut to_queued, mut to_started, mut to_step) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs {
        let body = serde_json::to_vec(&json!({
            "ref": "refs/heads/main", "after": sha, "head_commit": {"id": sha},
        }))
        .unwrap();
        let signature = format!(
            "sha256={}",
            sluice_core::crypto::hmac_sha256_hex(secret.as_bytes(), &body)
        );
        let sent = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let res = api
            .client
            .post(&hook)
            .header("content-type", "application/json")
            .header("x-github-event", "push")
            .header("x-github-delivery", format!("bench-{i}-{sent}"))
            .header("x-hub-signature-256", signature)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202);
        let answer: Value = res.json().await.unwrap();
        let number = answer["run"].as_i64().unwrap();
        let mark = marks.path().join(number.to_string());
        let started = loop {
            if let Ok(text) = std::fs::read_to_string(&mark)
                && let Ok(ns) = text.trim().parse::<u128>()
            {
                break ns;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        millis.push((started.saturating_sub(sent)) as f64 / 1e6);
        let run = api.wait_ended("latency", number).await;
        let ns = |k: &str| {
            chrono::DateTime::parse_from_rfc3339(run[k].as_str().unwrap())
                .unwrap()
                .timestamp_nanos_opt()
                .unwrap() as u128
        };
        let (queued, began) = (ns("queued_at"), ns("started_at"));
        to_queued.push(queued.saturating_sub(sent) as f64 / 1e6);
        to_started.push(began.saturating_sub(queued) as f64 / 1e6);
        to_step.push(started.saturating_sub(began) as f64 / 1e6);
    }
    for v in [&mut to_queued, &mut to_started, &mut to_step] {
        v.sort_by(f64::total_cmp);
    }
    for (p, name) in [(0.5, "p50"), (0.99, "p99")] {
        println!(
            "  {name} of each part: webhook -> run queued {:.1} ms, queued -> worker started it {:.1} ms, started -> first step running {:.1} ms (checkout, parse, records)",
            percentile(&to_queued, p),
            percentile(&to_started, p),
            percentile(&to_step, p)
        );
    }
    millis.sort_by(f64::total_cmp);
    println!(
        "webhook -> first step running over {runs} runs: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, min {:.1} ms",
        percentile(&millis, 0.5),
        percentile(&millis, 0.99),
        millis.last().unwrap(),
        millis.first().unwrap()
    );
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// One follower: (lines received, whether they were 0..n in order, end status).
async fn follow(api: &Api, slug: &str, number: i64) -> (u64, bool, String) {
    let mut res = api
        .client
        .get(format!("{}/projects/{slug}/runs/{number}/log", api.base))
        .bearer_auth(&api.token)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    let mut pending = Vec::<u8>::new();
    let mut next_id = 0i64;
    let mut in_order = true;
    let mut lines = 0u64;
    while let Some(chunk) = res.chunk().await.unwrap() {
        pending.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(pos) = pending[start..].windows(2).position(|w| w == b"\n\n") {
            let event = &pending[start..start + pos];
            start += pos + 2;
            if let Some(rest) = event.strip_prefix(b"event: end\ndata: ") {
                let end: Value = serde_json::from_slice(rest).unwrap();
                return (lines, in_order, end["status"].as_str().unwrap().to_owned());
            }
            if let Some(rest) = event.strip_prefix(b"id: ") {
                let id_end = rest.iter().position(|b| *b == b'\n').unwrap();
                let id: i64 = std::str::from_utf8(&rest[..id_end])
                    .unwrap()
                    .parse()
                    .unwrap();
                in_order &= id == next_id;
                next_id = id + 1;
                lines += 1;
            }
        }
        pending.drain(..start);
    }
    (lines, in_order, "no end event".into())
}

async fn followers(base: &str, pid: u32, count: usize, megabytes: u64) {
    let api = Api::new(base).await;
    // 100-byte lines (with the newline): MEGABYTES * 10,486 lines.
    let lines = megabytes * 1024 * 1024 / 100;
    let (repo_dir, _) = repo(&format!(
        "pipeline {{\n agent any\n stages {{\n  stage('Print') {{\n   steps {{\n    sh 'sleep 1; seq -w 1 {lines} | sed \"s/$/ {}/\"'\n   }}\n  }}\n }}\n}}\n",
        "x".repeat(100 - 1 - 1 - lines.to_string().len())
    ));
    let url = format!("file://{}", repo_dir.path().display());
    api.project("loud", &url).await;
    let trigger = || async {
        let res = api
            .client
            .post(format!("{}/projects/loud/runs", api.base))
            .bearer_auth(&api.token)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        let run: Value = res.json().await.unwrap();
        run["number"].as_i64().unwrap()
    };
    let took = |run: &Value| {
        let at = |k: &str| chrono::DateTime::parse_from_rfc3339(run[k].as_str().unwrap()).unwrap();
        (at("finished_at") - at("started_at")).num_milliseconds() as f64 / 1000.0
    };
    // Alone first: the build's own time.
    let alone = trigger().await;
    let alone_run = api.wait_ended("loud", alone).await;
    let before = rss_kib(pid, "VmRSS:");
    let number = trigger().await;
    let peak_before = rss_kib(pid, "VmHWM:");
    let started = Instant::now();
    let all =
        futures_util::future::join_all((0..count).map(|_| follow(&api, "loud", number))).await;
    let elapsed = started.elapsed();
    let run = api.wait_ended("loud", number).await;
    let peak_rss = rss_kib(pid, "VmHWM:");
    let complete = all
        .iter()
        .filter(|(n, ordered, status)| *n >= lines && *ordered && status == "succeeded")
        .count();
    let expected_lines = run["log_lines"].as_i64().unwrap_or(0) + 1;
    println!(
        "{count} followers of a run printing {megabytes} MB ({lines} lines): {complete}/{count} received every line in order and the end event (each {} lines incl. Sluice's own and the Finished line; the log holds {expected_lines})",
        all[0].0
    );
    println!(
        "server RSS: {:.1} MiB before (peak so far {:.1} MiB), peak with the followers {:.1} MiB, {:.1} MiB after",
        before as f64 / 1024.0,
        peak_before as f64 / 1024.0,
        peak_rss as f64 / 1024.0,
        rss_kib(pid, "VmRSS:") as f64 / 1024.0
    );
    println!(
        "server RSS growth with {count} followers: {:.1} MiB (peak with them − peak before them; target < 50 MB)",
        peak_rss.saturating_sub(peak_before) as f64 / 1024.0
    );
    println!(
        "build time: {:.2} s alone, {:.2} s with {count} followers; followers done in {:.2} s",
        took(&alone_run),
        took(&run),
        elapsed.as_secs_f64()
    );
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// The p50, p99 and maximum of `values` (milliseconds), for printing.
fn summary(values: &mut [f64]) -> String {
    values.sort_by(f64::total_cmp);
    format!(
        "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms over {}",
        percentile(values, 0.5),
        percentile(values, 0.99),
        values.last().copied().unwrap_or_default(),
        values.len()
    )
}

async fn follow_latency(a: &str, b: &str, redis_url: &str, prefix: &str, lines: usize) {
    let api = Api::new(a).await;
    let (repo_dir, _) = repo(&format!(
        "pipeline {{\n agent any\n stages {{\n  stage('Tick') {{\n   steps {{\n    sh 'sleep 1; for i in $(seq 1 {lines}); do date +%s%N; sleep 0.03; done'\n   }}\n  }}\n }}\n}}\n"
    ));
    api.project("ticks", &format!("file://{}", repo_dir.path().display()))
        .await;
    // The worker's flush announcements, timed as they arrive here.
    let client = redis::Client::open(redis_url).unwrap();
    let mut pubsub = client.get_async_pubsub().await.unwrap();
    pubsub.subscribe(format!("{prefix}:events")).await.unwrap();
    let announcements = tokio::spawn(async move {
        let mut at = Vec::new();
        let mut messages = pubsub.on_message();
        while let Some(message) = futures_util::StreamExt::next(&mut messages).await {
            let text: String = message.get_payload().unwrap_or_default();
            if text.starts_with('f') {
                at.push(now_ns());
            }
            if text == "stop" {
                break;
            }
        }
        at
    });
    let res = api
        .client
        .post(format!("{}/projects/ticks/runs", api.base))
        .bearer_auth(&api.token)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let number = res.json::<Value>().await.unwrap()["number"]
        .as_i64()
        .unwrap();
    let on_b = api.base.replacen(a, b, 1);
    let mut res = api
        .client
        .get(format!("{on_b}/projects/ticks/runs/{number}/log"))
        .bearer_auth(&api.token)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    // (arrival, printed) per line; printed is None for Sluice's own lines.
    let mut arrivals: Vec<(u128, Option<u128>)> = Vec::new();
    let mut pending = String::new();
    'stream: while let Some(chunk) = res.chunk().await.unwrap() {
        let got = now_ns();
        pending.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = pending.find("\n\n") {
            let event: String = pending.drain(..end + 2).collect();
            if event.starts_with("event: end") {
                break 'stream;
            }
            if let Some(data) = event.lines().find_map(|l| l.strip_prefix("data: ")) {
                let line: Value = serde_json::from_str(data).unwrap();
                let printed = line["text"].as_str().and_then(|t| t.trim().parse().ok());
                arrivals.push((got, printed));
            }
        }
    }
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: i64 = redis::cmd("PUBLISH")
        .arg(format!("{prefix}:events"))
        .arg("stop")
        .query_async(&mut conn)
        .await
        .unwrap();
    let announced = announcements.await.unwrap();
    // Each announcement, to the first line the follower got after it.
    let mut after_flush: Vec<f64> = announced
        .iter()
        .filter_map(|f| {
            let next = arrivals.iter().map(|(r, _)| *r).find(|r| r >= f)?;
            Some((next - f) as f64 / 1e6)
        })
        .collect();
    let mut after_print: Vec<f64> = arrivals
        .iter()
        .filter_map(|(r, p)| Some(r.saturating_sub((*p)?) as f64 / 1e6))
        .collect();
    println!(
        "flush announced -> follower on the other replica has the lines: {}",
        summary(&mut after_flush)
    );
    println!(
        "step printed a line -> follower has it (includes the worker's 150 ms flush interval): {}",
        summary(&mut after_print)
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("latency") => latency(&args[2], args.get(3).map_or(100, |n| n.parse().unwrap())).await,
        Some("follow-latency") => {
            follow_latency(
                &args[2],
                &args[3],
                &args[4],
                &args[5],
                args.get(6).map_or(200, |n| n.parse().unwrap()),
            )
            .await
        }
        Some("followers") => {
            followers(
                &args[2],
                args[3].parse().unwrap(),
                args.get(4).map_or(100, |n| n.parse().unwrap()),
                args.get(5).map_or(10, |n| n.parse().unwrap()),
            )
            .await
        }
        _ => eprintln!(
            "usage: run_bench latency BASE_URL [RUNS] | follow-latency API_A API_B REDIS_URL PREFIX [LINES] | followers BASE_URL SERVER_PID [FOLLOWERS] [MEGABYTES]"
        ),
    }
}
