//! Sluice's worker: consumes the job queue and runs builds through an executor.
//!
//! The queue and executors arrive with the pipelines and execution issues; today the worker
//! owns its lifecycle so that shutdown already stops it through its cancellation token.
#![forbid(unsafe_code)]

use tokio_util::sync::CancellationToken;

/// A queue consumer; one runs inside `sluice serve`, many as `sluice worker` processes.
#[derive(Debug, Default)]
pub struct Worker {}

impl Worker {
    /// Creates a worker.
    pub fn new() -> Worker {
        Worker {}
    }

    /// Runs until `shutdown` is cancelled. Between jobs and steps the worker checks the token,
    /// so a stop never abandons a build half-recorded.
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!("worker started");
        shutdown.cancelled().await;
        tracing::info!("worker stopped");
    }
}
