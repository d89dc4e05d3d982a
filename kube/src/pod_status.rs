//! Reading a build pod's status the way the executor must: `Running` is not enough to start
//! steps, and a pod that will never run must fail its run with the reason, at once for image
//! and configuration errors, after a grace for an unschedulable one.

use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Pod;

/// Container waiting reasons that never resolve on their own.
const FATAL_WAITING: [&str; 4] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
];

/// Where a build pod stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodState {
    /// Not running yet, nothing wrong so far.
    Starting,
    /// Its containers run and are ready: steps may start.
    Ready,
    /// It will not run: the run fails with `reason` (a bounded word for the metric) and
    /// `message` (for the log).
    Failed { reason: String, message: String },
    /// It ran and stopped (deleted, deadline, evicted).
    Ended { reason: String },
}

/// The state of `pod` at `now`; an unschedulable pod fails once it has been so for longer than
/// `unschedulable_after`.
pub fn pod_state(pod: &Pod, now: DateTime<Utc>, unschedulable_after: Duration) -> PodState {
    let Some(status) = &pod.status else {
        return PodState::Starting;
    };
    for container in status.container_statuses.iter().flatten() {
        if let Some(waiting) = container.state.as_ref().and_then(|s| s.waiting.as_ref()) {
            let reason = waiting.reason.clone().unwrap_or_default();
            if FATAL_WAITING.contains(&reason.as_str()) {
                let message = waiting.message.clone().unwrap_or_default();
                return PodState::Failed {
                    message: format!(
                        "container `{}` cannot start: {reason}{}",
                        container.name,
                        if message.is_empty() {
                            String::new()
                        } else {
                            format!(": {message}")
                        }
                    ),
                    reason,
                };
            }
        }
    }
    match status.phase.as_deref() {
        Some("Succeeded") | Some("Failed") => {
            return PodState::Ended {
                reason: status
                    .reason
                    .clone()
                    .or_else(|| status.phase.clone())
                    .unwrap_or_default(),
            };
        }
        Some("Running") => {
            let ready = status
                .conditions
                .iter()
                .flatten()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            return if ready {
                PodState::Ready
            } else {
                PodState::Starting
            };
        }
        _ => {}
    }
    let unschedulable = status.conditions.iter().flatten().find(|c| {
        c.type_ == "PodScheduled"
            && c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
    });
    if let Some(condition) = unschedulable {
        let since = condition
            .last_transition_time
            .as_ref()
            .map(|t| t.0.as_second());
        let waited = since.map_or(Duration::ZERO, |since| {
            Duration::from_secs(u64::try_from(now.timestamp() - since).unwrap_or(0))
        });
        if waited > unschedulable_after {
            return PodState::Failed {
                reason: "Unschedulable".to_owned(),
                message: format!(
                    "the pod could not be scheduled for {}s: {}",
                    waited.as_secs(),
                    condition.message.clone().unwrap_or_default()
                ),
            };
        }
    }
    PodState::Starting
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(status: serde_json::Value) -> Pod {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "run-1-1"},
            "status": status,
        }))
        .unwrap()
    }

    const GRACE: Duration = Duration::from_secs(60);

    #[test]
    fn image_and_config_errors_fail_at_once() {
        for reason in FATAL_WAITING {
            let p = pod(
                serde_json::json!({"phase": "Pending", "containerStatuses": [{
                "name": "build", "image": "nope:1", "imageID": "", "ready": false,
                "restartCount": 0, "state": {"waiting": {"reason": reason, "message": "pull failed"}}}]}),
            );
            match pod_state(&p, Utc::now(), GRACE) {
                PodState::Failed { reason: r, message } => {
                    assert_eq!(r, reason);
                    assert!(message.contains("`build`") && message.contains("pull failed"));
                }
                other => panic!("{reason}: {other:?}"),
            }
        }
        let creating = pod(
            serde_json::json!({"phase": "Pending", "containerStatuses": [{
            "name": "build", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
            "state": {"waiting": {"reason": "ContainerCreating"}}}]}),
        );
        assert_eq!(pod_state(&creating, Utc::now(), GRACE), PodState::Starting);
    }

    #[test]
    fn unschedulable_fails_only_after_the_grace() {
        let since = Utc::now() - chrono::Duration::seconds(90);
        let p = pod(serde_json::json!({"phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available: insufficient memory",
            "lastTransitionTime": since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)}]}));
        assert_eq!(
            pod_state(&p, since + chrono::Duration::seconds(30), GRACE),
            PodState::Starting
        );
        match pod_state(&p, Utc::now(), GRACE) {
            PodState::Failed { reason, message } => {
                assert_eq!(reason, "Unschedulable");
                assert!(message.contains("insufficient memory"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn running_is_not_ready_until_the_condition_says_so() {
        let running = pod(serde_json::json!({"phase": "Running", "conditions": [
            {"type": "Ready", "status": "False"}]}));
        assert_eq!(pod_state(&running, Utc::now(), GRACE), PodState::Starting);
        let ready = pod(serde_json::json!({"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True"}]}));
        assert_eq!(pod_state(&ready, Utc::now(), GRACE), PodState::Ready);
        let gone = pod(serde_json::json!({"phase": "Failed", "reason": "DeadlineExceeded"}));
        assert_eq!(
            pod_state(&gone, Utc::now(), GRACE),
            PodState::Ended {
                reason: "DeadlineExceeded".into()
            }
        );
        assert_eq!(
            pod_state(&pod(serde_json::json!(null)), Utc::now(), GRACE),
            PodState::Starting
        );
    }
}
