//! `sh` steps as process groups, and finding what a workspace left running.
//!
//! Each script runs `sh -e -c` in its own process group with a clean environment. Output is
//! read in blocks and cut into lines (a line longer than the log's limit is split), so a
//! script printing without newlines still streams. On cancel or timeout the group gets
//! SIGTERM, then SIGKILL a second later; when the script ends, whatever it left in its group
//! (`cmd &`) is killed too, as Jenkins does.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use sluice_core::logs::{MAX_LINE_BYTES, Origin};
use tokio::io::AsyncReadExt;
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

use super::{Env, Flow, Stop};
use crate::executor::RunEvents;

/// Runs `script`; its output goes to the log line by line.
pub(crate) async fn sh(
    script: &str,
    env: &Env,
    dir: &Path,
    origin: &Origin,
    events: &dyn RunEvents,
    cancel: &CancellationToken,
    line: u32,
) -> Flow {
    let mut cmd = Command::new("sh");
    cmd.arg("-e")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .env_clear()
        .envs(crate::host_env::base())
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(err) => return Err(Stop::failure(format!("line {line}: sh: {err}"))),
    };
    let pgid = child.id().and_then(|p| i32::try_from(p).ok());
    let out = child.stdout.take();
    let err = child.stderr.take();
    let waiter = async {
        let status = tokio::select! {
            status = child.wait() => Some(status),
            _ = cancel.cancelled() => None,
        };
        let status = match status {
            Some(status) => status.map(Some),
            None => {
                signal(pgid, Signal::SIGTERM);
                match tokio::time::timeout(Duration::from_secs(1), child.wait()).await {
                    Ok(_) => {}
                    Err(_) => {
                        signal(pgid, Signal::SIGKILL);
                        let _ = child.wait().await;
                    }
                }
                Ok(None)
            }
        };
        // Whatever the script left behind in its group goes too (this also ends the pumps,
        // which would otherwise wait on a background process holding stdout).
        signal(pgid, Signal::SIGKILL);
        status
    };
    let (status, (), ()) =
        tokio::join!(waiter, pump(out, origin, events), pump(err, origin, events));
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

fn signal(pgid: Option<i32>, sig: Signal) {
    if let Some(pgid) = pgid {
        let _ = killpg(Pid::from_raw(pgid), sig);
    }
}

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
