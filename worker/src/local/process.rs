//! `sh` steps under the step supervisor, and finding what a workspace left running.
//!
//! Each script runs `sh -e -c` with a clean environment below a supervisor
//! ([`crate::supervisor`]) that no process of the script can leave: when the script ends,
//! whatever it left running (`cmd &`, `setsid cmd &`) is killed, as Jenkins does; on cancel or
//! timeout everything gets SIGTERM, then SIGKILL a second later; and when the worker dies, the
//! supervisor sees its lifeline pipe close and does the same. Output is read in blocks and cut
//! into lines (a line longer than the log's limit is split), so a script printing without
//! newlines still streams.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use sluice_core::logs::{MAX_LINE_BYTES, Origin};
use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::{Env, Flow, Stop};
use crate::executor::RunEvents;

/// How long the output pumps may go on after the supervisor ended.
const PUMP_DRAIN: Duration = Duration::from_millis(500);

/// Runs `script` under the step supervisor; its output goes to the log line by line.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn sh(
    supervisor: &Path,
    script: &str,
    env: &Env,
    dir: &Path,
    origin: &Origin,
    events: &dyn RunEvents,
    cancel: &CancellationToken,
    line: u32,
) -> Flow {
    let mut cmd = Command::new(supervisor);
    cmd.arg(crate::supervisor::ARG)
        .arg("--")
        .arg("sh")
        .arg("-e")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env_clear()
        .envs(crate::host_env::base())
        .envs(env)
        // The lifeline: the supervisor kills the step's processes when this pipe closes, which
        // the kernel does when this process dies, however it dies.
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(err) => return Err(Stop::failure(format!("line {line}: sh: {err}"))),
    };
    let lifeline = child.stdin.take();
    let pid = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .map(Pid::from_raw);
    let out = child.stdout.take();
    let err = child.stderr.take();
    let ended = CancellationToken::new();
    let waiter = async {
        let status = tokio::select! {
            status = child.wait() => Some(status),
            _ = cancel.cancelled() => None,
        };
        let status = match status {
            Some(status) => status.map(Some),
            None => {
                // The supervisor gives the step's processes SIGTERM, then SIGKILL a second
                // later, and exits once none is left.
                if let Some(pid) = pid {
                    let _ = kill(pid, Signal::SIGTERM);
                }
                drop(lifeline);
                if tokio::time::timeout(STOP_WAIT, child.wait()).await.is_err() {
                    if let Some(pid) = pid {
                        let _ = killpg(pid, Signal::SIGKILL);
                    }
                    let _ = child.wait().await;
                }
                Ok(None)
            }
        };
        ended.cancel();
        status
    };
    let pumps = async {
        let both = async {
            tokio::join!(pump(out, origin, events), pump(err, origin, events));
        };
        // The pipes close when the supervisor has ended the step's last process; the deadline
        // only guards against a holder outside the tree, which the supervisor rules out.
        tokio::select! {
            _ = both => {}
            () = async {
                ended.cancelled().await;
                tokio::time::sleep(PUMP_DRAIN).await;
            } => {}
        }
    };
    let (status, ()) = tokio::join!(waiter, pumps);
    match status {
        Ok(Some(s)) if s.success() => Ok(()),
        Ok(Some(s)) => Err(Stop::failure(format!(
            "line {line}: script returned exit code {}",
            s.code()
                .map_or_else(|| "(killed by a signal)".to_owned(), |c| c.to_string())
        ))),
        Ok(None) => Err(Stop::aborted("stopped while a script was running")),
        Err(err) => Err(Stop::failure(format!("line {line}: sh: {err}"))),
    }
}

/// How long a cancelled step's supervisor may take to stop its processes (it gives them one
/// second) before it is killed itself.
const STOP_WAIT: Duration = Duration::from_millis(1500);

async fn pump<R: tokio::io::AsyncRead + Unpin>(
    reader: Option<R>,
    origin: &Origin,
    events: &dyn RunEvents,
) {
    let Some(mut reader) = reader else {
        return;
    };
    let mut pending: Vec<u8> = Vec::new();
    let mut block = vec![0u8; 16 * 1024];
    loop {
        let n = match reader.read(&mut block).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&block[..n]);
        while let Some(end) = pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            events.log(origin, &String::from_utf8_lossy(&line[..line.len() - 1]));
        }
        if pending.len() >= MAX_LINE_BYTES {
            events.log(origin, &String::from_utf8_lossy(&pending));
            pending.clear();
        }
    }
    if !pending.is_empty() {
        events.log(origin, &String::from_utf8_lossy(&pending));
    }
}

/// Kills every process whose environment says it runs in `workspace` (`WORKSPACE=` is set for
/// every step): what a worker that died mid-run left behind. Returns how many were killed.
pub fn reap(workspace: &Path) -> usize {
    let needle = format!("WORKSPACE={}", workspace.join("src").display());
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let me = std::process::id();
    let mut killed = 0;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if pid as u32 == me {
            continue;
        }
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        let matches = environ
            .split(|b| *b == 0)
            .any(|var| var == needle.as_bytes());
        if matches && nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok() {
            killed += 1;
        }
    }
    killed
}
