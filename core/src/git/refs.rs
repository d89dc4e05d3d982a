//! Looking refs up in a remote repository without cloning it (`git ls-remote`), under the
//! same address rules and with the same credential as a checkout: a run's commit when it is
//! created, the branches and tags the "Run with parameters" form offers, "Test connection".

use tokio_util::sync::CancellationToken;

use super::{CheckoutError, RepoAccess, git_with, reach};
use crate::git_auth::RepoCredential;

/// What a ref names in a remote repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub sha: String,
    pub is_tag: bool,
}

/// Looks `git_ref` up in the repository at `url` (`git ls-remote`, under the same address
/// rules and with the same credential as a checkout): the commit of the branch or tag of that
/// name, a tag's commit for an annotated tag; None when the repository has neither.
pub async fn ls_remote(
    url: &str,
    git_ref: &str,
    access: &RepoAccess,
    credential: Option<&RepoCredential>,
    cancel: &CancellationToken,
) -> Result<Option<Resolved>, CheckoutError> {
    Ok(probe(url, git_ref, access, credential, cancel).await?.found)
}

/// What [`probe`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub found: Option<Resolved>,
    /// SSH host keys met for the first time (the credential pinned none), to pin.
    pub learned_host_keys: Option<String>,
}

/// [`ls_remote`], also telling which SSH host keys the connection learned.
pub async fn probe(
    url: &str,
    git_ref: &str,
    access: &RepoAccess,
    credential: Option<&RepoCredential>,
    cancel: &CancellationToken,
) -> Result<Probe, CheckoutError> {
    let (config, auth) = reach(url, access, credential).await?;
    let source = url.strip_prefix("file://").unwrap_or(url);
    let mut args: Vec<&str> = Vec::new();
    for setting in &config {
        args.extend(["-c", setting]);
    }
    let (branch, tag) = if git_ref.starts_with("refs/") {
        (git_ref.to_owned(), String::new())
    } else {
        (
            format!("refs/heads/{git_ref}"),
            format!("refs/tags/{git_ref}"),
        )
    };
    // An annotated tag's commit is its peeled `^{}` entry, listed only when asked for.
    let peeled = format!("{tag}^{{}}");
    args.extend(["ls-remote", "--", source, &branch]);
    if !tag.is_empty() {
        args.extend([tag.as_str(), peeled.as_str()]);
    }
    let out = git_with(None, &args, "ls-remote", &auth, cancel).await?;
    Ok(Probe {
        found: pick_resolved(&out, &branch, &tag),
        learned_host_keys: auth.learned_host_keys(),
    })
}

/// A repository's branches and tags by name (`git ls-remote --heads --tags`, under the same
/// address rules and with the same credential as a checkout), each sorted, at most `max` of
/// each.
pub async fn list_refs(
    url: &str,
    access: &RepoAccess,
    credential: Option<&RepoCredential>,
    max: usize,
    cancel: &CancellationToken,
) -> Result<(Vec<String>, Vec<String>), CheckoutError> {
    let (config, auth) = reach(url, access, credential).await?;
    let source = url.strip_prefix("file://").unwrap_or(url);
    let mut args: Vec<&str> = Vec::new();
    for setting in &config {
        args.extend(["-c", setting]);
    }
    args.extend(["ls-remote", "--heads", "--tags", "--", source]);
    let out = git_with(None, &args, "ls-remote", &auth, cancel).await?;
    let (mut branches, mut tags) = (Vec::new(), Vec::new());
    for name in out
        .lines()
        .filter_map(|l| l.split_once('\t').map(|(_, n)| n))
    {
        if let Some(branch) = name.strip_prefix("refs/heads/") {
            branches.push(branch.to_owned());
        } else if let Some(tag) = name.strip_prefix("refs/tags/")
            && !tag.ends_with("^{}")
        {
            tags.push(tag.to_owned());
        }
    }
    branches.sort();
    tags.sort();
    branches.truncate(max);
    tags.truncate(max);
    Ok((branches, tags))
}

/// From `ls-remote` output: the branch first, then the peeled tag, then the tag itself.
fn pick_resolved(out: &str, branch: &str, tag: &str) -> Option<Resolved> {
    let mut found: Option<Resolved> = None;
    for line in out.lines() {
        let Some((sha, name)) = line.split_once('\t') else {
            continue;
        };
        let sha = sha.trim().to_ascii_lowercase();
        if name == branch {
            return Some(Resolved { sha, is_tag: false });
        }
        let peeled = name.strip_suffix("^{}") == Some(tag);
        if !tag.is_empty() && (peeled || (name == tag && found.is_none())) {
            found = Some(Resolved { sha, is_tag: true });
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::tests::{local, sample_repo};

    #[tokio::test]
    async fn refs_resolve_to_their_commits_before_a_checkout() {
        let (repo, shas) = sample_repo();
        let url = format!("file://{}", repo.path().display());
        let cancel = CancellationToken::new();
        let get = |r: &'static str| {
            let url = url.clone();
            let cancel = cancel.clone();
            async move { ls_remote(&url, r, &local(), None, &cancel).await.unwrap() }
        };
        assert_eq!(
            get("main").await,
            Some(Resolved {
                sha: shas[1].clone(),
                is_tag: false
            })
        );
        assert_eq!(
            get("feature/x").await,
            Some(Resolved {
                sha: shas[0].clone(),
                is_tag: false
            })
        );
        // The annotated tag resolves to its commit, not the tag object.
        assert_eq!(
            get("v1").await,
            Some(Resolved {
                sha: shas[0].clone(),
                is_tag: true
            })
        );
        assert_eq!(
            get("refs/pull/7/head").await,
            Some(Resolved {
                sha: shas[2].clone(),
                is_tag: false
            })
        );
        assert_eq!(get("x").await, None);
        // The same address rules as a checkout.
        let refused = ls_remote(&url, "main", &RepoAccess::default(), None, &cancel).await;
        assert!(
            matches!(refused, Err(CheckoutError::LocalNotAllowed(_))),
            "{refused:?}"
        );
    }
}
