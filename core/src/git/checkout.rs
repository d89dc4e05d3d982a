//! Checking out a run's commit into the attempt's workspace: from the project's mirror (a
//! remote repository), or by path (a local one), in as few git processes as the ref allows;
//! and describing the commit checked out.

use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use super::{
    CheckoutError, RepoAccess, as_strs, git, git_with, is_local, mirror, reach, with_config,
};
use crate::git_auth::{GitAuth, RepoCredential};

/// What ref `name` points at in the repository whose git directory is `git_dir`, read from
/// its ref files (no git process): None when absent or symbolic.
async fn read_ref(git_dir: &Path, name: &str) -> Option<String> {
    let is_sha = |s: &str| s.len() >= 40 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if let Ok(loose) = tokio::fs::read_to_string(git_dir.join(name)).await {
        let loose = loose.trim();
        return is_sha(loose).then(|| loose.to_owned());
    }
    let packed = tokio::fs::read_to_string(git_dir.join("packed-refs"))
        .await
        .ok()?;
    packed.lines().find_map(|l| {
        let (sha, r) = l.split_once(' ')?;
        (r == name && is_sha(sha)).then(|| sha.to_owned())
    })
}

/// The git directory of the local repository at `path` (a work tree's `.git`, or a bare one).
async fn git_dir_of(path: &Path) -> PathBuf {
    let dot_git = path.join(".git");
    if tokio::fs::try_exists(&dot_git).await.unwrap_or(false) {
        dot_git
    } else {
        path.to_owned()
    }
}

/// What a checkout found out besides the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedOut {
    /// `git_ref` names a tag (a tag build) rather than a branch.
    pub is_tag: bool,
    /// SSH host keys met for the first time (the credential pinned none), to pin.
    pub learned_host_keys: Option<String>,
}

/// Clones `url` into `dest` and checks out `commit`, else the head of `git_ref`. A full ref name (`refs/pull/7/head`,
/// `refs/merge-requests/3/head`: a change request) is fetched by name, as clones leave it out.
pub async fn checkout(
    url: &str,
    git_ref: &str,
    commit: Option<&str>,
    dest: &Path,
    access: &RepoAccess,
    credential: Option<&RepoCredential>,
    cancel: &CancellationToken,
) -> Result<CheckedOut, CheckoutError> {
    let (config, auth) = reach(url, access, credential).await?;
    let change_ref = git_ref.starts_with("refs/").then_some(git_ref);
    // A remote repository is fetched into the project's mirror and cloned from there; a local
    // one is cloned by path, not `file://`: git then uses hard links, without the pack
    // protocol (about twice as fast).
    let mirror = access.mirror.as_deref().filter(|_| !is_local(url));
    let _locked = match mirror {
        Some(m) => {
            let locked = mirror::lock(m, cancel).await?;
            mirror::update(m, url, change_ref, &config, &auth, cancel).await?;
            Some(locked)
        }
        None => None,
    };
    let source = match mirror {
        Some(m) => m.to_string_lossy().into_owned(),
        None => url.strip_prefix("file://").unwrap_or(url).to_owned(),
    };
    // What the source's refs say, when it is on this machine.
    let source_dir = match mirror {
        Some(m) => Some(m.to_owned()),
        None if is_local(url) => Some(git_dir_of(Path::new(&source)).await),
        None => None,
    };
    // Cloning from the mirror is local: no settings, no credentials.
    let no_auth = GitAuth::default();
    let (config, clone_auth): (&[String], &GitAuth) = match mirror {
        Some(_) => (&[], &no_auth),
        None => (&config, &auth),
    };
    let clone = |extra: &'static [&'static str]| {
        clone_into(&source, dest, extra, config, clone_auth, cancel)
    };
    let is_tag = if let Some(change) = change_ref {
        clone(&["--no-checkout"]).await?;
        let target = match (mirror, commit) {
            (Some(_), Some(sha)) => sha.to_owned(),
            // The mirror fetched the ref (and the clone has every object of the mirror).
            (Some(m), None) => read_ref(m, change)
                .await
                .ok_or_else(|| CheckoutError::Git {
                    step: "fetch",
                    stderr: format!("the repository has no ref {change}"),
                })?,
            // A clone leaves the ref out: fetched by name.
            (None, _) => {
                let args = with_config(config, &["fetch", "--quiet", "origin", "--", change]);
                git_with(Some(dest), &as_strs(&args), "fetch", clone_auth, cancel).await?;
                commit.unwrap_or("FETCH_HEAD").to_owned()
            }
        };
        checkout_detached(dest, &target, cancel).await?;
        false
    } else {
        let tag = format!("refs/tags/{git_ref}");
        let branch = format!("refs/heads/{git_ref}");
        // One process when the source's branch or tag is what the run builds: the clone
        // checks it out itself.
        // (Only for a plain ref name: its ref file is read by path.)
        let plain = git_ref
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..");
        let at_ref = match &source_dir {
            Some(dir) if plain => {
                let (b, t) = (read_ref(dir, &branch).await, read_ref(dir, &tag).await);
                match (b, t) {
                    (Some(sha), None) => Some((sha, false)),
                    (None, Some(sha)) => Some((sha, true)),
                    _ => None,
                }
            }
            _ => None,
        };
        let fast = at_ref
            .as_ref()
            .is_some_and(|(sha, _)| commit.is_none_or(|c| c.eq_ignore_ascii_case(sha)));
        if let (true, Some((_, tagged))) = (fast, &at_ref) {
            clone_into(
                &source,
                dest,
                &["--branch", git_ref],
                config,
                clone_auth,
                cancel,
            )
            .await?;
            if !tagged {
                detach_head(dest, &branch).await?;
            }
            *tagged
        } else {
            clone(&["--no-checkout"]).await?;
            let is_tag = read_ref(&dest.join(".git"), &tag).await.is_some();
            let target = match commit {
                Some(sha) => sha.to_owned(),
                None if is_tag => tag,
                None => format!("origin/{git_ref}"),
            };
            checkout_detached(dest, &target, cancel).await?;
            is_tag
        }
    };
    if mirror.is_some() {
        mirror::point_origin_at(dest, url)
            .await
            .map_err(|e| CheckoutError::Git {
                step: "clone",
                stderr: e.to_string(),
            })?;
    }
    Ok(CheckedOut {
        is_tag,
        learned_host_keys: auth.learned_host_keys(),
    })
}

/// `git clone --quiet <extra…> -- source dest`.
async fn clone_into(
    source: &str,
    dest: &Path,
    extra: &[&str],
    config: &[String],
    auth: &GitAuth,
    cancel: &CancellationToken,
) -> Result<(), CheckoutError> {
    let dest = dest.to_string_lossy();
    let mut args = vec!["clone", "--quiet"];
    args.extend_from_slice(extra);
    args.extend(["--", source, &dest]);
    let args = with_config(config, &args);
    git_with(None, &as_strs(&args), "clone", auth, cancel)
        .await
        .map(drop)
}

/// `git checkout --detach target` in the clone in `dest`.
async fn checkout_detached(
    dest: &Path,
    target: &str,
    cancel: &CancellationToken,
) -> Result<(), CheckoutError> {
    git(
        Some(dest),
        &["checkout", "--quiet", "--detach", target, "--"],
        "checkout",
        cancel,
    )
    .await
    .map(drop)
}

/// Leaves the clone in `dest` on a detached HEAD at its branch `branch`'s commit, as a
/// checkout of that commit would (written, not a git process).
async fn detach_head(dest: &Path, branch: &str) -> Result<(), CheckoutError> {
    let git_dir = dest.join(".git");
    let failed = |stderr: String| CheckoutError::Git {
        step: "checkout",
        stderr,
    };
    let sha = read_ref(&git_dir, branch)
        .await
        .ok_or_else(|| failed(format!("the clone has no {branch}")))?;
    tokio::fs::write(git_dir.join("HEAD"), format!("{sha}\n"))
        .await
        .map_err(|e| failed(e.to_string()))
}

/// A checked-out commit as the run records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    pub sha: String,
    /// `Name <email>`.
    pub author: String,
    /// The whole message, trimmed.
    pub message: String,
    /// The files the commit changed (all of them for a first commit; none for a merge).
    pub files: Vec<String>,
}

/// The commit checked out in `dir`, and the files it changed (one git process).
pub async fn head_commit(
    dir: &Path,
    cancel: &CancellationToken,
) -> Result<CommitInfo, CheckoutError> {
    let out = git(
        Some(dir),
        &[
            "-c",
            "core.quotePath=false",
            "log",
            "-1",
            "--no-color",
            "--name-only",
            "--format=%H%n%an <%ae>%n%B%x00",
        ],
        "log",
        cancel,
    )
    .await?;
    let (head, files) = out.split_once('\0').unwrap_or((&out, ""));
    let mut lines = head.splitn(3, '\n');
    let sha = lines.next().unwrap_or_default().trim().to_owned();
    let author = lines.next().unwrap_or_default().trim().to_owned();
    let message = lines.next().unwrap_or_default().trim().to_owned();
    Ok(CommitInfo {
        sha,
        author,
        message,
        files: files
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::super::mirror;
    use super::super::tests::{local, sample_repo};
    use super::*;

    fn git_in(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .env("GIT_AUTHOR_NAME", "Ada")
            .env("GIT_AUTHOR_EMAIL", "ada@example.com")
            .env("GIT_COMMITTER_NAME", "Ada")
            .env("GIT_COMMITTER_EMAIL", "ada@example.com")
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    #[tokio::test]
    async fn a_branch_head_is_checked_out_by_the_clone_itself_and_left_detached() {
        let (repo, shas) = sample_repo();
        let url = repo.path().display().to_string();
        let cancel = CancellationToken::new();
        let root = tempfile::tempdir().unwrap();
        let at = |name: &str| root.path().join(name);

        // The head of main, by commit and by name: detached at it, the tree clean.
        for (name, commit) in [("by-sha", Some(shas[1].as_str())), ("by-name", None)] {
            let done = checkout(&url, "main", commit, &at(name), &local(), None, &cancel)
                .await
                .unwrap();
            assert!(!done.is_tag);
            let head = std::fs::read_to_string(at(name).join(".git/HEAD")).unwrap();
            assert_eq!(head.trim(), shas[1], "detached at the branch's head");
            assert_eq!(git_in(&at(name), &["status", "--porcelain"]), "");
            assert_eq!(git_in(&at(name), &["rev-parse", "HEAD"]), shas[1]);
        }
        // An older commit of the branch (a rebuild): that commit.
        checkout(
            &url,
            "main",
            Some(&shas[0]),
            &at("older"),
            &local(),
            None,
            &cancel,
        )
        .await
        .unwrap();
        assert_eq!(git_in(&at("older"), &["rev-parse", "HEAD"]), shas[0]);
        // A tag: the tagged commit, known as a tag.
        let done = checkout(&url, "v1", None, &at("tag"), &local(), None, &cancel)
            .await
            .unwrap();
        assert!(done.is_tag);
        assert_eq!(git_in(&at("tag"), &["rev-parse", "HEAD"]), shas[0]);
        // A branch the repository lacks fails the checkout.
        assert!(
            checkout(&url, "nope", None, &at("nope"), &local(), None, &cancel)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn the_commit_is_described_with_the_files_it_changed() {
        let repo = tempfile::tempdir().unwrap();
        git_in(repo.path(), &["init", "--quiet", "--initial-branch=main"]);
        std::fs::write(repo.path().join("a b.txt"), "a").unwrap();
        std::fs::create_dir(repo.path().join("src")).unwrap();
        std::fs::write(repo.path().join("src/é.rs"), "b").unwrap();
        git_in(repo.path(), &["add", "."]);
        git_in(
            repo.path(),
            &["commit", "--quiet", "-m", "two files\n\nand a body"],
        );
        let cancel = CancellationToken::new();
        let info = head_commit(repo.path(), &cancel).await.unwrap();
        assert_eq!(info.message, "two files\n\nand a body");
        assert_eq!(info.author, "Ada <ada@example.com>");
        assert_eq!(
            info.files,
            vec!["a b.txt".to_owned(), "src/é.rs".to_owned()]
        );
        git_in(
            repo.path(),
            &["commit", "--quiet", "--allow-empty", "-m", "empty"],
        );
        let info = head_commit(repo.path(), &cancel).await.unwrap();
        assert_eq!((info.message.as_str(), info.files.len()), ("empty", 0));
    }

    #[tokio::test]
    async fn a_mirror_takes_branches_tags_and_the_change_ref_and_follows_the_repository() {
        let (repo, shas) = sample_repo();
        let url = format!("file://{}", repo.path().display());
        let root = tempfile::tempdir().unwrap();
        let m = mirror::path(root.path(), 1, &url);
        let cancel = CancellationToken::new();
        let auth = GitAuth::default();
        mirror::update(&m, &url, Some("refs/pull/7/head"), &[], &auth, &cancel)
            .await
            .unwrap();
        assert_eq!(read_ref(&m, "refs/heads/main").await, Some(shas[1].clone()));
        assert!(read_ref(&m, "refs/heads/feature/x").await.is_some());
        assert!(read_ref(&m, "refs/tags/v1").await.is_some());
        assert_eq!(
            read_ref(&m, "refs/pull/7/head").await,
            Some(shas[2].clone())
        );
        assert!(
            !tokio::fs::try_exists(m.with_extension("partial"))
                .await
                .unwrap()
        );

        // The repository moves on: main advances, a branch goes; the mirror follows.
        git_in(
            repo.path(),
            &["commit", "--quiet", "--allow-empty", "-m", "third"],
        );
        git_in(repo.path(), &["branch", "-D", "feature/x"]);
        let third = git_in(repo.path(), &["rev-parse", "HEAD"]);
        mirror::update(&m, &url, None, &[], &auth, &cancel)
            .await
            .unwrap();
        assert_eq!(read_ref(&m, "refs/heads/main").await, Some(third));
        assert_eq!(read_ref(&m, "refs/heads/feature/x").await, None);

        // A repository that is gone fails the update: no stale mirror is served.
        let gone = format!("file://{}/missing", root.path().display());
        assert!(
            mirror::update(&m, &gone, None, &[], &auth, &cancel)
                .await
                .is_err()
        );
    }

    #[tokio::test]
    async fn change_request_refs_are_fetched_and_the_commit_is_described() {
        let (repo, shas) = sample_repo();
        let url = format!("file://{}", repo.path().display());
        let cancel = CancellationToken::new();
        let dest = tempfile::tempdir().unwrap();
        let dest = dest.path().join("src");
        let done = checkout(
            &url,
            "refs/pull/7/head",
            None,
            &dest,
            &local(),
            None,
            &cancel,
        )
        .await
        .unwrap();
        assert!(!done.is_tag);
        let head = head_commit(&dest, &cancel).await.unwrap();
        assert_eq!(head.sha, shas[2]);
        assert_eq!(head.author, "Ada <ada@example.com>");
        assert_eq!(head.message, "proposed");

        let dest = dest.with_file_name("tag");
        assert!(
            checkout(&url, "v1", None, &dest, &local(), None, &cancel)
                .await
                .unwrap()
                .is_tag
        );
        let head = head_commit(&dest, &cancel).await.unwrap();
        assert_eq!(head.sha, shas[0]);
        assert_eq!(head.message, "first\n\nbody line");
    }
}
