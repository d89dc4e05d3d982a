//! The release router's cost: throughput and latency through it against hitting the instance
//! directly, and the router's memory with 1,000 keep-alive clients.
//!
//!   cargo run --release --example route_bench -- [SECONDS] [CONNECTIONS] [hyper|python] [bare]
//!
//! It starts two child processes: an instance and a router (Sluice's, with that instance as
//! its only routed backend). The instance is a minimal hyper HTTP/1 server that answers
//! `hello` (`hyper`, the default: the router's own cost shows most), or Python's threading
//! `http.server` answering the same (`python`: an app like the end-to-end tests deploy).
//! `bare` replaces Sluice's router with the floor of any proxy on the same parts: hyper's
//! server forwarding to hyper-util's client, streaming, with nothing else.
//! Then, for SECONDS each (default 10), CONNECTIONS keep-alive clients (default 32) send GETs
//! as fast as they get answers, first to the instance, then to the router; it prints requests
//! per second, p50 and p99 of each and the router/direct throughput ratio. Last, it opens 1,000
//! keep-alive connections to the router, one request on each, and prints the router process's
//! resident memory before and with them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::convert::Infallible;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

async fn backend() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("{}", listener.local_addr().unwrap().port());
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(|_req: Request<hyper::body::Incoming>| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn router(backend_port: u16) {
    let metrics = sluice_core::metrics::Metrics::new().unwrap();
    let stop = tokio_util::sync::CancellationToken::new();
    let router = sluice_release::router::Router::bind(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        "bench",
        "bench",
        metrics,
        stop,
    )
    .await
    .unwrap();
    router.set_pool(vec![sluice_release::router::Backend {
        addr: SocketAddr::from(([127, 0, 0, 1], backend_port)),
        colour: "green",
        load: Arc::new(sluice_release::router::Load::default()),
    }]);
    println!("{}", router.local_addr().port());
    std::future::pending::<()>().await;
}

/// A Python instance: keep-alive HTTP/1.1, prints its port.
const PYTHON: &str = r#"import http.server, socketserver, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")
class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
s = S(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
"#;

/// The floor a proxy on these parts can reach: hyper's server forwarding to hyper-util's
/// pooled client, streaming both ways, with nothing else (no balancing, counters or metrics).
async fn bare(backend_port: u16) {
    use hyper_util::client::legacy::Client;
    let client: Client<_, hyper::body::Incoming> =
        Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    println!("{}", listener.local_addr().unwrap().port());
    loop {
        let (stream, _) = listener.accept().await.unwrap();
        let _ = stream.set_nodelay(true);
        let client = client.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
                    let client = client.clone();
                    async move {
                        let path = req
                            .uri()
                            .path_and_query()
                            .map_or("/", |p| p.as_str())
                            .to_owned();
                        *req.uri_mut() = format!("http://127.0.0.1:{backend_port}{path}")
                            .parse()
                            .unwrap();
                        client.request(req).await
                    }
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn child(args: &[&str]) -> (Child, u16) {
    let mut command = if args == ["python"] {
        let mut c = Command::new("python3");
        c.arg("-c").arg(PYTHON);
        c
    } else {
        let mut c = Command::new(std::env::current_exe().unwrap());
        c.args(args);
        c
    };
    let mut child = command.stdout(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    (child, line.trim().parse().unwrap())
}

async fn connect(port: u16) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

async fn get(sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>) {
    sender.ready().await.unwrap();
    let req = Request::get("/")
        .header("host", "bench")
        .body(Empty::new())
        .unwrap();
    let res = sender.send_request(req).await.unwrap();
    assert!(res.status().is_success());
    let _ = res.into_body().collect().await.unwrap();
}

/// Requests per second, p50 and p99 (µs).
async fn load(port: u16, seconds: u64, connections: usize) -> (f64, u64, u64) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..connections)
        .map(|_| {
            tokio::spawn(async move {
                let mut sender = connect(port).await;
                let mut times = Vec::new();
                while Instant::now() < deadline {
                    let started = Instant::now();
                    get(&mut sender).await;
                    times.push(started.elapsed().as_micros() as u64);
                }
                times
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    all.sort_unstable();
    let at = |p: f64| all[((all.len() - 1) as f64 * p) as usize];
    (all.len() as f64 / seconds as f64, at(0.5), at(0.99))
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("backend") => return backend().await,
        Some("router") => return router(args[1].parse().unwrap()).await,
        Some("bare") => return bare(args[1].parse().unwrap()).await,
        _ => {}
    }
    let seconds: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(10);
    let connections: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(32);
    let kind = args.get(2).map_or("hyper", String::as_str);
    let (mut instance, backend_port) = child(&[if kind == "python" {
        "python"
    } else {
        "backend"
    }]);
    println!("instance: {kind}");
    let proxy = if args.get(3).map(String::as_str) == Some("bare") {
        "bare"
    } else {
        "router"
    };
    let (mut routed, router_port) = child(&[proxy, &backend_port.to_string()]);
    println!("proxy: {proxy}");

    let (direct_rps, direct_p50, direct_p99) = load(backend_port, seconds, connections).await;
    println!(
        "direct:  {direct_rps:>9.0} req/s  p50 {direct_p50} µs  p99 {direct_p99} µs  ({connections} keep-alive clients, {seconds} s)"
    );
    let (router_rps, router_p50, router_p99) = load(router_port, seconds, connections).await;
    println!(
        "router:  {router_rps:>9.0} req/s  p50 {router_p50} µs  p99 {router_p99} µs  ({connections} keep-alive clients, {seconds} s)"
    );
    println!(
        "ratio:   {:.2} (router / direct throughput)",
        router_rps / direct_rps
    );

    let before = rss_kib(routed.id());
    let mut held = Vec::new();
    for _ in 0..1000 {
        let mut sender = connect(router_port).await;
        get(&mut sender).await;
        held.push(sender);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let with = rss_kib(routed.id());
    println!(
        "memory:  router RSS {:.1} MiB idle, {:.1} MiB with 1000 keep-alive clients ({:.1} KiB each)",
        before as f64 / 1024.0,
        with as f64 / 1024.0,
        (with.saturating_sub(before)) as f64 / 1000.0
    );
    drop(held);
    let _ = routed.kill();
    let _ = instance.kill();
}
