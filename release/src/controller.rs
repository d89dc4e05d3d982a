//! The release controller of one slot: it carries a release through its plan's steps, saving
//! each transition (so a controller that takes the slot over after a crash resumes at the step
//! that was running: every step first converges to the traffic it starts from), analyses the
//! router's counters while it monitors, and rolls back on any failure, abort or request.

use std::time::{Duration, Instant};

use chrono::Utc;
use sea_orm::EntityTrait;
use sluice_core::entities::{release, run};
use sluice_core::release::plan::{
    self, ReleaseStatus, StepName, StepStatus, Traffic, Verdict, analyse,
};
use sluice_core::store::releases::{self, Analysis, Progress, Smoke, SmokeState, Spec, StepState};

use crate::slot::{Slot, Want};

/// The controller lost its lease: it must stop at once, writing nothing more.
#[derive(Debug)]
pub(crate) struct LeaseLost;

/// How a step ended well.
enum Done {
    Succeeded(String),
    Skipped(String),
}

/// Why a release stops going forward.
enum Stop {
    Failed(String),
    Aborted,
    RollbackRequested,
}

/// The previous release (blue) and its instance count.
struct Blue {
    release: release::Model,
    spec: Spec,
}

impl Slot {
    /// Saves progress; a database that fails is retried until the lease would have expired
    /// (only a lease held by someone else stops the controller at once).
    async fn save(&self, release: &release::Model, progress: &Progress) -> Result<(), LeaseLost> {
        let deadline = Instant::now() + self.ctx.config.lease;
        let mut wait = Duration::from_millis(20);
        loop {
            match releases::save(&self.ctx.db, &self.ctx.config.holder, release, progress).await {
                Ok(true) => return Ok(()),
                Ok(false) => return Err(LeaseLost),
                Err(err) if Instant::now() < deadline => {
                    tracing::debug!(error = ?err, release = release.id, "saving a release failed; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_millis(500));
                }
                Err(err) => {
                    tracing::warn!(error = ?err, release = release.id, "saving a release failed");
                    return Err(LeaseLost);
                }
            }
        }
    }

    async fn blue(&self, release: &release::Model) -> Result<Option<Blue>, String> {
        let Some(id) = release.previous_release_id else {
            return Ok(None);
        };
        let model = self.reload(id).await?;
        let spec = releases::spec_of(&model).map_err(|e| e.to_string())?;
        Ok(Some(Blue {
            release: model,
            spec,
        }))
    }

    fn want(release: &release::Model, spec: &Spec, instances: u32, routed: u32) -> Want {
        Want {
            release: release.clone(),
            spec: spec.clone(),
            instances,
            routed,
        }
    }

    /// What a traffic split means in instances of each release.
    fn wants(
        release: &release::Model,
        spec: &Spec,
        blue: Option<&Blue>,
        traffic: &Traffic,
    ) -> Vec<Want> {
        let mut wants = Vec::new();
        if let Some(blue) = blue
            && traffic.blue.instances > 0
        {
            wants.push(Self::want(
                &blue.release,
                &blue.spec,
                traffic.blue.instances,
                traffic.blue.routed,
            ));
        }
        if traffic.green.instances > 0 {
            wants.push(Self::want(
                release,
                spec,
                traffic.green.instances,
                traffic.green.routed,
            ));
        }
        wants
    }

    /// Carries the release in progress to its end.
    pub(crate) async fn drive(&mut self, mut model: release::Model) -> Result<(), LeaseLost> {
        self.latest = self.latest.max(model.id);
        let env = self.env_name.clone();
        let spec = match releases::spec_of(&model) {
            Ok(spec) => spec,
            Err(err) => {
                let progress = Progress {
                    steps: releases::steps_of(&model),
                    traffic: releases::traffic_of(&model),
                    status: ReleaseStatus::Failed,
                    reason: Some(err.to_string()),
                    smoke: None,
                    live: None,
                };
                return self.save(&model, &progress).await;
            }
        };
        let blue = match self.blue(&model).await {
            Ok(blue) => blue,
            Err(reason) => {
                tracing::warn!(%reason, release = model.id, "the previous release cannot be read");
                None
            }
        };
        let n = spec.instances.max(1);
        let blue_n = blue.as_ref().map_or(n, |b| b.spec.instances.max(1));
        let mut progress = Progress {
            steps: releases::steps_of(&model),
            traffic: releases::traffic_of(&model),
            status: ReleaseStatus::InProgress,
            reason: None,
            smoke: releases::smoke_of(&model),
            live: None,
        };
        for k in 0..progress.steps.len() {
            if matches!(
                progress.steps[k].status,
                StepStatus::Succeeded | StepStatus::Skipped
            ) {
                continue;
            }
            let name = progress.steps[k].name;
            progress.steps[k].status = StepStatus::Running;
            progress.steps[k].started_at.get_or_insert_with(Utc::now);
            progress.steps[k].detail = None;
            self.save(&model, &progress).await?;
            let target = step_traffic(name, n, blue_n, blue.is_some());
            let outcome = {
                let db = self.ctx.db.clone();
                let id = model.id;
                let step = self.step(name, &model, &spec, blue.as_ref(), target, &mut progress);
                tokio::select! {
                    done = step => done,
                    stop = requested(db, id) => Err(stop),
                }
            };
            let finished = Some(Utc::now());
            match outcome {
                Ok(done) => {
                    let (status, detail) = match done {
                        Done::Succeeded(d) => (StepStatus::Succeeded, d),
                        Done::Skipped(d) => (StepStatus::Skipped, d),
                    };
                    progress.steps[k].status = status;
                    progress.steps[k].detail = Some(detail);
                    progress.steps[k].finished_at = finished;
                    progress.traffic = target;
                    self.ctx
                        .metrics
                        .release_steps
                        .with_label_values(&[env.as_str(), "succeeded"])
                        .inc();
                    self.save(&model, &progress).await?;
                }
                Err(stop) => {
                    progress.steps[k].status = StepStatus::Failed;
                    progress.steps[k].finished_at = finished;
                    progress.steps[k].detail = Some(match &stop {
                        Stop::Failed(reason) => reason.clone(),
                        Stop::Aborted => "aborted on request".into(),
                        Stop::RollbackRequested => "rolled back on request".into(),
                    });
                    self.ctx
                        .metrics
                        .release_steps
                        .with_label_values(&[env.as_str(), "failed"])
                        .inc();
                    self.save(&model, &progress).await?;
                    return self
                        .roll_back(&model, &spec, blue.as_ref(), progress, stop)
                        .await;
                }
            }
            model = self.reload(model.id).await.unwrap_or(model);
        }
        progress.status = ReleaseStatus::Succeeded;
        progress.live = Some(model.id);
        self.save(&model, &progress).await?;
        self.ctx
            .metrics
            .releases
            .with_label_values(&[env.as_str(), "succeeded"])
            .inc();
        tracing::info!(release = model.id, app = %model.app, env = %env, "release succeeded");
        Ok(())
    }

    async fn step(
        &mut self,
        name: StepName,
        model: &release::Model,
        spec: &Spec,
        blue: Option<&Blue>,
        target: Traffic,
        progress: &mut Progress,
    ) -> Result<Done, Stop> {
        let wants = Self::wants(model, spec, blue, &target);
        let ready = Some(self.ctx.config.ready_timeout);
        self.converge(&wants, ready).await.map_err(Stop::Failed)?;
        let v = model.version;
        match name {
            StepName::Start => Ok(Done::Succeeded(format!(
                "{} instances of version {v} ready and routed",
                target.green.routed
            ))),
            StepName::StartGreen => Ok(Done::Succeeded(format!(
                "a green instance of version {v} is ready, not routed"
            ))),
            StepName::Smoke => self.smoke(model, spec, progress).await,
            StepName::Shift => Ok(Done::Succeeded(format!(
                "green {} routed, blue {} routed: green takes {:.0}% of requests",
                target.green.routed,
                target.blue.routed,
                target.green_share() * 100.0
            ))),
            StepName::Monitor => self.monitor(model.id, spec, target).await,
            StepName::Complete => Ok(Done::Succeeded(format!(
                "green {} instances routed; blue stopped and kept for rollback",
                target.green.routed
            ))),
            StepName::Rollback => Ok(Done::Succeeded("rolled back".into())),
        }
    }

    /// Asks the `deploy` step to run the smoke test against the green instance, and waits.
    async fn smoke(
        &mut self,
        model: &release::Model,
        spec: &Spec,
        progress: &mut Progress,
    ) -> Result<Done, Stop> {
        if spec.smoke.is_none() {
            return Ok(Done::Skipped("no smoke test given".into()));
        }
        let green = self
            .green_url(model.id)
            .await
            .ok_or_else(|| Stop::Failed("the green instance is not ready".into()))?;
        progress.smoke = Some(Smoke {
            state: SmokeState::Requested,
            green_url: green.clone(),
            detail: None,
        });
        self.save(model, progress)
            .await
            .map_err(|_| Stop::Failed("lost the release's lease".into()))?;
        let deadline = Instant::now() + self.ctx.config.smoke_timeout;
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            self.refresh().await;
            let now = self.reload(model.id).await.map_err(Stop::Failed)?;
            match releases::smoke_of(&now) {
                Some(s) if s.green_url == green && s.state == SmokeState::Passed => {
                    progress.smoke = Some(s.clone());
                    return Ok(Done::Succeeded(format!(
                        "smoke test passed against {green}"
                    )));
                }
                Some(s) if s.green_url == green && s.state == SmokeState::Failed => {
                    progress.smoke = Some(s.clone());
                    return Err(Stop::Failed(format!(
                        "smoke test failed: {}",
                        s.detail.unwrap_or_default()
                    )));
                }
                _ => {}
            }
            if let Ok(Some(run)) = run::Entity::find_by_id(model.run_id)
                .one(&self.ctx.db)
                .await
                && run.finished_at.is_some()
            {
                return Err(Stop::Failed(
                    "the run that deploys this release ended before its smoke test answered".into(),
                ));
            }
            if Instant::now() >= deadline {
                return Err(Stop::Failed(format!(
                    "the smoke test did not answer within {}s",
                    self.ctx.config.smoke_timeout.as_secs()
                )));
            }
        }
    }

    /// Watches both colours for `monitorSeconds`: a green breach of the thresholds, or a
    /// green instance failing its health check, fails the step.
    async fn monitor(&mut self, id: i64, spec: &Spec, target: Traffic) -> Result<Done, Stop> {
        let since = Instant::now();
        let mut recorded = Instant::now();
        let until = since + Duration::from_secs(u64::from(spec.monitor_secs));
        let thresholds = self.ctx.config.thresholds;
        let mut unhealthy_for = 0u32;
        loop {
            // Traffic that passes through Sluice's router is judged; otherwise (Kubernetes)
            // only health checks decide.
            let green = self.counters("green", since).unwrap_or_default();
            let verdict = analyse(&green, &thresholds);
            if let Some(blue) = self.counters("blue", since)
                && (recorded.elapsed() >= Duration::from_secs(1)
                    || matches!(verdict, Verdict::Breach(_)))
            {
                recorded = Instant::now();
                let analysis = Analysis {
                    blue: blue.into(),
                    green: green.into(),
                };
                let _ = releases::set_analysis(&self.ctx.db, id, &analysis).await;
            }
            if let Verdict::Breach(reason) = verdict {
                return Err(Stop::Failed(format!("green: {reason}")));
            }
            let ready_green = self.routed_ready(self.latest);
            unhealthy_for = if ready_green < target.green.routed {
                unhealthy_for + 1
            } else {
                0
            };
            if unhealthy_for >= 12 {
                return Err(Stop::Failed(format!(
                    "green: {ready_green} of {} routed instances pass their health check",
                    target.green.routed
                )));
            }
            self.refresh().await;
            self.publish().await;
            if Instant::now() >= until {
                let blue = self.counters("blue", since).unwrap_or_default();
                let verdict = match analyse(&green, &thresholds) {
                    Verdict::TooFewRequests => format!(
                        "too few requests to judge ({} of {} needed): health checks passed",
                        green.requests, thresholds.min_requests
                    ),
                    _ => format!(
                        "green healthy: {} requests, {} failed, p99 {:.0} ms",
                        green.requests, green.failures, green.p99_ms
                    ),
                };
                return Ok(Done::Succeeded(format!(
                    "{verdict}; blue: {} requests, {} failed",
                    blue.requests, blue.failures
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Puts blue back (all of it, routed) and stops green; ends the release.
    async fn roll_back(
        &mut self,
        model: &release::Model,
        spec: &Spec,
        blue: Option<&Blue>,
        mut progress: Progress,
        stop: Stop,
    ) -> Result<(), LeaseLost> {
        let env = self.env_name.clone();
        let (status, reason) = match stop {
            Stop::Failed(reason) => (
                if blue.is_some() {
                    ReleaseStatus::RolledBack
                } else {
                    ReleaseStatus::Failed
                },
                reason,
            ),
            Stop::Aborted => (ReleaseStatus::Aborted, "aborted on request".to_owned()),
            Stop::RollbackRequested => (
                ReleaseStatus::RolledBack,
                "rolled back on request".to_owned(),
            ),
        };
        let mut step = StepState::pending(StepName::Rollback);
        step.status = StepStatus::Running;
        step.started_at = Some(Utc::now());
        progress.steps.push(step);
        self.save(model, &progress).await?;
        let k = progress.steps.len() - 1;
        let blue_n = blue.map_or(0, |b| b.spec.instances.max(1));
        let target = match blue {
            Some(_) => plan::rolled_back(blue_n),
            None => Traffic::default(),
        };
        let wants = Self::wants(model, spec, blue, &target);
        let done = self
            .converge(&wants, Some(self.ctx.config.ready_timeout))
            .await;
        progress.steps[k].finished_at = Some(Utc::now());
        match done {
            Ok(()) => {
                progress.steps[k].status = StepStatus::Succeeded;
                progress.steps[k].detail = Some(match blue {
                    Some(b) => format!(
                        "version {} back on {blue_n} instances, routed; green stopped",
                        b.release.version
                    ),
                    None => "green stopped; nothing ran before it".into(),
                });
                progress.traffic = target;
                progress.live = blue.map(|b| b.release.id);
            }
            Err(err) => {
                progress.steps[k].status = StepStatus::Failed;
                progress.steps[k].detail = Some(err.clone());
            }
        }
        progress.status = status;
        progress.reason = Some(reason.clone());
        self.save(model, &progress).await?;
        self.ctx
            .metrics
            .releases
            .with_label_values(&[env.as_str(), status.as_str()])
            .inc();
        tracing::warn!(release = model.id, app = %model.app, env = %env, %reason, "release {}", status.as_str());
        Ok(())
    }

    /// A rollback asked of the release that serves, after it succeeded: its previous version
    /// comes back on all its instances before this one's are taken out.
    pub(crate) async fn roll_back_live(&mut self, model: release::Model) -> Result<(), LeaseLost> {
        self.latest = self.latest.max(model.id);
        let spec = releases::spec_of(&model).ok();
        let blue = self.blue(&model).await.ok().flatten();
        let (Some(spec), Some(blue)) = (spec, blue) else {
            let _ = releases::clear_requests(&self.ctx.db, model.id).await;
            return Ok(());
        };
        let progress = Progress {
            steps: releases::steps_of(&model),
            traffic: releases::traffic_of(&model),
            status: ReleaseStatus::Succeeded,
            reason: None,
            smoke: releases::smoke_of(&model),
            live: None,
        };
        let result = self
            .roll_back(
                &model,
                &spec,
                Some(&blue),
                progress,
                Stop::RollbackRequested,
            )
            .await;
        let _ = releases::clear_requests(&self.ctx.db, model.id).await;
        result
    }

    /// Between releases: the serving release's instances, all routed.
    pub(crate) async fn keep_serving(&mut self, live: Option<release::Model>) {
        let wants = match &live {
            Some(model) => match releases::spec_of(model) {
                Ok(spec) => {
                    let n = spec.instances.max(1);
                    vec![Self::want(model, &spec, n, n)]
                }
                Err(_) => Vec::new(),
            },
            None => Vec::new(),
        };
        if let Err(err) = self.converge(&wants, None).await {
            tracing::warn!(error = %err, slot = self.model.id, "keeping the app running failed");
        }
    }
}

/// The traffic a step converges to before it acts.
fn step_traffic(name: StepName, n: u32, blue_n: u32, has_blue: bool) -> Traffic {
    let colour = |instances, routed| plan::Colour { instances, routed };
    let g = plan::shifted_green(n);
    let blue_shifted = n.saturating_sub(g).min(blue_n);
    match name {
        StepName::Start => Traffic {
            blue: colour(0, 0),
            green: colour(n, n),
        },
        StepName::StartGreen | StepName::Smoke => Traffic {
            blue: colour(blue_n, blue_n),
            green: colour(1, 0),
        },
        StepName::Shift | StepName::Monitor => Traffic {
            blue: colour(blue_shifted, blue_shifted),
            green: colour(g, g),
        },
        StepName::Complete => Traffic {
            blue: colour(0, 0),
            green: colour(n, n),
        },
        StepName::Rollback if has_blue => plan::rolled_back(blue_n),
        StepName::Rollback => Traffic::default(),
    }
}

/// Resolves when someone asks to abort or roll back the release.
async fn requested(db: sea_orm::DatabaseConnection, id: i64) -> Stop {
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Ok(model) = releases::get_by_id(&db, id).await {
            if model.abort_requested {
                return Stop::Aborted;
            }
            if model.rollback_requested {
                return Stop::RollbackRequested;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_starts_from_its_plan_traffic() {
        for (name, traffic) in plan::plan(6, true) {
            assert_eq!(step_traffic(name, 6, 6, true), traffic, "{name:?}");
        }
        for (name, traffic) in plan::plan(3, false) {
            assert_eq!(step_traffic(name, 3, 3, false), traffic, "{name:?}");
        }
        assert_eq!(
            step_traffic(StepName::Rollback, 6, 4, true),
            plan::rolled_back(4)
        );
    }
}
