//! The one Prometheus registry of the process and the metrics Sluice exports.
//!
//! Label values stay bounded: route templates and methods, never raw paths or ids.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::Result;

/// Latency buckets for HTTP requests, in seconds.
const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Every metric Sluice records, registered in one registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// `sluice_http_requests_total{method,route,status}`.
    pub http_requests: IntCounterVec,
    /// `sluice_http_request_duration_seconds{method,route}`.
    pub http_request_duration: HistogramVec,
    /// `sluice_webhooks_total{provider,outcome}`.
    pub webhooks: IntCounterVec,
    /// `sluice_queue_depth`: jobs waiting or held in the job queue.
    pub queue_depth: IntGauge,
    /// `sluice_queue_wait_seconds`: from queued to started, per run.
    pub queue_wait: Histogram,
    /// `sluice_runs_running{org}`: runs this process is executing.
    pub runs_running: IntGaugeVec,
    /// `sluice_workers_busy`: worker slots of this process holding a run.
    pub workers_busy: IntGauge,
    /// `sluice_runs_total{org,result}`: runs ended, by how.
    pub runs_total: IntCounterVec,
    /// `sluice_run_duration_seconds`: from start to end, per run.
    pub run_duration: Histogram,
    /// `sluice_steps_total{step,result}`: steps ended (step names are the bounded subset).
    pub steps_total: IntCounterVec,
    /// `sluice_step_duration_seconds{step}`.
    pub step_duration: HistogramVec,
    /// `sluice_orphan_pods_deleted_total`: build pods deleted because their run ended, is
    /// unknown, moved to another attempt or stopped heart-beating.
    pub orphan_pods_deleted: IntCounter,
    /// `sluice_pod_start_seconds`: from a build pod's creation to its container being ready.
    pub pod_start: Histogram,
    /// `sluice_pods_pending{org}`: build pods this process created that are not ready yet.
    pub pods_pending: IntGaugeVec,
    /// `sluice_pod_failures_total{reason}`: build pods that never ran or broke under a run
    /// (a bounded Kubernetes reason: `ErrImagePull`, `Unschedulable`, `Deleted`, ...).
    pub pod_failures: IntCounterVec,
    /// `sluice_release_steps_total{env,outcome}`: release plan steps ended.
    pub release_steps: IntCounterVec,
    /// `sluice_releases_total{env,result}`: releases ended, by how.
    pub releases: IntCounterVec,
    /// `sluice_route_requests_total{app,env,color,code}`: requests the release router answered
    /// (`code` is the status class, `2xx` … `5xx`, or `error` when no instance answered).
    pub route_requests: IntCounterVec,
    /// `sluice_route_request_duration_seconds{app,env,color}`.
    pub route_duration: HistogramVec,
    /// `sluice_bus_messages_received_total{kind}`: announcements from the other processes
    /// (`written`, `queued`, `log_flushed`).
    pub bus_messages: IntCounterVec,
}

/// Routed request buckets, in seconds.
const ROUTE_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Pod start buckets, in seconds: a warm node to a slow image pull.
const POD_START_BUCKETS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
];

/// Run and step duration buckets, in seconds: a second to two hours.
const RUN_BUCKETS: &[f64] = &[
    0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0,
];

/// Queue wait buckets, in seconds: from a near-instant start to an hour's backlog.
const WAIT_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0,
];

impl Metrics {
    /// Creates the registry with the process collector (RSS, CPU, open fds) and Sluice's metrics.
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new(
                "sluice_http_requests_total",
                "HTTP requests answered, by route template.",
            ),
            &["method", "route", "status"],
        )?;
        let http_request_duration = HistogramVec::new(
            HistogramOpts::new(
                "sluice_http_request_duration_seconds",
                "Time to answer an HTTP request, by route template.",
            )
            .buckets(HTTP_BUCKETS.to_vec()),
            &["method", "route"],
        )?;
        let webhooks = IntCounterVec::new(
            Opts::new(
                "sluice_webhooks_total",
                "Webhook deliveries, by provider and outcome.",
            ),
            &["provider", "outcome"],
        )?;
        registry.register(Box::new(webhooks.clone()))?;
        let queue_depth = IntGauge::new(
            "sluice_queue_depth",
            "Jobs waiting or held in the job queue.",
        )?;
        registry.register(Box::new(queue_depth.clone()))?;
        let queue_wait = Histogram::with_opts(
            HistogramOpts::new(
                "sluice_queue_wait_seconds",
                "Time from a run being queued to a worker starting it.",
            )
            .buckets(WAIT_BUCKETS.to_vec()),
        )?;
        registry.register(Box::new(queue_wait.clone()))?;
        let runs_running = IntGaugeVec::new(
            Opts::new(
                "sluice_runs_running",
                "Runs this process is executing, by org.",
            ),
            &["org"],
        )?;
        registry.register(Box::new(runs_running.clone()))?;
        let workers_busy = IntGauge::new(
            "sluice_workers_busy",
            "Worker slots of this process holding a run.",
        )?;
        registry.register(Box::new(workers_busy.clone()))?;
        let runs_total = IntCounterVec::new(
            Opts::new("sluice_runs_total", "Runs ended, by org and result."),
            &["org", "result"],
        )?;
        registry.register(Box::new(runs_total.clone()))?;
        let run_duration = Histogram::with_opts(
            HistogramOpts::new(
                "sluice_run_duration_seconds",
                "Time from a worker starting a run to its end.",
            )
            .buckets(RUN_BUCKETS.to_vec()),
        )?;
        registry.register(Box::new(run_duration.clone()))?;
        let steps_total = IntCounterVec::new(
            Opts::new(
                "sluice_steps_total",
                "Pipeline steps ended, by step and result.",
            ),
            &["step", "result"],
        )?;
        registry.register(Box::new(steps_total.clone()))?;
        let step_duration = HistogramVec::new(
            HistogramOpts::new(
                "sluice_step_duration_seconds",
                "Time a pipeline step took, by step.",
            )
            .buckets(RUN_BUCKETS.to_vec()),
            &["step"],
        )?;
        registry.register(Box::new(step_duration.clone()))?;
        let orphan_pods_deleted = IntCounter::new(
            "sluice_orphan_pods_deleted_total",
            "Build pods deleted because their run ended, is unknown, moved on or went silent.",
        )?;
        registry.register(Box::new(orphan_pods_deleted.clone()))?;
        let pod_start = Histogram::with_opts(
            HistogramOpts::new(
                "sluice_pod_start_seconds",
                "Time from a build pod's creation to its container being ready.",
            )
            .buckets(POD_START_BUCKETS.to_vec()),
        )?;
        registry.register(Box::new(pod_start.clone()))?;
        let pods_pending = IntGaugeVec::new(
            Opts::new(
                "sluice_pods_pending",
                "Build pods created and not ready yet, by org.",
            ),
            &["org"],
        )?;
        registry.register(Box::new(pods_pending.clone()))?;
        let pod_failures = IntCounterVec::new(
            Opts::new(
                "sluice_pod_failures_total",
                "Build pods that never ran or broke under a run, by Kubernetes reason.",
            ),
            &["reason"],
        )?;
        registry.register(Box::new(pod_failures.clone()))?;
        let release_steps = IntCounterVec::new(
            Opts::new(
                "sluice_release_steps_total",
                "Release plan steps ended, by environment and outcome.",
            ),
            &["env", "outcome"],
        )?;
        registry.register(Box::new(release_steps.clone()))?;
        let releases = IntCounterVec::new(
            Opts::new(
                "sluice_releases_total",
                "Releases ended, by environment and result.",
            ),
            &["env", "result"],
        )?;
        registry.register(Box::new(releases.clone()))?;
        let route_requests = IntCounterVec::new(
            Opts::new(
                "sluice_route_requests_total",
                "Requests the release router answered, by app, environment, colour and status class.",
            ),
            &["app", "env", "color", "code"],
        )?;
        registry.register(Box::new(route_requests.clone()))?;
        let route_duration = HistogramVec::new(
            HistogramOpts::new(
                "sluice_route_request_duration_seconds",
                "Time the release router took to answer a request, by app, environment and colour.",
            )
            .buckets(ROUTE_BUCKETS.to_vec()),
            &["app", "env", "color"],
        )?;
        registry.register(Box::new(route_duration.clone()))?;
        let bus_messages = IntCounterVec::new(
            Opts::new(
                "sluice_bus_messages_received_total",
                "Announcements received from the other Sluice processes, by kind.",
            ),
            &["kind"],
        )?;
        registry.register(Box::new(bus_messages.clone()))?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_request_duration.clone()))?;
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Metrics {
            registry,
            http_requests,
            http_request_duration,
            webhooks,
            queue_depth,
            queue_wait,
            runs_running,
            workers_busy,
            runs_total,
            run_duration,
            steps_total,
            step_duration,
            orphan_pods_deleted,
            pod_start,
            pods_pending,
            pod_failures,
            release_steps,
            releases,
            route_requests,
            route_duration,
            bus_messages,
        })
    }

    /// Renders every metric in the Prometheus text exposition format.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        String::from_utf8(buffer).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn http_metrics_render_with_their_labels() {
        let metrics = Metrics::new().unwrap();
        metrics
            .http_requests
            .with_label_values(&["GET", "/healthz", "200"])
            .inc();
        metrics
            .http_request_duration
            .with_label_values(&["GET", "/healthz"])
            .observe(0.002);
        let text = metrics.render().unwrap();
        assert!(
            text.contains(
                r#"sluice_http_requests_total{method="GET",route="/healthz",status="200"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains("sluice_http_request_duration_seconds_bucket"),
            "{text}"
        );
    }
}
