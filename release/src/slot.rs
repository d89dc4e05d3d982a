//! One app in one environment as its controller holds it, on either runtime: locally, the
//! router on the slot's port and the instances of each release as supervised processes; on
//! Kubernetes, a Deployment per release and the live Service's endpoints (`kube_apps.rs`).
//! Either converges to what a plan step asks for, make before break: missing instances are
//! started and become ready, then routing changes, then instances no longer wanted drain and
//! stop.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use globset::GlobBuilder;
use object_store::ObjectStoreExt;
use sluice_core::entities::{app_slot, release};
use sluice_core::store::environments::InstanceView;
use sluice_core::store::releases::{self, Spec};
use sluice_core::store::{artifacts, environments};

use crate::Ctx;
use crate::instance::{Instance, Launch};
use crate::kube_apps::KubeApps;
use crate::router::Router;
use sluice_core::release::plan::Counters;

/// What one release should run.
#[derive(Debug, Clone)]
pub(crate) struct Want {
    pub release: release::Model,
    pub spec: Spec,
    pub instances: u32,
    pub routed: u32,
}

/// The local runtime's side of a slot.
pub(crate) struct Local {
    pub router: Router,
    pub instances: Vec<Instance>,
    seq: u64,
    files: HashMap<i64, PathBuf>,
}

impl Local {
    pub(crate) fn new(router: Router) -> Local {
        Local {
            router,
            instances: Vec::new(),
            seq: 0,
            files: HashMap::new(),
        }
    }
}

/// Where a slot's instances run.
pub(crate) enum Backend {
    Local(Local),
    Kube(Box<KubeApps>),
}

pub(crate) struct Slot {
    pub ctx: Arc<Ctx>,
    pub model: app_slot::Model,
    pub env_name: String,
    pub url: String,
    /// The newest release of the slot: its instances are green, older ones blue.
    pub latest: i64,
    backend: Backend,
    published: Vec<InstanceView>,
}

impl Slot {
    pub(crate) fn new(
        ctx: Arc<Ctx>,
        model: app_slot::Model,
        env_name: String,
        backend: Backend,
    ) -> Slot {
        let url = match &backend {
            Backend::Local(local) => {
                let port = local.router.local_addr().port();
                let host = match ctx.config.router_bind {
                    ip if ip.is_unspecified() => "127.0.0.1".to_owned(),
                    std::net::IpAddr::V6(ip) => format!("[{ip}]"),
                    ip => ip.to_string(),
                };
                format!("http://{host}:{port}")
            }
            Backend::Kube(kube) => kube.url(),
        };
        Slot {
            ctx,
            model,
            env_name,
            url,
            latest: 0,
            backend,
            published: Vec::new(),
        }
    }

    pub(crate) fn colour(&self, release_id: i64) -> &'static str {
        colour_of(release_id, self.latest)
    }

    /// Routes the routed instances that are ready now (the router balances over these only).
    pub(crate) async fn refresh(&mut self) {
        let latest = self.latest;
        match &mut self.backend {
            Backend::Local(local) => local.refresh_pool(latest),
            Backend::Kube(kube) => kube.refresh().await,
        }
    }

    /// A colour's counters since `since`, where requests pass through Sluice's router.
    pub(crate) fn counters(&self, colour: &str, since: std::time::Instant) -> Option<Counters> {
        match &self.backend {
            Backend::Local(local) => Some(local.router.counters(colour, since)),
            Backend::Kube(_) => None,
        }
    }

    /// Routed ready instances of releases from `from_release` on (green's, while monitoring).
    pub(crate) fn routed_ready(&self, from_release: i64) -> u32 {
        match &self.backend {
            Backend::Local(local) => local
                .instances
                .iter()
                .filter(|i| i.release_id >= from_release && i.routed && i.ready())
                .count() as u32,
            Backend::Kube(kube) => kube.routed_ready(from_release),
        }
    }

    /// Where the smoke test reaches the release's green instance.
    pub(crate) async fn green_url(&mut self, release_id: i64) -> Option<String> {
        match &mut self.backend {
            Backend::Local(local) => local
                .instances
                .iter()
                .find(|i| i.release_id == release_id && i.ready())
                .map(Instance::url),
            Backend::Kube(kube) => kube.green_url(release_id).await,
        }
    }

    /// Writes what runs for the API (when it changed).
    pub(crate) async fn publish(&mut self) {
        let views: Vec<InstanceView> = match &self.backend {
            Backend::Local(local) => local
                .instances
                .iter()
                .map(|i| InstanceView {
                    color: self.colour(i.release_id).to_owned(),
                    version: i.version,
                    ready: i.ready(),
                    routed: i.routed && i.ready(),
                })
                .collect(),
            Backend::Kube(kube) => kube.views(self.latest),
        };
        if views == self.published && self.model.url.as_deref() == Some(self.url.as_str()) {
            return;
        }
        let port = match &self.backend {
            Backend::Local(local) => local.router.local_addr().port(),
            Backend::Kube(_) => 0,
        };
        match environments::observed(&self.ctx.db, self.model.id, port, &self.url, &views).await {
            Ok(()) => {
                self.model.url = Some(self.url.clone());
                self.published = views;
            }
            Err(err) => {
                tracing::warn!(error = %err, slot = self.model.id, "recording instances failed")
            }
        }
    }

    /// Makes what runs match `want`. With `wait`, every wanted instance must be ready within
    /// it before anything is routed or stopped; without, only ready ones are routed (the
    /// steady state between releases, never blocking).
    pub(crate) async fn converge(
        &mut self,
        want: &[Want],
        wait: Option<Duration>,
    ) -> Result<(), String> {
        let place = Place {
            ctx: &self.ctx,
            slot_id: self.model.id,
            app: &self.model.app,
            env: &self.env_name,
            latest: self.latest,
        };
        let done = match &mut self.backend {
            Backend::Local(local) => local.converge(&place, want, wait).await,
            Backend::Kube(kube) => kube.converge(want, wait, place.latest).await,
        };
        self.publish().await;
        done
    }

    /// The release's own rows, reloaded (requests and the smoke answer change them).
    pub(crate) async fn reload(&self, id: i64) -> Result<release::Model, String> {
        releases::get_by_id(&self.ctx.db, id)
            .await
            .map_err(|e| format!("cannot read release {id}: {e}"))
    }

    /// Stops what this process runs (the controller is stopping or lost its lease). Pods on
    /// Kubernetes go on serving: the next controller takes them over.
    pub(crate) async fn shut_down(&mut self) {
        if let Backend::Local(local) = &mut self.backend {
            local.router.set_pool(Vec::new());
            let all = std::mem::take(&mut local.instances);
            futures_util::future::join_all(all.into_iter().map(Instance::stop)).await;
        }
    }
}

/// What the local runtime needs to know of its slot.
struct Place<'a> {
    ctx: &'a Ctx,
    slot_id: i64,
    app: &'a str,
    env: &'a str,
    latest: i64,
}

impl Place<'_> {
    fn release_dir(&self, release_id: i64) -> PathBuf {
        self.ctx
            .config
            .data_dir
            .join(format!("slot-{}", self.slot_id))
            .join(format!("release-{release_id}"))
    }
}

/// Instances of the newest release are green, older ones blue.
pub(crate) fn colour_of(release_id: i64, latest: i64) -> &'static str {
    if release_id >= latest {
        "green"
    } else {
        "blue"
    }
}

impl Local {
    /// Routes the routed instances that are ready now (the router balances over these only).
    fn refresh_pool(&self, latest: i64) {
        let pool = self
            .instances
            .iter()
            .filter(|i| i.routed && i.ready())
            .map(|i| i.backend(colour_of(i.release_id, latest)))
            .collect();
        self.router.set_pool(pool);
    }

    /// Lays the release's artifacts out once, in a directory its instances copy.
    async fn files(
        &mut self,
        place: &Place<'_>,
        release: &release::Model,
        spec: &Spec,
    ) -> Result<PathBuf, String> {
        if let Some(dir) = self.files.get(&release.id) {
            return Ok(dir.clone());
        }
        let dir = place.release_dir(release.id).join("files");
        let _ = tokio::fs::remove_dir_all(&dir).await;
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let pattern = spec.artifact.as_deref().unwrap_or("**");
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .map_err(|e| format!("artifact `{pattern}` is not a valid pattern: {e}"))?
            .compile_matcher();
        let archived = artifacts::list(&place.ctx.db, release.run_id)
            .await
            .map_err(|e| format!("cannot list the run's artifacts: {e}"))?;
        let mut count = 0;
        for file in archived.iter().filter(|a| glob.is_match(&a.path)) {
            let bytes = place
                .ctx
                .objects
                .get(&artifacts::object_path(release.run_id, &file.path))
                .await
                .map_err(|e| format!("cannot read artifact {}: {e}", file.path))?
                .bytes()
                .await
                .map_err(|e| format!("cannot read artifact {}: {e}", file.path))?;
            let target = dir.join(&file.path);
            if let Some(parent) = target.parent() {
                tokio::fs::create_dir_all(parent)
                    .await
                    .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
            }
            tokio::fs::write(&target, &bytes)
                .await
                .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
            count += 1;
        }
        if count == 0 && spec.artifact.is_some() {
            return Err(format!(
                "no artifact of run #{} matches `{pattern}` (archive them with archiveArtifacts first)",
                release.version
            ));
        }
        self.files.insert(release.id, dir.clone());
        Ok(dir)
    }

    async fn start(&mut self, place: &Place<'_>, want: &Want) -> Result<(), String> {
        let Some(command) = want.spec.command.clone() else {
            return Err(
                "this deploy names an image: it needs the Kubernetes runtime, and this install runs the local one"
                    .into(),
            );
        };
        let files = self.files(place, &want.release, &want.spec).await?;
        self.seq += 1;
        let dir = place
            .release_dir(want.release.id)
            .join(format!("instance-{}", self.seq));
        copy_tree(files, dir.clone())
            .await
            .map_err(|e| format!("cannot lay out an instance in {}: {e}", dir.display()))?;
        let launch = Launch {
            release_id: want.release.id,
            version: want.release.version,
            command,
            dir,
            health_path: want.spec.health_path.clone(),
            env: vec![
                ("SLUICE_APP".into(), place.app.to_owned()),
                ("SLUICE_ENVIRONMENT".into(), place.env.to_owned()),
                (
                    "SLUICE_COLOR".into(),
                    colour_of(want.release.id, place.latest).to_owned(),
                ),
                ("SLUICE_VERSION".into(), want.release.version.to_string()),
            ],
            supervisor: place.ctx.config.supervisor.clone(),
        };
        let instance =
            Instance::start(launch).map_err(|e| format!("cannot start an instance: {e}"))?;
        self.instances.push(instance);
        Ok(())
    }

    async fn converge(
        &mut self,
        place: &Place<'_>,
        want: &[Want],
        wait: Option<Duration>,
    ) -> Result<(), String> {
        for w in want {
            let have = self
                .instances
                .iter()
                .filter(|i| i.release_id == w.release.id)
                .count() as u32;
            for _ in have..w.instances {
                self.start(place, w).await?;
            }
        }
        if let Some(wait) = wait {
            self.wait_ready(place, want, wait).await?;
        }
        // Route: per release, the wanted number among the ready ones, routed ones first.
        let mut keep: Vec<bool> = vec![false; self.instances.len()];
        for w in want {
            let mut order: Vec<usize> = (0..self.instances.len())
                .filter(|&k| self.instances[k].release_id == w.release.id)
                .collect();
            order.sort_by_key(|&k| {
                let i = &self.instances[k];
                (!(i.routed && i.ready()), !i.ready())
            });
            let mut routed = 0;
            for (n, k) in order.into_iter().enumerate() {
                keep[k] = (n as u32) < w.instances;
                let route = keep[k] && routed < w.routed && self.instances[k].ready();
                routed += u32::from(route);
                self.instances[k].routed = route;
            }
        }
        for (k, instance) in self.instances.iter_mut().enumerate() {
            if !keep[k] {
                instance.routed = false;
            }
        }
        self.refresh_pool(place.latest);
        // Break after make: what is not kept drains and stops.
        let mut leaving = Vec::new();
        let mut staying = Vec::new();
        for (k, instance) in std::mem::take(&mut self.instances).into_iter().enumerate() {
            if keep[k] {
                staying.push(instance);
            } else {
                leaving.push(instance);
            }
        }
        self.instances = staying;
        let drain = place.ctx.config.drain;
        futures_util::future::join_all(leaving.into_iter().map(|i| i.drain_and_stop(drain))).await;
        let wanted: Vec<i64> = want.iter().map(|w| w.release.id).collect();
        self.files.retain(|id, _| wanted.contains(id));
        Ok(())
    }

    async fn wait_ready(
        &mut self,
        place: &Place<'_>,
        want: &[Want],
        wait: Duration,
    ) -> Result<(), String> {
        let started = Instant::now();
        let deadline = started + wait;
        loop {
            let mut missing = None;
            for w in want {
                let mine = self
                    .instances
                    .iter()
                    .filter(|i| i.release_id == w.release.id);
                let ready = mine.clone().filter(|i| i.ready()).count() as u32;
                let exits: u32 = mine.map(Instance::exits).sum();
                if ready < w.instances {
                    missing = Some((w, ready, exits));
                    break;
                }
            }
            let Some((w, ready, exits)) = missing else {
                return Ok(());
            };
            if exits >= 3 * w.instances.max(1) || Instant::now() >= deadline {
                let why = if exits > 0 {
                    format!("its instances exited {exits} times")
                } else {
                    format!("`{}` never answered 200", w.spec.health_path)
                };
                return Err(format!(
                    "version {} did not become ready: {ready} of {} instances ready after {}s, {why} (instance output: {})",
                    w.release.version,
                    w.instances,
                    started.elapsed().as_secs(),
                    place.release_dir(w.release.id).display()
                ));
            }
            self.refresh_pool(place.latest);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Copies `from` into `to` (created).
async fn copy_tree(from: PathBuf, to: PathBuf) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&to)?;
        let mut stack = vec![(from, to)];
        while let Some((src, dst)) = stack.pop() {
            for entry in std::fs::read_dir(&src)? {
                let entry = entry?;
                let target = dst.join(entry.file_name());
                if entry.file_type()?.is_dir() {
                    std::fs::create_dir_all(&target)?;
                    stack.push((entry.path(), target));
                } else {
                    std::fs::copy(entry.path(), &target)?;
                }
            }
        }
        Ok(())
    })
    .await
    .map_err(std::io::Error::other)?
}
