//! The worker's side of the step supervisor ([`crate::supervisor`]): starting a shell command
//! below it, and stopping it. Build steps and release instances both run this way.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, ChildStdin, Command};

/// `sluice __supervise -- sh ARGS…` (`supervisor` is a `sluice` binary) with a clean
/// environment (the host's base one; add more with `envs`), in its own process group, its
/// standard input the lifeline pipe: the supervisor kills the tree when that pipe closes,
/// which the kernel does when this process dies, however it dies. Standard output and error
/// are the caller's to set.
pub fn command<S: AsRef<OsStr>>(supervisor: &Path, sh_args: &[S]) -> Command {
    let mut cmd = Command::new(supervisor);
    cmd.arg(crate::supervisor::ARG)
        .arg("--")
        .arg("sh")
        .args(sh_args)
        .env_clear()
        .envs(crate::host_env::base())
        .stdin(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    cmd
}

/// The supervisor's process id, for [`stop`].
pub fn pid_of(child: &Child) -> Option<Pid> {
    child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .map(Pid::from_raw)
}

/// Stops a supervised command: SIGTERM to the supervisor (which gives the tree SIGTERM, then
/// SIGKILL a second later) and its lifeline closed; past `wait`, SIGKILL to its group.
pub async fn stop(
    child: &mut Child,
    pid: Option<Pid>,
    lifeline: Option<ChildStdin>,
    wait: Duration,
) {
    if let Some(pid) = pid {
        let _ = kill(pid, Signal::SIGTERM);
    }
    drop(lifeline);
    if tokio::time::timeout(wait, child.wait()).await.is_err() {
        if let Some(pid) = pid {
            let _ = killpg(pid, Signal::SIGKILL);
        }
        let _ = child.wait().await;
    }
}
