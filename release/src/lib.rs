//! Releases on the local runtime (API.md, "Releases"): every worker process runs a
//! [`Runtime`], which takes the lease of each app environment (slot) nobody holds and runs its
//! controller: the router on the slot's port, the instances as supervised processes, and the
//! releases the `deploy` step starts, carried through their plan step by step.
//!
//! The lease is what keeps one controller per slot: it is renewed every third of its length,
//! and a controller that fails to renew it stops everything at once. When a worker dies, its
//! instances die with it (the supervisor's lifeline) and another worker takes the lease over
//! once it expires: it starts the serving version again on the same port and resumes the
//! release in progress at the step that was running.

#![forbid(unsafe_code)]

mod controller;
pub mod instance;
pub mod kube_apps;
mod kube_objects;
pub mod router;
mod slot;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{DatabaseConnection, EntityTrait};
use sluice_core::entities::{app_slot, environment, org};
use sluice_core::metrics::Metrics;
use sluice_core::objects::Objects;
use sluice_core::release::plan::Thresholds;
use sluice_core::store::{environments, releases};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::kube_apps::{AppObjects, KubeApps};
use crate::router::Router;
use crate::slot::{Backend, Local, Slot};

/// How a release runtime behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// This process's name on the leases it holds.
    pub holder: String,
    /// Where routers listen (`SLUICE_ROUTER_BIND`).
    pub router_bind: IpAddr,
    /// Where instances get their directories.
    pub data_dir: PathBuf,
    /// A `sluice` binary, whose `__supervise` runs each instance.
    pub supervisor: PathBuf,
    pub thresholds: Thresholds,
    /// A slot's lease; a dead controller's slots are taken over after it.
    pub lease: Duration,
    /// How long instances get to become ready.
    pub ready_timeout: Duration,
    /// How long the smoke test may take.
    pub smoke_timeout: Duration,
    /// How long a stopping instance's requests in flight get to finish.
    pub drain: Duration,
    /// Run releases on Kubernetes (a Deployment per release in the tenant's namespace)
    /// instead of as local processes.
    pub kube: Option<kube_apps::KubeConfig>,
}

impl Config {
    pub fn new(holder: String, data_dir: PathBuf, supervisor: PathBuf) -> Config {
        Config {
            holder,
            router_bind: IpAddr::from([127, 0, 0, 1]),
            data_dir,
            supervisor,
            thresholds: Thresholds::default(),
            lease: Duration::from_secs(10),
            ready_timeout: Duration::from_secs(60),
            smoke_timeout: Duration::from_secs(600),
            drain: Duration::from_secs(30),
            kube: None,
        }
    }
}

/// What every controller of a process shares.
pub(crate) struct Ctx {
    pub db: DatabaseConnection,
    pub objects: Objects,
    pub metrics: Metrics,
    pub config: Config,
}

/// The release runtime of one process.
pub struct Runtime {
    ctx: Arc<Ctx>,
}

/// A started runtime.
pub struct Handle {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Handle {
    /// Stops cleanly: instances stop, leases are given up.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }

    /// Stops as a killed process would: nothing is saved and no lease is given up (its
    /// instances die with their lifelines). For tests of a controller dying mid-release.
    pub fn kill(self) {
        self.task.abort();
    }
}

impl Runtime {
    pub fn new(
        db: DatabaseConnection,
        objects: Objects,
        metrics: Metrics,
        config: Config,
    ) -> Runtime {
        Runtime {
            ctx: Arc::new(Ctx {
                db,
                objects,
                metrics,
                config,
            }),
        }
    }

    /// Runs until `shutdown` is cancelled.
    pub fn start(self, shutdown: CancellationToken) -> Handle {
        let stop = shutdown.child_token();
        let task = tokio::spawn(self.run(stop.clone()));
        Handle { stop, task }
    }

    async fn run(self, stop: CancellationToken) {
        let mut held: HashMap<i64, CancellationToken> = HashMap::new();
        let mut tasks: JoinSet<i64> = JoinSet::new();
        loop {
            while let Some(done) = tasks.try_join_next() {
                if let Ok(id) = done {
                    held.remove(&id);
                }
            }
            match environments::free_slots(&self.ctx.db, &self.ctx.config.holder).await {
                Ok(slots) => {
                    for slot in slots {
                        if held.contains_key(&slot.id) {
                            continue;
                        }
                        let taken = environments::take_lease(
                            &self.ctx.db,
                            slot.id,
                            &self.ctx.config.holder,
                            self.ctx.config.lease,
                        )
                        .await;
                        if matches!(taken, Ok(true)) {
                            let token = stop.child_token();
                            held.insert(slot.id, token.clone());
                            let ctx = self.ctx.clone();
                            let id = slot.id;
                            tasks.spawn(async move {
                                control(ctx, slot, token).await;
                                id
                            });
                        }
                    }
                }
                Err(err) => tracing::warn!(error = %err, "listing app environments failed"),
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
        while tasks.join_next().await.is_some() {}
    }
}

/// Holds one slot: renews its lease, serves it and drives its releases until `stop` or until
/// the lease is lost.
async fn control(ctx: Arc<Ctx>, model: app_slot::Model, stop: CancellationToken) {
    let lost = stop.child_token();
    // However this ends, even dropped mid-way (a killed runtime), the renewer and the router
    // stop with it.
    let _stop_all = lost.clone().drop_guard();
    let renewer = {
        let (ctx, lost, id) = (ctx.clone(), lost.clone(), model.id);
        tokio::spawn(async move {
            let mut renewed_at = std::time::Instant::now();
            loop {
                tokio::select! {
                    _ = lost.cancelled() => return,
                    _ = tokio::time::sleep(ctx.config.lease / 3) => {}
                }
                let renewed =
                    environments::take_lease(&ctx.db, id, &ctx.config.holder, ctx.config.lease)
                        .await;
                match renewed {
                    Ok(true) => renewed_at = std::time::Instant::now(),
                    // A database that fails is tried again while the lease still runs.
                    Err(err) if renewed_at.elapsed() < ctx.config.lease * 2 / 3 => {
                        tracing::debug!(slot = id, error = ?err, "renewing a lease failed; retrying");
                    }
                    _ => {
                        tracing::warn!(
                            slot = id,
                            "lost an app environment's lease: stopping its controller"
                        );
                        lost.cancel();
                        return;
                    }
                }
            }
        })
    };
    let env_name = environment::Entity::find_by_id(model.environment_id)
        .one(&ctx.db)
        .await
        .ok()
        .flatten()
        .map(|e| e.name)
        .unwrap_or_default();
    let backend = match &ctx.config.kube {
        Some(kube) => {
            let org = org::Entity::find_by_id(model.org_id)
                .one(&ctx.db)
                .await
                .ok()
                .flatten()
                .map(|o| o.slug)
                .unwrap_or_default();
            Backend::Kube(Box::new(KubeApps::new(
                kube.clone(),
                AppObjects {
                    namespace: sluice_kube::tenant::namespace_of(&org),
                    app: model.app.clone(),
                    env: env_name.clone(),
                    slot_id: model.id,
                },
            )))
        }
        None => {
            let Some(router) = bind(&ctx, &model, &env_name, &lost).await else {
                lost.cancel();
                let _ = renewer.await;
                return;
            };
            Backend::Local(Local::new(router))
        }
    };
    let mut slot = Slot::new(ctx.clone(), model, env_name, backend);
    tracing::info!(slot = slot.model.id, app = %slot.model.app, env = %slot.env_name, url = %slot.url, "controlling an app environment");
    loop {
        let pass = async {
            if let Err(err) = pass(&mut slot).await {
                tracing::debug!(error = ?err, "a controller pass stopped");
                return false;
            }
            true
        };
        let go_on = tokio::select! {
            go_on = pass => go_on,
            _ = lost.cancelled() => false,
        };
        if !go_on || lost.is_cancelled() {
            break;
        }
        tokio::select! {
            _ = lost.cancelled() => break,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
    slot.shut_down().await;
    lost.cancel();
    let _ = renewer.await;
    if stop.is_cancelled() {
        let _ = environments::drop_lease(&ctx.db, slot.model.id, &ctx.config.holder).await;
    }
}

/// Binds the slot's router on its port (kept across controllers), or a new one the first time.
async fn bind(
    ctx: &Ctx,
    model: &app_slot::Model,
    env: &str,
    lost: &CancellationToken,
) -> Option<Router> {
    let port = model
        .router_port
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or(0);
    let addr = SocketAddr::new(ctx.config.router_bind, port);
    loop {
        match Router::bind(addr, &model.app, env, ctx.metrics.clone(), lost.clone()).await {
            Ok(router) => return Some(router),
            Err(err) => {
                // The previous holder's listener may still be closing.
                tracing::warn!(error = %err, %addr, "cannot listen for an app environment yet");
            }
        }
        tokio::select! {
            _ = lost.cancelled() => return None,
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
    }
}

/// One look at the slot: drive the release in progress, or a rollback asked of the serving
/// one, or keep the serving one running.
async fn pass(slot: &mut Slot) -> Result<(), controller::LeaseLost> {
    let db = slot.ctx.db.clone();
    let model = match environments::slot(&db, slot.model.id).await {
        Ok(model) => model,
        Err(sluice_core::Error::NotFound) => return Err(controller::LeaseLost),
        // The database may answer on the next pass.
        Err(_) => return Ok(()),
    };
    slot.model.live_release_id = model.live_release_id;
    if let Ok(Some(release)) = releases::in_progress(&db, slot.model.id).await {
        return slot.drive(release).await;
    }
    let live = match model.live_release_id {
        Some(id) => releases::get_by_id(&db, id).await.ok(),
        None => None,
    };
    if let Some(live) = &live {
        // A controller that has driven nothing yet (it just took the slot over) learns which
        // release is the newest once: it may be a rolled-back one newer than the live one.
        if slot.latest == 0
            && let Ok(Some(newest)) = releases::newest(&db, slot.model.id).await
        {
            slot.latest = newest;
        }
        slot.latest = slot.latest.max(live.id);
        if live.rollback_requested {
            return slot.roll_back_live(live.clone()).await;
        }
    }
    slot.keep_serving(live).await;
    Ok(())
}
