//! The one Prometheus registry of the process and the metrics Sluice exports.
//!
//! Label values stay bounded: route templates and methods, never raw paths or ids.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
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
}

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
