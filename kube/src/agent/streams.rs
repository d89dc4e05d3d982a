//! Reading an exec: its output streams cut into lines, and its status, so that a dropped
//! connection ends the reading instead of hanging it (kube-rs 5.0 closes an exec's output
//! readers only when the exec ends cleanly).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::AttachedProcess;
use sluice_core::logs::MAX_LINE_BYTES;
use sluice_worker::agent::Output;
use tokio::io::{AsyncRead, AsyncReadExt};

/// The exit status in an exec's `Status` (`-1` for a failure that is not one).
pub(super) fn exit_code(status: &Status) -> i32 {
    if status.status.as_deref() == Some("Success") {
        return 0;
    }
    status
        .details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .and_then(|causes| {
            causes
                .iter()
                .find(|c| c.reason.as_deref() == Some("ExitCode"))
                .and_then(|c| c.message.as_deref())
                .and_then(|m| m.trim().parse().ok())
        })
        // A failure that is not an exit status (the container is gone, ...).
        .unwrap_or(-1)
}

type Reader = Pin<Box<dyn AsyncRead + Send>>;

/// How long output may stay quiet after the exec ended before it counts as complete: a
/// connection that drops never closes the output streams (kube-rs shuts them only on a clean
/// end), so waiting for their end alone could hang.
const QUIET_AFTER_END: Duration = Duration::from_millis(200);
/// At most this much of an exec's stderr is kept, for its error message.
const STDERR_KEPT: usize = 64 * 1024;

/// An exec's output streams and its status, read so that a dropped connection ends them.
pub(super) struct Streams {
    stdout: Option<Reader>,
    stderr: Option<Reader>,
    status: Option<Pin<Box<dyn Future<Output = Option<Status>> + Send>>>,
    /// The status, once the exec ended (`None` inside: it ended without one).
    ended: Option<Option<Status>>,
    err: Vec<u8>,
}

impl Streams {
    pub(super) fn of(process: &mut AttachedProcess) -> Streams {
        Streams {
            stdout: process.stdout().map(|r| Box::pin(r) as Reader),
            stderr: process.stderr().map(|r| Box::pin(r) as Reader),
            status: process
                .take_status()
                .map(|f| Box::pin(f) as Pin<Box<dyn Future<Output = Option<Status>> + Send>>),
            ended: None,
            err: Vec::new(),
        }
    }

    /// The next chunk of stdout; `None` when it is over.
    pub(super) async fn next(&mut self) -> Option<Bytes> {
        let mut out = vec![0u8; 16 * 1024];
        let mut err = vec![0u8; 4096];
        loop {
            if self.stdout.is_none() && (self.stderr.is_none() || self.ended.is_some()) {
                return None;
            }
            let quiet = self.ended.is_some();
            tokio::select! {
                read = async { self.stdout.as_mut()?.read(&mut out).await.ok() }, if self.stdout.is_some() => {
                    match read {
                        Some(n) if n > 0 => return Some(Bytes::copy_from_slice(&out[..n])),
                        _ => self.stdout = None,
                    }
                }
                read = async { self.stderr.as_mut()?.read(&mut err).await.ok() }, if self.stderr.is_some() => {
                    match read {
                        Some(n) if n > 0 => {
                            let room = STDERR_KEPT.saturating_sub(self.err.len());
                            self.err.extend_from_slice(&err[..n.min(room)]);
                        }
                        _ => self.stderr = None,
                    }
                }
                status = async { self.status.as_mut()?.await }, if self.status.is_some() && self.ended.is_none() => {
                    self.ended = Some(status);
                    self.status = None;
                }
                _ = tokio::time::sleep(QUIET_AFTER_END), if quiet => return None,
            }
        }
    }

    /// Reads the rest of stdout into `sink`, then the status (`None`: the stream dropped)
    /// and the stderr kept.
    pub(super) async fn finish(mut self, mut sink: impl FnMut(&[u8])) -> (Option<Status>, String) {
        while let Some(chunk) = self.next().await {
            sink(&chunk);
        }
        let status = match self.ended.take() {
            Some(status) => status,
            None => match self.status.take() {
                Some(status) => status.await,
                None => None,
            },
        };
        (status, String::from_utf8_lossy(&self.err).trim().to_owned())
    }
}

/// Cuts output into lines for `output`, across reads (and re-attached streams).
pub(super) struct Lines<'a> {
    partial: Vec<u8>,
    output: Output<'a>,
}

impl<'a> Lines<'a> {
    pub(super) fn new(output: Output<'a>) -> Lines<'a> {
        Lines {
            partial: Vec::new(),
            output,
        }
    }

    pub(super) fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                self.flush();
            } else {
                self.partial.push(b);
                if self.partial.len() >= MAX_LINE_BYTES {
                    self.flush();
                }
            }
        }
    }

    fn flush(&mut self) {
        let line = String::from_utf8_lossy(&self.partial);
        (self.output)(line.trim_end_matches('\r'));
        self.partial.clear();
    }

    pub(super) fn finish(&mut self) {
        if !self.partial.is_empty() {
            self.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn output_is_cut_into_lines_across_reads() {
        let seen = Mutex::new(Vec::new());
        let output = |l: &str| seen.lock().unwrap().push(l.to_owned());
        let mut lines = Lines {
            partial: Vec::new(),
            output: &output,
        };
        lines.push(b"one\r\ntw");
        lines.push(b"o\nthree");
        lines.finish();
        assert_eq!(*seen.lock().unwrap(), ["one", "two", "three"]);
    }
}
