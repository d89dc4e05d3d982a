//! The step supervisor: a small process between the worker and each build script, so that
//! nothing a script starts can outlive its step, its cancel, or the worker itself.
//!
//! The worker runs `sluice __supervise -- sh -e -c SCRIPT` with its standard input a pipe the
//! worker keeps open. The supervisor makes itself a *child subreaper*: every process the script
//! starts, even one that calls `setsid`, clears its environment or double-forks, is re-parented
//! to the supervisor when its parent dies instead of escaping to PID 1. It then waits:
//!
//! - when the script exits, whatever it left running is killed (as Jenkins does at the end of
//!   an `sh` step), and the supervisor exits with the script's status (`128 + signal` when the
//!   script was killed by one);
//! - on SIGTERM, SIGINT or SIGHUP (a cancel or timeout), or when its standard input reaches
//!   end-of-file (the worker died, even by SIGKILL, or dropped the step), every descendant gets
//!   SIGTERM, then SIGKILL a second later, and the supervisor exits with 143.
//!
//! It only ends once it has no child left, so the worker sees the step's output pipes close
//! as soon as it exits. Descendants are found through `/proc` (parent links), which needs no
//! privileges; leaving the subreaper's tree does.

use std::os::fd::AsFd;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// The first argument that makes the `sluice` binary a supervisor.
pub const ARG: &str = "__supervise";

/// How long descendants get between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(1);

/// How often a supervisor that is killing re-scans for descendants re-parented to it.
const RESCAN: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The script runs.
    Running,
    /// The script ended: kill what it left, then exit with its status.
    Draining,
    /// Stopped from outside: SIGTERM sent, SIGKILL at the deadline.
    Terminating { kill_at: Instant },
}

/// Runs `command` (program and arguments) under supervision; returns the exit code to leave
/// with. Call it before anything else in the process (no threads, no runtime).
pub fn main(command: &[std::ffi::OsString]) -> ExitCode {
    match supervise(command) {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            eprintln!("sluice supervisor: {err}");
            ExitCode::from(125)
        }
    }
}

fn supervise(command: &[std::ffi::OsString]) -> Result<u8, String> {
    let (program, args) = command
        .split_first()
        .ok_or("usage: sluice __supervise -- PROGRAM [ARG…]")?;
    nix::sys::prctl::set_child_subreaper(true)
        .map_err(|e| format!("cannot become a child subreaper: {e}"))?;
    let mut signals = SigSet::empty();
    for sig in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
    ] {
        signals.add(sig);
    }
    signals
        .thread_block()
        .map_err(|e| format!("cannot block signals: {e}"))?;
    let signal_fd = SignalFd::with_flags(&signals, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| format!("signalfd: {e}"))?;
    // The standard library resets the signal mask in the child, so the script sees signals
    // as usual.
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.to_string_lossy()))?;
    let child = Pid::from_raw(i32::try_from(child.id()).map_err(|e| e.to_string())?);

    let me = Pid::this();
    let mut phase = Phase::Running;
    let mut status: Option<u8> = None;
    let mut lifeline_open = true;
    loop {
        // Reap whatever ended; the script's status is the step's.
        let mut children_left = true;
        loop {
            match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => break,
                Ok(WaitStatus::Exited(pid, code)) if pid == child => {
                    status = Some(u8::try_from(code).unwrap_or(1));
                }
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child => {
                    status = Some(128u8.saturating_add(sig as u8));
                }
                Ok(_) | Err(Errno::EINTR) => {}
                Err(_) => {
                    children_left = false;
                    break;
                }
            }
        }
        if phase == Phase::Running && status.is_some() {
            phase = Phase::Draining;
        }
        if !children_left && phase != Phase::Running {
            return Ok(status.unwrap_or(143));
        }
        let now = Instant::now();
        match phase {
            Phase::Running => {}
            Phase::Draining => signal_tree(me, Signal::SIGKILL),
            Phase::Terminating { kill_at } if now >= kill_at => signal_tree(me, Signal::SIGKILL),
            Phase::Terminating { .. } => {}
        }
        let timeout = match phase {
            Phase::Running => PollTimeout::NONE,
            Phase::Draining => PollTimeout::try_from(RESCAN).unwrap_or(PollTimeout::ZERO),
            Phase::Terminating { kill_at } => {
                let wait = kill_at.saturating_duration_since(now).max(RESCAN);
                PollTimeout::try_from(wait).unwrap_or(PollTimeout::ZERO)
            }
        };
        let stdin = std::io::stdin();
        let mut fds = vec![PollFd::new(signal_fd.as_fd(), PollFlags::POLLIN)];
        if lifeline_open {
            fds.push(PollFd::new(stdin.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(err) => return Err(format!("poll: {err}")),
        }
        let signal_ready = fds[0].any().unwrap_or(false);
        let lifeline_ready = fds.get(1).is_some_and(|fd| fd.any().unwrap_or(false));
        drop(fds);
        let mut stop = false;
        if signal_ready {
            while let Ok(Some(info)) = signal_fd.read_signal() {
                let signo = i32::try_from(info.ssi_signo).unwrap_or(0);
                if signo != Signal::SIGCHLD as i32 {
                    stop = true;
                }
            }
        }
        if lifeline_ready {
            let mut buf = [0u8; 64];
            match nix::unistd::read(stdin.as_fd(), &mut buf) {
                Ok(0) | Err(_) => {
                    lifeline_open = false;
                    stop = true;
                }
                Ok(_) => {}
            }
        }
        if stop && !matches!(phase, Phase::Terminating { .. }) {
            signal_tree(me, Signal::SIGTERM);
            phase = Phase::Terminating {
                kill_at: Instant::now() + GRACE,
            };
        }
    }
}

/// Sends `sig` to every live descendant of `root`.
fn signal_tree(root: Pid, sig: Signal) {
    for pid in descendants(root) {
        let _ = kill(pid, sig);
    }
}

/// The processes below `root`, from the parent links in `/proc/*/stat`.
fn descendants(root: Pid) -> Vec<Pid> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut links: Vec<(i32, i32)> = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if let Some(ppid) = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|stat| parent_of(&stat))
        {
            links.push((pid, ppid));
        }
    }
    let mut found = vec![root.as_raw()];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(links.iter().filter(|(_, p)| *p == parent).map(|(c, _)| *c));
        i += 1;
    }
    found.into_iter().skip(1).map(Pid::from_raw).collect()
}

/// The parent pid in a `/proc/PID/stat` line (`pid (comm) state ppid …`; `comm` may hold
/// spaces and parentheses, so the fields start after the last `)`).
fn parent_of(stat: &str) -> Option<i32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parent_links_are_read_past_odd_command_names() {
        assert_eq!(parent_of("42 (sh) S 7 42 42 0 -1"), Some(7));
        assert_eq!(parent_of("42 (a) b (c)) R 9 1 1"), Some(9));
        assert_eq!(parent_of("garbage"), None);
    }

    #[test]
    fn this_process_descends_from_its_parent() {
        let me = Pid::this();
        let parent = nix::unistd::getppid();
        assert!(descendants(parent).contains(&me));
    }
}
