//! The STAND-IN's simulated kubelet (and scheduler): a task that watches the store for pods.
//! A new pod is scheduled, its images "pulled" and its containers "started" at once: its
//! status goes Pending → Running with the conditions, container statuses and Events a real
//! node reports, and it gets a directory on this machine that execs run in. The container's
//! own command is not run. Injected failures make the states Sluice must handle:
//!
//! - an image whose name contains `no-such-image`: waiting `ErrImagePull`, then
//!   `ImagePullBackOff`, with Warning Events `Failed` and `BackOff`;
//! - an image containing `bad-config`: waiting `CreateContainerConfigError`;
//! - `KubeStandIn::unschedulable(true)`, or a pod with the node selector key
//!   `sluice.test/unschedulable`: Pending, `PodScheduled` False `Unschedulable`;
//! - `spec.activeDeadlineSeconds` passing: Failed `DeadlineExceeded`, its execs killed.
//!
//! A deleted pod's execs are killed (their whole process groups) and its directory removed.
//! What happens to one pod is in `lifecycle.rs`; this file keeps what the kubelet knows.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::Cluster;
use super::lifecycle::PodHandle;
use super::store::Resource;

/// The kubelet's side of the stand-in: pods it runs, their execs and logs, and the failures
/// a test injected.
pub struct Kubelet {
    pods_dir: PathBuf,
    /// The `PATH` execs get: the test's.
    path_env: OsString,
    state: Mutex<State>,
    /// Signalled when a pod starts or stops, a log grows, or an injection changes.
    changed: watch::Sender<()>,
}

#[derive(Default)]
struct State {
    /// By the pod's store path.
    pods: HashMap<String, PodRuntime>,
    unschedulable: bool,
    drop_marks: Vec<String>,
    failing_deletes: usize,
    exec_count: usize,
    next_exec: u64,
    next_ip: u32,
}

/// A pod the kubelet knows.
struct PodRuntime {
    uid: String,
    name: String,
    /// Its directory, once started.
    dir: Option<PathBuf>,
    log: String,
    /// Stopped by its deadline (or deleted).
    ended: bool,
    execs: HashMap<u64, RunningExec>,
}

struct RunningExec {
    process_group: i32,
    stop: CancellationToken,
}

/// What a pod's container log looks like now.
pub enum LogState {
    Gone,
    /// Not started (or never will): the waiting reason.
    Waiting,
    Log {
        text: String,
        ended: bool,
    },
}

/// Kills a process group; one already gone is no error.
pub fn kill_group(process_group: i32) {
    let _ = killpg(Pid::from_raw(process_group), Signal::SIGKILL);
}

impl RunningExec {
    /// Cancels first, so the exec's stream sees the kill, not just its process exiting.
    fn kill(self) {
        self.stop.cancel();
        kill_group(self.process_group);
    }
}

/// Kills every process whose `HOME` is the pod's (the exec environment sets it): what a step
/// started in a session of its own outlives its exec's process group, but not its container.
fn kill_container_processes(dir: &std::path::Path) {
    let home = format!("HOME={}", dir.join("home").display());
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    for pid in procs
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
    {
        let inside = std::fs::read(format!("/proc/{pid}/environ"))
            .is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == home.as_bytes()));
        if inside {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

impl PodRuntime {
    /// Kills its execs and everything they started, as a container's end does; the pod is not
    /// running any more.
    fn stop(&mut self) {
        self.ended = true;
        for (_, exec) in self.execs.drain() {
            exec.kill();
        }
        if let Some(dir) = &self.dir {
            kill_container_processes(dir);
        }
    }
}

impl Kubelet {
    pub fn new(pods_dir: PathBuf) -> Kubelet {
        Kubelet {
            pods_dir,
            path_env: std::env::var_os("PATH").unwrap_or_default(),
            state: Mutex::new(State::default()),
            changed: watch::channel(()).0,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap()
    }

    fn notify(&self) {
        self.changed.send_replace(());
    }

    /// Wakes when a pod starts or stops, a log grows, or an injection changes.
    pub fn subscribe(&self) -> watch::Receiver<()> {
        self.changed.subscribe()
    }

    pub fn path_env(&self) -> &OsString {
        &self.path_env
    }

    pub fn set_unschedulable(&self, on: bool) {
        self.state().unschedulable = on;
        self.notify();
    }

    pub fn drop_exec_on(&self, mark: &str) {
        self.state().drop_marks.push(mark.to_owned());
    }

    pub fn fail_deletes(&self, n: usize) {
        self.state().failing_deletes += n;
    }

    /// Whether this pod delete is one to fail.
    pub fn fail_this_delete(&self) -> bool {
        let mut state = self.state();
        let fail = state.failing_deletes > 0;
        state.failing_deletes = state.failing_deletes.saturating_sub(1);
        fail
    }

    pub fn exec_count(&self) -> usize {
        self.state().exec_count
    }

    pub fn running_execs(&self, pod: &str) -> usize {
        self.state()
            .pods
            .values()
            .filter(|p| p.name == pod)
            .map(|p| p.execs.len())
            .sum()
    }

    /// The directory of a started pod that has not ended.
    pub fn pod_dir(&self, path: &str) -> Option<PathBuf> {
        self.state()
            .pods
            .get(path)
            .filter(|p| !p.ended)
            .and_then(|p| p.dir.clone())
    }

    pub fn append_log(&self, path: &str, line: &str) {
        if let Some(pod) = self.state().pods.get_mut(path).filter(|p| p.dir.is_some()) {
            pod.log.push_str(line);
            pod.log.push('\n');
        }
        self.notify();
    }

    /// The log of the pod at `path` from byte `from` on.
    pub fn read_log(&self, path: &str, from: usize) -> LogState {
        match self.state().pods.get(path) {
            None => LogState::Gone,
            Some(pod) if pod.dir.is_none() => LogState::Waiting,
            Some(pod) => LogState::Log {
                text: pod.log.get(from..).unwrap_or_default().to_owned(),
                ended: pod.ended,
            },
        }
    }

    /// Registers an exec's process group in a running pod; `None` when the pod is not
    /// running (any more). The token is cancelled when the exec is killed.
    pub fn exec_started(&self, path: &str, process_group: i32) -> Option<(u64, CancellationToken)> {
        let mut state = self.state();
        let state = &mut *state;
        let pod = state
            .pods
            .get_mut(path)
            .filter(|p| p.dir.is_some() && !p.ended)?;
        state.next_exec += 1;
        state.exec_count += 1;
        let stop = CancellationToken::new();
        pod.execs.insert(
            state.next_exec,
            RunningExec {
                process_group,
                stop: stop.clone(),
            },
        );
        Some((state.next_exec, stop))
    }

    pub fn exec_ended(&self, path: &str, id: u64) {
        if let Some(pod) = self.state().pods.get_mut(path) {
            pod.execs.remove(&id);
        }
    }

    /// Whether `output` (an exec's latest stdout) holds a mark to drop the exec on; the mark
    /// is used up.
    pub fn take_drop_mark(&self, output: &[u8]) -> bool {
        let mut state = self.state();
        let hit = state.drop_marks.iter().position(|mark| {
            output
                .windows(mark.len().max(1))
                .any(|w| w == mark.as_bytes())
        });
        hit.map(|i| state.drop_marks.remove(i)).is_some()
    }

    pub fn unschedulable(&self) -> bool {
        self.state().unschedulable
    }

    /// Gives a pod that is still there (same uid) its directory and container log; returns
    /// its IP, or `None` when it is gone.
    pub fn pod_started(&self, path: &str, uid: &str, containers: &[&str]) -> Option<String> {
        let name = path.rsplit('/').next().unwrap_or_default();
        let namespace = Resource::parse(path)?.namespace?;
        let dir = self.pods_dir.join(namespace).join(name);
        std::fs::create_dir_all(dir.join("home")).ok()?;
        let ip = {
            let mut state = self.state();
            let state = &mut *state;
            match state.pods.get_mut(path).filter(|p| p.uid == uid) {
                Some(pod) => {
                    for name in containers {
                        pod.log.push_str(&format!("container {name} started\n"));
                    }
                    pod.dir = Some(dir.clone());
                    state.next_ip += 1;
                    Some(format!("10.244.0.{}", state.next_ip % 250 + 2))
                }
                None => None,
            }
        };
        if ip.is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
        self.notify();
        ip
    }

    /// Stops a pod that is still there (same uid): its execs are killed; false when it is
    /// gone.
    pub fn pod_ended(&self, path: &str, uid: &str) -> bool {
        let ended = match self.state().pods.get_mut(path).filter(|p| p.uid == uid) {
            Some(pod) => {
                pod.stop();
                true
            }
            None => false,
        };
        self.notify();
        ended
    }

    /// Kills every exec of every pod: the stand-in is going away.
    pub fn stop_everything(&self) {
        for pod in self.state().pods.values_mut() {
            pod.stop();
        }
    }
}

/// The kubelet's loop: after every store change, starts the new pods and stops the deleted.
pub async fn run(cluster: Arc<Cluster>) {
    let mut changes = cluster.store().subscribe();
    // Dropped (and so aborted) with this task.
    let mut lifecycles = JoinSet::new();
    loop {
        changes.borrow_and_update();
        reconcile(&cluster, &mut lifecycles);
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            Some(_) = lifecycles.join_next(), if !lifecycles.is_empty() => {}
        }
    }
}

fn reconcile(cluster: &Arc<Cluster>, lifecycles: &mut JoinSet<()>) {
    let pods: HashMap<String, String> = cluster
        .store()
        .objects
        .iter()
        .filter(|(path, _)| {
            Resource::parse(path).is_some_and(|r| {
                r.api == "/api/v1"
                    && r.plural == "pods"
                    && r.name.is_some()
                    && r.subresource.is_none()
            })
        })
        .map(|(path, pod)| {
            let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
            (path.clone(), uid.to_owned())
        })
        .collect();
    let kubelet = &cluster.kubelet;
    let (new, gone) = {
        let mut state = kubelet.state();
        let gone: Vec<String> = state
            .pods
            .iter()
            .filter(|(path, pod)| pods.get(*path) != Some(&pod.uid))
            .map(|(path, _)| path.clone())
            .collect();
        let gone: Vec<PodRuntime> = gone.iter().filter_map(|p| state.pods.remove(p)).collect();
        let new: Vec<(String, String)> = pods
            .into_iter()
            .filter(|(path, _)| !state.pods.contains_key(path))
            .collect();
        for (path, uid) in &new {
            let name = path.rsplit('/').next().unwrap_or_default().to_owned();
            state.pods.insert(
                path.clone(),
                PodRuntime {
                    uid: uid.clone(),
                    name,
                    dir: None,
                    log: String::new(),
                    ended: false,
                    execs: HashMap::new(),
                },
            );
        }
        (new, gone)
    };
    let changed = !new.is_empty() || !gone.is_empty();
    for mut pod in gone {
        pod.stop();
        if let Some(dir) = &pod.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    if changed {
        kubelet.notify();
    }
    for (path, uid) in new {
        lifecycles.spawn(PodHandle::new(cluster.clone(), path, uid).lifecycle());
    }
}
