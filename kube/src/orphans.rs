//! Collecting a worker's orphaned build pods. Every minute a worker lists the pods labelled
//! with its controller id, in every tenant namespace, and deletes those whose run ended, is
//! unknown, moved on to another attempt, or whose heartbeat annotation went stale (the worker
//! driving it died). A delete that fails is simply found again on the next pass.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use sluice_core::entities::run;
use sluice_core::metrics::Metrics;

use crate::pod::{ATTEMPT_LABEL, CONTROLLER_LABEL, RUN_LABEL};
use crate::provisioner::Error;

/// The annotation the executor refreshes while it drives a pod (RFC 3339).
pub const HEARTBEAT: &str = "sluice.dev/heartbeat";

/// Why a pod is an orphan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Keep,
    /// The pod has no (readable) run label.
    Unlabelled,
    RunUnknown,
    RunEnded,
    /// The run is on another attempt.
    Superseded,
    /// No heartbeat, or one older than the limit.
    Silent,
}

/// Decides about one pod from its labels, heartbeat and the run as the database has it.
pub fn verdict(
    pod: &Pod,
    run: Option<&run::Model>,
    now: DateTime<Utc>,
    stale_after: Duration,
) -> Verdict {
    let labels = pod.metadata.labels.clone().unwrap_or_default();
    let attempt = labels
        .get(ATTEMPT_LABEL)
        .and_then(|a| a.parse::<i32>().ok());
    if labels
        .get(RUN_LABEL)
        .and_then(|r| r.parse::<i64>().ok())
        .is_none()
        || attempt.is_none()
    {
        return Verdict::Unlabelled;
    }
    let Some(run) = run else {
        return Verdict::RunUnknown;
    };
    if !matches!(run.status.as_str(), "running" | "waiting") {
        return Verdict::RunEnded;
    }
    if Some(run.attempt) != attempt {
        return Verdict::Superseded;
    }
    let heartbeat = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(HEARTBEAT))
        .and_then(|h| DateTime::parse_from_rfc3339(h).ok())
        .map(|h| h.with_timezone(&Utc));
    let stale = chrono::Duration::from_std(stale_after).unwrap_or_default();
    match heartbeat {
        Some(at) if now - at <= stale => Verdict::Keep,
        _ => Verdict::Silent,
    }
}

/// One collection pass for `controller`'s pods; returns the pods deleted (`namespace/name`).
pub async fn collect(
    client: &Client,
    db: &DatabaseConnection,
    controller: &str,
    stale_after: Duration,
    metrics: &Metrics,
) -> Result<Vec<String>, Error> {
    let pods: Api<Pod> = Api::all(client.clone());
    let mine = pods
        .list(&ListParams::default().labels(&format!("{CONTROLLER_LABEL}={controller}")))
        .await?;
    // The pods' runs in one query.
    let run_of = |pod: &Pod| {
        pod.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(RUN_LABEL))
            .and_then(|r| r.parse::<i64>().ok())
    };
    let ids: Vec<i64> = mine.items.iter().filter_map(run_of).collect();
    let runs: HashMap<i64, run::Model> = if ids.is_empty() {
        HashMap::new()
    } else {
        run::Entity::find()
            .filter(run::Column::Id.is_in(ids))
            .all(db)
            .await
            .map_err(|e| Error::Db(e.into()))?
            .into_iter()
            .map(|r| (r.id, r))
            .collect()
    };
    let now = Utc::now();
    let mut deleted = Vec::new();
    for pod in &mine.items {
        let (Some(name), Some(namespace)) =
            (pod.metadata.name.clone(), pod.metadata.namespace.clone())
        else {
            continue;
        };
        let run = run_of(pod).and_then(|id| runs.get(&id));
        let why = verdict(pod, run, now, stale_after);
        if why == Verdict::Keep {
            continue;
        }
        let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => {
                tracing::info!(pod = %name, namespace = %namespace, reason = ?why, "deleted an orphaned build pod");
                metrics.orphan_pods_deleted.inc();
                deleted.push(format!("{namespace}/{name}"));
            }
            // Gone already: someone else collected it.
            Err(kube::Error::Api(status)) if status.code == 404 => {}
            Err(err) => {
                tracing::warn!(pod = %name, error = %err, "deleting an orphaned build pod failed; retried next pass");
            }
        }
    }
    Ok(deleted)
}
