//! The release router: one listener per app environment (its `APP_URL`), balancing requests
//! round-robin over the routed, ready instances, so each colour's share of requests equals its
//! share of routed instances. Built on hyper's HTTP/1 server and hyper-util's pooled client.
//!
//! No request is lost across a change: the pool is swapped whole (new instances join ready,
//! removed ones stop getting requests at once and drain their in-flight ones), each request
//! picks its instance afresh (so a client's keep-alive connection is never tied to a draining
//! instance), and a request whose connection to an instance failed before anything was sent is
//! retried on the next one. The router keeps its own per-colour counters for the release
//! analysis and records `sluice_route_requests_total` and `sluice_route_request_duration_seconds`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sluice_core::metrics::Metrics;
use sluice_core::release::plan::Counters;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The largest request or response body the router buffers.
const MAX_BODY: usize = 32 * 1024 * 1024;
/// How long samples are kept for the analysis.
const WINDOW: Duration = Duration::from_secs(120);
/// At most this many samples per colour.
const MAX_SAMPLES: usize = 500_000;

/// What an instance and the router share: requests in flight to it.
#[derive(Debug, Default)]
pub struct Load {
    pub inflight: AtomicUsize,
}

/// A routed instance.
#[derive(Debug, Clone)]
pub struct Backend {
    pub addr: SocketAddr,
    pub colour: &'static str,
    pub load: Arc<Load>,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    ok: bool,
    ms: f32,
}

#[derive(Default)]
struct Stats {
    blue: VecDeque<Sample>,
    green: VecDeque<Sample>,
}

impl Stats {
    fn of(&mut self, colour: &str) -> Option<&mut VecDeque<Sample>> {
        match colour {
            "blue" => Some(&mut self.blue),
            "green" => Some(&mut self.green),
            _ => None,
        }
    }
}

/// The status classes of `sluice_route_requests_total`'s `code`.
const CODES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "error"];
const COLOURS: [&str; 3] = ["blue", "green", "none"];

/// This router's series, looked up once (a label lookup per request costs more than the
/// increment).
struct Series {
    requests: Vec<prometheus::IntCounter>,
    duration: Vec<prometheus::Histogram>,
}

impl Series {
    fn new(metrics: &Metrics, app: &str, env: &str) -> Series {
        let mut requests = Vec::new();
        let mut duration = Vec::new();
        for colour in COLOURS {
            for code in CODES {
                requests.push(
                    metrics
                        .route_requests
                        .with_label_values(&[app, env, colour, code]),
                );
            }
            duration.push(
                metrics
                    .route_duration
                    .with_label_values(&[app, env, colour]),
            );
        }
        Series { requests, duration }
    }
}

struct Inner {
    pool: RwLock<Arc<Vec<Backend>>>,
    next: AtomicUsize,
    client: Client<HttpConnector, Full<Bytes>>,
    stats: Mutex<Stats>,
    app: String,
    series: Series,
}

/// A running router; it stops when the token given to [`Router::bind`] is cancelled.
#[derive(Clone)]
pub struct Router {
    inner: Arc<Inner>,
    local: SocketAddr,
}

/// The client the router (and health checks) use: pooled keep-alive connections.
pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(2)));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(256)
        .build(connector)
}

impl Router {
    /// Listens on `addr` (port 0 picks one) for `app` in `env`.
    pub async fn bind(
        addr: SocketAddr,
        app: &str,
        env: &str,
        metrics: Metrics,
        stop: CancellationToken,
    ) -> std::io::Result<Router> {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let inner = Arc::new(Inner {
            pool: RwLock::new(Arc::new(Vec::new())),
            next: AtomicUsize::new(0),
            client: client(),
            stats: Mutex::new(Stats::default()),
            app: app.to_owned(),
            series: Series::new(&metrics, app, env),
        });
        tokio::spawn(accept(listener, inner.clone(), stop));
        Ok(Router { inner, local })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Replaces the routed instances.
    pub fn set_pool(&self, backends: Vec<Backend>) {
        if let Ok(mut pool) = self.inner.pool.write() {
            *pool = Arc::new(backends);
        }
    }

    pub fn pool(&self) -> Arc<Vec<Backend>> {
        self.inner
            .pool
            .read()
            .map(|p| p.clone())
            .unwrap_or_default()
    }

    /// A colour's counters over the requests answered since `since` (within the window).
    pub fn counters(&self, colour: &str, since: Instant) -> Counters {
        let Ok(mut stats) = self.inner.stats.lock() else {
            return Counters::default();
        };
        let Some(samples) = stats.of(colour) else {
            return Counters::default();
        };
        let mut ms: Vec<f32> = Vec::new();
        let mut failures = 0u64;
        for s in samples.iter().filter(|s| s.at >= since) {
            ms.push(s.ms);
            failures += u64::from(!s.ok);
        }
        if ms.is_empty() {
            return Counters::default();
        }
        ms.sort_by(|a, b| a.total_cmp(b));
        let idx = ((ms.len() as f64) * 0.99).ceil() as usize;
        Counters {
            requests: ms.len() as u64,
            failures,
            p99_ms: f64::from(ms[idx.clamp(1, ms.len()) - 1]),
        }
    }
}

fn record(inner: &Inner, colour: &'static str, status: Option<StatusCode>, took: Duration) {
    let code = match status {
        Some(s) => usize::from((s.as_u16() / 100).clamp(1, 5)) - 1,
        None => 5,
    };
    let c = COLOURS.iter().position(|c| *c == colour).unwrap_or(2);
    if let Some(counter) = inner.series.requests.get(c * CODES.len() + code) {
        counter.inc();
    }
    if let Some(histogram) = inner.series.duration.get(c) {
        histogram.observe(took.as_secs_f64());
    }
    let ok = status.is_some_and(|s| !s.is_server_error());
    let now = Instant::now();
    if let Ok(mut stats) = inner.stats.lock()
        && let Some(samples) = stats.of(colour)
    {
        while samples
            .front()
            .is_some_and(|s| now.duration_since(s.at) > WINDOW)
            || samples.len() >= MAX_SAMPLES
        {
            samples.pop_front();
        }
        samples.push_back(Sample {
            at: now,
            ok,
            ms: took.as_secs_f32() * 1000.0,
        });
    }
}

async fn accept(listener: TcpListener, inner: Arc<Inner>, stop: CancellationToken) {
    loop {
        let stream = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    tracing::warn!(error = %err, "the release router cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let peer = stream.peer_addr().ok();
        let inner = inner.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let inner = inner.clone();
                async move { Ok::<_, Infallible>(handle(&inner, req, peer).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(Duration::from_secs(5), conn.as_mut()).await;
                }
            }
        });
    }
}

/// Headers that belong to one connection, never forwarded.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn strip(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(*name);
    }
}

fn plain(status: StatusCode, text: &str) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(format!("{text}\n"))));
    *res.status_mut() = status;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// Decrements an instance's in-flight count however the request ends.
struct InFlight(Arc<Load>);

impl InFlight {
    fn new(load: &Arc<Load>) -> InFlight {
        load.inflight.fetch_add(1, Ordering::SeqCst);
        InFlight(load.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.inflight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn handle(
    inner: &Inner,
    req: Request<Incoming>,
    peer: Option<SocketAddr>,
) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let (mut parts, body) = req.into_parts();
    let body = if hyper::body::Body::is_end_stream(&body) {
        Bytes::new()
    } else {
        match Limited::new(body, MAX_BODY).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(_) => return plain(StatusCode::PAYLOAD_TOO_LARGE, "request body too large"),
        }
    };
    strip(&mut parts.headers);
    if let Some(peer) = peer
        && let Ok(value) = HeaderValue::from_str(&peer.ip().to_string())
    {
        parts.headers.append("x-forwarded-for", value);
    }
    parts
        .headers
        .insert("x-forwarded-proto", HeaderValue::from_static("http"));
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let pool = inner.pool.read().map(|p| p.clone()).unwrap_or_default();
    if pool.is_empty() {
        return plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "no instance of this app is ready",
        );
    }
    let first = inner.next.fetch_add(1, Ordering::Relaxed);
    let attempts = pool.len().min(4);
    let mut last_colour = pool[first % pool.len()].colour;
    for k in 0..attempts {
        let backend = &pool[(first + k) % pool.len()];
        last_colour = backend.colour;
        let uri = match format!("http://{}{path}", backend.addr).parse::<hyper::Uri>() {
            Ok(uri) => uri,
            Err(_) => return plain(StatusCode::BAD_REQUEST, "bad request target"),
        };
        let mut out = Request::new(Full::new(body.clone()));
        *out.method_mut() = parts.method.clone();
        *out.uri_mut() = uri;
        *out.headers_mut() = parts.headers.clone();
        let _inflight = InFlight::new(&backend.load);
        match inner.client.request(out).await {
            Ok(res) => {
                let (mut rparts, rbody) = res.into_parts();
                let bytes = match Limited::new(rbody, MAX_BODY).collect().await {
                    Ok(collected) => collected.to_bytes(),
                    Err(err) => {
                        tracing::debug!(error = %err, app = %inner.app, "an instance broke off its answer");
                        record(inner, backend.colour, None, started.elapsed());
                        return plain(StatusCode::BAD_GATEWAY, "the instance broke off its answer");
                    }
                };
                strip(&mut rparts.headers);
                record(
                    inner,
                    backend.colour,
                    Some(rparts.status),
                    started.elapsed(),
                );
                return Response::from_parts(rparts, Full::new(bytes));
            }
            // Nothing was sent: another instance can take it.
            Err(err) if err.is_connect() => {
                tracing::debug!(error = %err, addr = %backend.addr, "instance refused a connection; retrying on the next");
                continue;
            }
            Err(err) => {
                tracing::debug!(error = %err, addr = %backend.addr, "instance failed a request");
                record(inner, backend.colour, None, started.elapsed());
                return plain(StatusCode::BAD_GATEWAY, "the instance failed the request");
            }
        }
    }
    record(inner, last_colour, None, started.elapsed());
    plain(StatusCode::BAD_GATEWAY, "no instance accepted the request")
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("local", &self.local)
            .finish()
    }
}
