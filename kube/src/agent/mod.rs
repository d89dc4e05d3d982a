//! The Kubernetes executor's agents: a Pod per attempt in the tenant's namespace.
//!
//! Starting one: the org's namespace objects are applied if this worker has not yet (the
//! provisioner keeps them level afterwards), the attempt's earlier pods are deleted (a dead
//! worker's attempt leaves nothing behind), the pod is created and watched until its
//! container is ready. What Kubernetes says meanwhile (its Events) goes to the run's log. An
//! image or configuration error fails the run at once, an unschedulable pod after
//! `kube_unschedulable_secs`, both with the reason. While the pod lives its heartbeat
//! annotation is refreshed, so a worker that dies leaves a pod the orphan collector finds.

pub mod exec;
pub mod shell;
mod streams;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::Client;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use sea_orm::{DatabaseConnection, EntityTrait};
use sluice_core::config::Settings;
use sluice_core::entities::org;
use sluice_core::logs::Origin;
use sluice_core::metrics::Metrics;
use sluice_core::pipeline::model::{
    Agent as AgentSpec, Pipeline, PipelineOption, Stage, StageBody,
};
use sluice_worker::agent::{Agent, AgentError, Agents};
use sluice_worker::{RunContext, RunEvents};
use tokio_util::sync::CancellationToken;

pub use exec::KubeAgent;

use crate::orphans::HEARTBEAT;
use crate::pod::{BuildPod, RUN_LABEL, build_pod, image_for, pod_name};
use crate::pod_status::{PodState, pod_state};
use crate::provisioner::{FIELD_MANAGER, Provisioner};
use crate::tenant::{TenantPlan, namespace_of};

/// How often a live pod's heartbeat annotation is refreshed.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(15);
/// A heartbeat older than this marks the pod's worker as gone.
pub const HEARTBEAT_STALE: Duration = Duration::from_secs(60);
/// The margin past the pipeline's own timeout after which Kubernetes stops the pod itself
/// (the worker's timeout, with its `post` steps, comes first).
const DEADLINE_MARGIN_SECS: u64 = 60;

/// Starts build pods.
pub struct KubeAgents {
    client: Client,
    db: DatabaseConnection,
    settings: Settings,
    metrics: Metrics,
    templates: BTreeMap<String, String>,
    provisioner: Provisioner,
    /// Orgs whose namespace this worker applied.
    provisioned: Mutex<HashSet<String>>,
}

impl KubeAgents {
    pub fn new(
        client: Client,
        db: DatabaseConnection,
        settings: Settings,
        metrics: Metrics,
    ) -> Result<KubeAgents, String> {
        let templates = settings.pod_templates()?;
        Ok(KubeAgents {
            provisioner: Provisioner::new(client.clone(), settings.clone()),
            client,
            db,
            settings,
            metrics,
            templates,
            provisioned: Mutex::new(HashSet::new()),
        })
    }

    fn already_provisioned(&self, org: &str) -> bool {
        self.provisioned.lock().is_ok_and(|p| p.contains(org))
    }

    /// Deletes what earlier attempts of the run left (a worker that died mid-run).
    async fn clear_earlier_attempts(&self, pods: &Api<Pod>, run_id: i64, name: &str) {
        let Ok(left) = pods
            .list(&ListParams::default().labels(&format!("{RUN_LABEL}={run_id}")))
            .await
        else {
            return;
        };
        for pod in left.items {
            let Some(old) = pod.metadata.name else {
                continue;
            };
            let params = DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            };
            match pods.delete(&old, &params).await {
                Ok(_) => {
                    tracing::info!(pod = %old, for_pod = %name, "deleted an earlier attempt's build pod")
                }
                Err(err) => {
                    tracing::warn!(pod = %old, error = %err, "deleting an earlier attempt's build pod failed")
                }
            }
        }
    }

    /// Watches `name` until it is ready, fails, or `cancel` fires, copying its Events to the
    /// log.
    async fn wait_ready(
        &self,
        pods: &Api<Pod>,
        name: &str,
        events: &dyn RunEvents,
        cancel: &CancellationToken,
    ) -> Result<(), (String, String)> {
        let here = Origin::default();
        let grace = Duration::from_secs(self.settings.kube_unschedulable_secs);
        let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
        let mut watch = watcher(pods.clone(), config).boxed();
        let namespaced: Api<Event> =
            Api::namespaced(self.client.clone(), pods.namespace().unwrap_or_default());
        let mut seen_events = BTreeSet::new();
        let copy_events = async |seen: &mut BTreeSet<String>| {
            let list = namespaced
                .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
                .await;
            for event in list.map(|l| l.items).unwrap_or_default() {
                let key = event
                    .metadata
                    .uid
                    .clone()
                    .unwrap_or_else(|| format!("{:?}{:?}", event.reason, event.count));
                let key = format!("{key}/{}", event.count.unwrap_or(1));
                if seen.insert(key) {
                    events.log(
                        &here,
                        &format!(
                            "[kubernetes] {} {}: {}",
                            event.type_.as_deref().unwrap_or("Normal"),
                            event.reason.as_deref().unwrap_or_default(),
                            event.message.as_deref().unwrap_or_default()
                        ),
                    );
                }
            }
        };
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut last: Option<Pod> = None;
        loop {
            tokio::select! {
                _ = cancel.cancelled() => {
                    return Err(("Cancelled".into(), "cancelled while the pod started".into()));
                }
                event = watch.next() => match event {
                    Some(Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod))) => {
                        last = Some(pod);
                    }
                    Some(Ok(watcher::Event::Delete(_))) => {
                        copy_events(&mut seen_events).await;
                        return Err(("Deleted".into(), format!("pod {name} was deleted before it ran")));
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(err)) => {
                        tracing::debug!(pod = %name, error = %err, "watching a build pod");
                        continue;
                    }
                    None => return Err(("WatchEnded".into(), format!("the watch of pod {name} ended"))),
                },
                _ = tick.tick() => {
                    copy_events(&mut seen_events).await;
                }
            }
            let Some(pod) = &last else {
                continue;
            };
            match pod_state(pod, chrono::Utc::now(), grace) {
                PodState::Starting => {}
                PodState::Ready => {
                    copy_events(&mut seen_events).await;
                    return Ok(());
                }
                PodState::Failed { reason, message } => {
                    copy_events(&mut seen_events).await;
                    return Err((reason, message));
                }
                PodState::Ended { reason } => {
                    copy_events(&mut seen_events).await;
                    return Err((
                        reason.clone(),
                        format!("pod {name} ended before it ran: {reason}"),
                    ));
                }
            }
        }
    }

    /// Refreshes the pod's heartbeat until `done`.
    fn heartbeat(&self, pods: Api<Pod>, name: String, done: CancellationToken) {
        tokio::spawn(async move {
            loop {
                let beat = serde_json::json!({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": name, "annotations": {
                        HEARTBEAT: chrono::Utc::now().to_rfc3339(),
                    }},
                });
                let params = PatchParams::apply(FIELD_MANAGER).force();
                if let Err(err) = pods.patch(&name, &params, &Patch::Apply(&beat)).await {
                    tracing::debug!(pod = %name, error = %err, "refreshing a build pod's heartbeat");
                }
                tokio::select! {
                    _ = done.cancelled() => return,
                    _ = tokio::time::sleep(HEARTBEAT_EVERY) => {}
                }
            }
        });
    }
}

/// What `agent` the Kubernetes executor cannot honour at stage level: every stage runs in the
/// attempt's one pod, so a stage may only say `agent any`/`none` (or nothing).
fn stage_agent(list: &[Stage], file: &str) -> Option<String> {
    list.iter().find_map(|st| {
        if let Some(agent) = &st.agent
            && !matches!(agent, AgentSpec::Any | AgentSpec::None)
        {
            return Some(format!(
                "{file}:{}: stage `{}` asks for an agent of its own; on the Kubernetes executor every stage runs in the run's one pod (declare the agent at the top of the pipeline)",
                st.pos.line, st.name
            ));
        }
        match &st.body {
            StageBody::Steps { .. } => None,
            StageBody::Parallel { stages: s, .. }
            | StageBody::Stages { stages: s }
            | StageBody::Matrix { stages: s, .. } => stage_agent(s, file),
        }
    })
}

#[async_trait::async_trait]
impl Agents for KubeAgents {
    fn refuse(&self, pipeline: &Pipeline, file: &str) -> Option<String> {
        if let Err(err) = image_for(
            &pipeline.agent,
            &self.settings.kube_default_image,
            &self.templates,
        ) {
            return Some(format!("{file}: {err}"));
        }
        stage_agent(&pipeline.stages, file)
    }

    async fn start(
        &self,
        ctx: &RunContext,
        pipeline: &Pipeline,
        events: &dyn RunEvents,
        cancel: &CancellationToken,
    ) -> Result<Box<dyn Agent>, AgentError> {
        let here = Origin::default();
        let org = org::Entity::find_by_id(ctx.project.org_id)
            .one(&self.db)
            .await
            .map_err(|e| AgentError::Failed(format!("reading the project's org: {e}")))?
            .ok_or_else(|| AgentError::Failed("the project's org is gone".into()))?;
        if !self.already_provisioned(&org.slug) {
            self.provisioner
                .apply_org(&org.slug, org.max_concurrent_runs)
                .await
                .map_err(|e| {
                    AgentError::Failed(format!(
                        "preparing namespace {}: {e}",
                        namespace_of(&org.slug)
                    ))
                })?;
            if let Ok(mut p) = self.provisioned.lock() {
                p.insert(org.slug.clone());
            }
        }
        let image = image_for(
            &pipeline.agent,
            &self.settings.kube_default_image,
            &self.templates,
        )
        .map_err(AgentError::Failed)?;
        let deadline = pipeline.options.iter().find_map(|o| match o {
            PipelineOption::Timeout { seconds } => Some(seconds + DEADLINE_MARGIN_SECS),
            _ => None,
        });
        let plan = TenantPlan::new(&self.settings, org.max_concurrent_runs);
        let pod = build_pod(&BuildPod {
            org: &org.slug,
            project: &ctx.project.slug,
            run_id: ctx.run.id,
            attempt: ctx.run.attempt,
            controller: &self.settings.kube_controller,
            image: image.clone(),
            deadline_secs: deadline,
            plan: &plan,
        });
        let name = pod_name(ctx.run.id, ctx.run.attempt);
        let namespace = namespace_of(&org.slug);
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        self.clear_earlier_attempts(&pods, ctx.run.id, &name).await;
        events.log(
            &here,
            &format!("[sluice] starting pod {namespace}/{name} with image {image}"),
        );
        let created = Instant::now();
        let pending = self.metrics.pods_pending.with_label_values(&[&org.slug]);
        pending.inc();
        let made = pods.create(&PostParams::default(), &pod).await;
        let mut agent = KubeAgent::new(pods.clone(), name.clone());
        let ready = match made {
            Ok(_) => {
                self.heartbeat(pods.clone(), name.clone(), agent.done.clone());
                self.wait_ready(&pods, &name, events, cancel).await
            }
            Err(kube::Error::Api(status)) => Err((status.reason.clone(), status.message.clone())),
            Err(err) => Err(("CreateFailed".into(), err.to_string())),
        };
        pending.dec();
        if let Err((reason, message)) = ready {
            if reason != "Cancelled" {
                self.metrics
                    .pod_failures
                    .with_label_values(&[&reason])
                    .inc();
                events.log_error(&here, &format!("[kubernetes] {message}"));
            }
            if let Err(err) = agent.finish().await {
                tracing::warn!(pod = %name, error = %err, "deleting a pod that did not start");
            }
            return Err(AgentError::Failed(message));
        }
        let took = created.elapsed();
        self.metrics.pod_start.observe(took.as_secs_f64());
        if let Err(err) = agent.init().await {
            self.metrics
                .pod_failures
                .with_label_values(&["ExecFailed"])
                .inc();
            let _ = agent.finish().await;
            return Err(err);
        }
        events.log(
            &here,
            &format!(
                "[sluice] pod {name} is ready after {:.1} s",
                took.as_secs_f64()
            ),
        );
        Ok(Box::new(agent))
    }
}
