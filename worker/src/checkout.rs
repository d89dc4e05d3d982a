//! Checking out a run's commit with the system `git`, into the attempt's workspace.
//! Local repositories (`file://`, absolute paths) only when allowed; git never prompts.

use std::path::Path;
use std::process::Stdio;

use tokio::process::Command;
use tokio_util::sync::CancellationToken;

/// Why a checkout failed, in words for the run's reason.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error(
        "repository `{0}` is local; local repositories are allowed only with SLUICE_ALLOW_LOCAL_REPOS"
    )]
    LocalNotAllowed(String),
    #[error("repository URL `{0}` is not https://, ssh://, git@host:path or a local path")]
    Unsupported(String),
    #[error("git {step} failed: {stderr}")]
    Git { step: &'static str, stderr: String },
    #[error("checkout cancelled")]
    Cancelled,
}

fn is_local(url: &str) -> bool {
    url.starts_with("file://") || url.starts_with('/')
}

fn is_remote(url: &str) -> bool {
    url.starts_with("https://")
        || url.starts_with("http://")
        || url.starts_with("ssh://")
        || (url.starts_with("git@") && url.contains(':'))
}

async fn git(
    dir: Option<&Path>,
    args: &[&str],
    step: &'static str,
    cancel: &CancellationToken,
) -> Result<(), CheckoutError> {
    let mut cmd = Command::new("git");
    if let Some(dir) = dir {
        cmd.arg("-C").arg(dir);
    }
    cmd.args(args)
        .env_clear()
        .envs(crate::host_env::base())
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = cmd.spawn().map_err(|e| CheckoutError::Git {
        step,
        stderr: e.to_string(),
    })?;
    let output = tokio::select! {
        out = child.wait_with_output() => out.map_err(|e| CheckoutError::Git { step, stderr: e.to_string() })?,
        _ = cancel.cancelled() => return Err(CheckoutError::Cancelled),
    };
    if output.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(CheckoutError::Git {
            step,
            stderr: stderr.trim().chars().take(2000).collect(),
        })
    }
}

/// Clones `url` into `dest` and checks out `commit`, else the head of `git_ref`; true when
/// `git_ref` names a tag (a tag build) rather than a branch.
pub async fn checkout(
    url: &str,
    git_ref: &str,
    commit: Option<&str>,
    dest: &Path,
    allow_local: bool,
    cancel: &CancellationToken,
) -> Result<bool, CheckoutError> {
    if is_local(url) {
        if !allow_local {
            return Err(CheckoutError::LocalNotAllowed(url.to_owned()));
        }
    } else if !is_remote(url) {
        return Err(CheckoutError::Unsupported(url.to_owned()));
    }
    let dest_str = dest.to_string_lossy();
    git(
        None,
        &["clone", "--quiet", "--no-checkout", "--", url, &dest_str],
        "clone",
        cancel,
    )
    .await?;
    let tag = format!("refs/tags/{git_ref}");
    let is_tag = Command::new("git")
        .env_clear()
        .envs(crate::host_env::base())
        .arg("-C")
        .arg(dest)
        .args(["rev-parse", "--verify", "--quiet", &tag])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|s| s.success());
    let target = match commit {
        Some(sha) => sha.to_owned(),
        None if is_tag => tag,
        None => format!("origin/{git_ref}"),
    };
    git(
        Some(dest),
        &["checkout", "--quiet", "--detach", &target, "--"],
        "checkout",
        cancel,
    )
    .await?;
    Ok(is_tag)
}
