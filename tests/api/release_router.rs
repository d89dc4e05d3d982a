//! The local runtime's parts on their own, with real processes and real HTTP: an instance that
//! crashes is restarted (on the same port, ready again), the router retries a request whose
//! connection failed before anything was sent on the next instance, balances by instance
//! count, and records its metrics by colour.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sluice_release::instance::{Instance, Launch};
use sluice_release::router::{Backend, Load, Router};
use tokio_util::sync::CancellationToken;

use crate::helpers::wait_until;

/// Answers `/healthz`; `/crash` makes it exit; anything else names its port.
const APP: &str = r#"import http.server, os, sys
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_GET(self):
        if self.path == "/crash":
            os._exit(3)
        body = ("port " + os.environ["PORT"]).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

fn launch(dir: &std::path::Path) -> Launch {
    std::fs::write(dir.join("app.py"), APP).unwrap();
    Launch {
        release_id: 1,
        version: 1,
        command: "python3 app.py".into(),
        dir: dir.to_path_buf(),
        health_path: "/healthz".into(),
        env: vec![],
        supervisor: PathBuf::from(env!("CARGO_BIN_EXE_sluice")),
    }
}

#[tokio::test]
async fn a_crashed_instance_is_restarted_on_its_port_and_ready_again() {
    let dir = tempfile::tempdir().unwrap();
    let instance = Instance::start(launch(dir.path())).unwrap();
    wait_until(Duration::from_secs(20), || async { instance.ready() }).await;
    let url = instance.url();
    let _ = reqwest::get(format!("{url}/crash")).await;
    wait_until(Duration::from_secs(20), || async { instance.exits() == 1 }).await;
    wait_until(Duration::from_secs(20), || async { instance.ready() }).await;
    let body = reqwest::get(&url).await.unwrap().text().await.unwrap();
    assert_eq!(body, format!("port {}", instance.port));
    let pid_file = dir.path().with_extension("log");
    assert!(
        pid_file.exists(),
        "the instance's output goes to {}",
        pid_file.display()
    );
    instance.stop().await;
}

#[tokio::test]
async fn the_router_retries_a_refused_connection_and_balances_by_instance_count() {
    let metrics = sluice_core::metrics::Metrics::new().unwrap();
    let stop = CancellationToken::new();
    let router = Router::bind(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        "web",
        "production",
        metrics.clone(),
        stop.clone(),
    )
    .await
    .unwrap();
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let instances: Vec<Instance> = dirs
        .iter()
        .map(|d| Instance::start(launch(d.path())).unwrap())
        .collect();
    for instance in &instances {
        wait_until(Duration::from_secs(20), || async { instance.ready() }).await;
    }
    // A backend nobody listens on: its requests must go to the next instance.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let mut pool = vec![Backend {
        addr: dead_addr,
        colour: "blue",
        load: Arc::new(Load::default()),
    }];
    pool.push(instances[0].backend("blue"));
    pool.push(instances[1].backend("green"));
    pool.push(instances[2].backend("green"));
    router.set_pool(pool);
    let url = format!("http://{}/", router.local_addr());
    let client = reqwest::Client::new();
    let mut by_port = std::collections::BTreeMap::new();
    for _ in 0..300 {
        let res = client.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 200);
        *by_port.entry(res.text().await.unwrap()).or_insert(0) += 1;
    }
    // Every request answered; the dead backend's turns went to the next one.
    assert_eq!(by_port.values().sum::<u32>(), 300);
    assert_eq!(by_port.len(), 3, "{by_port:?}");
    let first = format!("port {}", instances[0].port);
    assert_eq!(by_port[&first], 150, "{by_port:?}");
    let text = metrics.render().unwrap();
    assert!(
        text.contains(r#"sluice_route_requests_total{app="web",code="2xx",color="green",env="production"} 150"#),
        "{text}"
    );
    assert!(text.contains("sluice_route_request_duration_seconds_bucket"));
    stop.cancel();
    for instance in instances {
        instance.stop().await;
    }
}
