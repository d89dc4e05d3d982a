//! Repository URLs that tried to reach internal hosts with local repositories off, each
//! against a canary listener that must never see a connection: URL tricks that hide the real
//! host, a redirect from an allowed host, and this host's own addresses.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use sluice_core::addresses::DenyList;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::fleet::{Backend, queue, start_fleet_with, wait_for_run};
use crate::helpers::spawn_app_with;

/// A listener that counts connections and answers each with `answer` (or nothing).
struct Listener {
    port: u16,
    hits: Arc<AtomicUsize>,
}

async fn listen(ip: &str, answer: Option<String>) -> Listener {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            if let Some(answer) = answer.clone() {
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = conn.read(&mut buf).await;
                    let _ = conn.write_all(answer.as_bytes()).await;
                    let _ = conn.shutdown().await;
                });
            }
        }
    });
    Listener { port, hits }
}

/// Runs a project cloning `url` on a worker with local repositories off and `deny`; returns
/// the ended run. The API, which looks the ref up when the run is created, has the same
/// settings, as it does when both read one configuration.
async fn run_cloning(url: &str, deny: &str) -> serde_json::Value {
    let app = spawn_app_with(|s| {
        s.allow_local_repos = Some(false);
        s.repo_deny_cidrs = deny.to_owned();
    })
    .await;
    let owner = app.signup("owner@example.com").await;
    app.create_org(&owner, "acme").await;
    let (status, body) = app
        .post_as(
            "/api/v1/orgs/acme/projects",
            &owner,
            json!({"slug": "web", "name": "web", "repo_url": url}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let q = queue(&app, Backend::Embedded, Duration::from_secs(30)).await;
    let deny = DenyList::parse(deny).unwrap();
    let _fleet = start_fleet_with(&app, q, 1, 1, |c| {
        c.allow_local_repos = false;
        c.repo_deny = deny.clone();
    });
    let (status, body) = app
        .post_as("/api/v1/orgs/acme/projects/web/runs", &owner, json!({}))
        .await;
    assert_eq!(status, 201, "{body}");
    let path = "/api/v1/orgs/acme/projects/web/runs/1";
    wait_for_run(&app, &owner, path, &["failed", "succeeded", "cancelled"]).await
}

#[tokio::test]
async fn a_host_hidden_behind_query_or_fragment_text_is_the_one_checked() {
    let canary = listen("127.0.0.1", None).await;
    for url in [
        format!("http://127.0.0.1:{}?@192.0.2.2/x", canary.port),
        format!("http://127.0.0.1:{}#@192.0.2.2/x", canary.port),
    ] {
        let run = run_cloning(&url, "default").await;
        assert_eq!(run["status"], "failed", "{url}: {run}");
        let reason = run["reason"].as_str().unwrap();
        assert!(
            reason.contains("`127.0.0.1` resolves to 127.0.0.1"),
            "{url}: {reason}"
        );
    }
    assert_eq!(
        canary.hits.load(Ordering::SeqCst),
        0,
        "the canary was reached"
    );
}

#[tokio::test]
async fn a_redirect_from_an_allowed_host_is_not_followed() {
    // 127.0.0.2 stands for an internal host; 127.0.0.1 for an allowed one that redirects.
    let canary = listen("127.0.0.2", None).await;
    let redirect = format!(
        "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.2:{}/x.git/info/refs?service=git-upload-pack\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        canary.port
    );
    let allowed = listen("127.0.0.1", Some(redirect)).await;
    // By name: the clone is pinned to the addresses that were checked.
    let url = format!("http://localhost:{}/x.git", allowed.port);
    let run = run_cloning(&url, "127.0.0.2/32").await;
    assert_eq!(run["status"], "failed", "{run}");
    assert!(
        run["reason"].as_str().unwrap().contains("git clone failed"),
        "{run}"
    );
    assert!(
        allowed.hits.load(Ordering::SeqCst) >= 1,
        "the allowed host was asked"
    );
    assert_eq!(
        canary.hits.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );
}

#[tokio::test]
async fn this_hosts_own_addresses_are_refused_by_default() {
    let own = sluice_core::addresses::host_addresses()
        .into_iter()
        .find(|ip| ip.is_ipv4() && !ip.is_loopback());
    let Some(own) = own else {
        panic!("this host has no non-loopback IPv4 address to test with");
    };
    // Nothing listens on port 9 (discard); the run must fail on the address check, before
    // any connection is tried.
    let url = format!("http://{own}:9/x.git");
    let run = run_cloning(&url, "default").await;
    assert_eq!(run["status"], "failed", "{run}");
    assert!(
        run["reason"]
            .as_str()
            .unwrap()
            .contains("which SLUICE_REPO_DENY_CIDRS refuses"),
        "{run}"
    );
}
