//! Per-project mirrors: a bare copy of a project's remote repository, kept on the worker's
//! disk next to the workspaces. Before each checkout the mirror fetches what is new (branches,
//! tags and the ref the run builds), and the workspace is cloned from it locally (hard links):
//! only new objects cross the network, never the whole repository.
//!
//! A mirror belongs to one project and one URL (the name says which), so one tenant's fetched
//! code never serves another's project, and a run never builds from a mirror its own fetch
//! did not just bring up to date: a failed fetch (revoked credentials, a deleted repository)
//! fails the checkout. A lock file serialises the fetch and the workspace's clone between runs
//! and worker processes sharing the directory.

use std::fs::File;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::{CheckoutError, as_strs, git_with, with_config};
use crate::git_auth::GitAuth;

/// Where project `project_id`'s mirror of `url` lives under `root`.
pub fn path(root: &Path, project_id: i64, url: &str) -> PathBuf {
    let digest = Sha256::digest(url.as_bytes());
    let short: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    root.join(format!("p{project_id}-{short}.git"))
}

/// The mirror's lock, held until dropped.
pub(super) struct Locked {
    _file: File,
}

/// Takes `mirror`'s lock, waiting for another run holding it.
pub(super) async fn lock(
    mirror: &Path,
    cancel: &CancellationToken,
) -> Result<Locked, CheckoutError> {
    let failed = |e: std::io::Error| CheckoutError::Git {
        step: "mirror lock",
        stderr: e.to_string(),
    };
    if let Some(parent) = mirror.parent() {
        tokio::fs::create_dir_all(parent).await.map_err(failed)?;
    }
    let lock_path = mirror.with_extension("lock");
    let waiting = tokio::task::spawn_blocking(move || {
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)?;
        file.lock()?;
        Ok::<_, std::io::Error>(file)
    });
    tokio::select! {
        got = waiting => match got {
            Ok(Ok(file)) => Ok(Locked { _file: file }),
            Ok(Err(err)) => Err(failed(err)),
            Err(err) => Err(failed(std::io::Error::other(err))),
        },
        _ = cancel.cancelled() => Err(CheckoutError::Cancelled),
    }
}

/// Brings `mirror` up to date with `url`: its branches and tags (pruned), and `extra`, a full
/// ref name the clone leaves out (a change request's). Created by a bare clone on first use.
/// The caller holds the lock.
pub(super) async fn update(
    mirror: &Path,
    url: &str,
    extra: Option<&str>,
    config: &[String],
    auth: &GitAuth,
    cancel: &CancellationToken,
) -> Result<(), CheckoutError> {
    let fresh = !tokio::fs::try_exists(mirror.join("HEAD"))
        .await
        .unwrap_or(false);
    if fresh {
        // Cloned beside it, then renamed: a clone cut short never passes for a mirror.
        let partial = mirror.with_extension("partial");
        let _ = tokio::fs::remove_dir_all(&partial).await;
        let partial_str = partial.to_string_lossy().into_owned();
        let args = with_config(
            config,
            &["clone", "--quiet", "--bare", "--", url, &partial_str],
        );
        git_with(None, &as_strs(&args), "clone", auth, cancel).await?;
        tokio::fs::rename(&partial, mirror)
            .await
            .map_err(|e| CheckoutError::Git {
                step: "clone",
                stderr: e.to_string(),
            })?;
        let Some(extra) = extra else {
            return Ok(());
        };
        let refspec = format!("+{extra}:{extra}");
        let args = with_config(config, &["fetch", "--quiet", "--", url, &refspec]);
        return git_with(Some(mirror), &as_strs(&args), "fetch", auth, cancel)
            .await
            .map(drop);
    }
    let extra_spec = extra.map(|r| format!("+{r}:{r}"));
    let mut fetch = vec![
        "fetch",
        "--quiet",
        "--prune",
        "--no-tags",
        "--",
        url,
        "+refs/heads/*:refs/heads/*",
        "+refs/tags/*:refs/tags/*",
    ];
    if let Some(spec) = &extra_spec {
        fetch.push(spec);
    }
    let args = with_config(config, &fetch);
    git_with(Some(mirror), &as_strs(&args), "fetch", auth, cancel)
        .await
        .map(drop)
}

/// Points the workspace clone's `origin` back at the real repository (it was cloned from the
/// mirror), so a step's `git fetch` or `git push` reaches the repository, not the mirror.
pub(super) async fn point_origin_at(dest: &Path, url: &str) -> std::io::Result<()> {
    let config_path = dest.join(".git").join("config");
    let config = tokio::fs::read_to_string(&config_path).await?;
    let quoted = format!("\"{}\"", url.replace('\\', "\\\\").replace('"', "\\\""));
    let mut in_origin = false;
    let mut out = String::with_capacity(config.len() + url.len());
    for line in config.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            in_origin = trimmed == "[remote \"origin\"]";
        }
        if in_origin && trimmed.starts_with("url =") {
            out.push_str(&format!("\turl = {quoted}\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    tokio::fs::write(&config_path, out).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mirror_is_named_by_project_and_url() {
        let root = Path::new("/w/mirrors");
        let a = path(root, 7, "https://git.example.com/a.git");
        assert!(a.starts_with(root));
        assert!(a.to_string_lossy().ends_with(".git"));
        assert!(a.file_name().unwrap().to_string_lossy().starts_with("p7-"));
        assert_ne!(
            a,
            path(root, 8, "https://git.example.com/a.git"),
            "per project"
        );
        assert_ne!(a, path(root, 7, "https://git.example.com/b.git"), "per URL");
    }
}
