//! Checking out a run's commit with the system `git`, into the attempt's workspace.
//! Local repositories (`file://`, absolute paths) only when allowed; git never prompts.
//! Otherwise the URL is parsed as git parses it, every address its host resolves to is checked
//! against the deny list, and an http(s) clone is pinned to those addresses with redirects
//! refused.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use crate::addresses::DenyList;
use crate::git_auth::{GitAuth, RepoCredential};

use tokio::process::Command;
use tokio_util::sync::CancellationToken;

pub mod mirror;
mod refs;
pub use refs::{Probe, Resolved, list_refs, ls_remote, probe};

/// Why a checkout failed, in words for the run's reason.
#[derive(Debug, thiserror::Error)]
pub enum CheckoutError {
    #[error(
        "repository `{0}` is local; local repositories are allowed only with SLUICE_ALLOW_LOCAL_REPOS"
    )]
    LocalNotAllowed(String),
    #[error("repository URL `{0}` is not https://, ssh://, git@host:path or a local path")]
    Unsupported(String),
    #[error(
        "repository host `{0}` resolves to {1}, which SLUICE_REPO_DENY_CIDRS refuses (by default loopback, link-local, cloud-metadata and this host's own addresses)"
    )]
    InternalHost(String, String),
    #[error("repository host `{0}` cannot be resolved: {1}")]
    Unresolved(String, String),
    #[error("git {step} failed: {stderr}")]
    Git { step: &'static str, stderr: String },
    #[error("checkout cancelled")]
    Cancelled,
    /// The project's repository credential cannot be used for this URL.
    #[error("{0}")]
    Credential(String),
}

fn is_local(url: &str) -> bool {
    url.starts_with("file://") || url.starts_with('/')
}

/// What a checkout may reach.
#[derive(Debug, Clone, Default)]
pub struct RepoAccess {
    /// `file://`, local paths, and hosts on any address (`SLUICE_ALLOW_LOCAL_REPOS`).
    pub allow_local: bool,
    /// Otherwise, the addresses repository hosts may not resolve to.
    pub deny: DenyList,
    /// The project's mirror of a remote repository ([`mirror::path`]): fetched into, then
    /// cloned from locally. None clones straight from the repository.
    pub mirror: Option<std::path::PathBuf>,
}

/// Runs git; its standard output on success.
async fn git(
    dir: Option<&Path>,
    args: &[&str],
    step: &'static str,
    cancel: &CancellationToken,
) -> Result<String, CheckoutError> {
    git_with(dir, args, step, &GitAuth::default(), cancel).await
}

/// Runs git authenticating with `auth`; its standard output on success.
async fn git_with(
    dir: Option<&Path>,
    args: &[&str],
    step: &'static str,
    auth: &GitAuth,
    cancel: &CancellationToken,
) -> Result<String, CheckoutError> {
    let mut cmd = Command::new("git");
    if let Some(dir) = dir {
        cmd.arg("-C").arg(dir);
    }
    cmd.args(args)
        .env_clear()
        .envs(crate::host_env::base())
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ASKPASS", "true")
        .envs(auth.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
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
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(CheckoutError::Git {
            step,
            stderr: stderr.trim().chars().take(2000).collect(),
        })
    }
}

/// A remote repository's host, as git and curl (or ssh) will connect to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub host: url::Host<String>,
    pub port: u16,
    /// `http://` or `https://` (git's curl transport), else ssh.
    pub http: bool,
}

/// Parses a remote URL the way git does: `scheme://[user@]host[:port]/…` by the URL standard
/// (so `?`, `#` and `@` in odd places cannot hide the real host), or scp-style
/// `[user@]host:path`. None for anything else, and for text git or curl might read another
/// way (whitespace, control characters, backslashes, a host starting with `-`).
pub fn remote_of(url: &str) -> Option<Remote> {
    if url
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return None;
    }
    if url.contains("://") {
        let parsed = url::Url::parse(url).ok()?;
        let http = match parsed.scheme() {
            "http" | "https" => true,
            "ssh" => false,
            _ => return None,
        };
        let host = parsed.host()?.to_owned();
        let port = parsed.port_or_known_default().unwrap_or(22);
        return Some(Remote { host, port, http });
    }
    let rest = match url.find('@') {
        Some(at) if !url[..at].contains(['/', ':']) => &url[at + 1..],
        _ => url,
    };
    let (host, path) = match rest.strip_prefix('[') {
        Some(v6) => {
            let (inner, after) = v6.split_once(']')?;
            (format!("[{inner}]"), after.strip_prefix(':')?)
        }
        None => {
            let (host, path) = rest.split_once(':')?;
            (host.to_owned(), path)
        }
    };
    if host.is_empty() || host.starts_with('-') || host.contains('/') || path.is_empty() {
        return None;
    }
    let host = url::Host::parse(&host).ok()?;
    Some(Remote {
        host,
        port: 22,
        http: false,
    })
}

/// Resolves the remote's host and checks every address against `deny`; returns the addresses
/// git is then pinned to (so a second lookup cannot answer differently).
async fn resolve_allowed(remote: &Remote, deny: &DenyList) -> Result<Vec<IpAddr>, CheckoutError> {
    let addrs: Vec<IpAddr> = match &remote.host {
        url::Host::Ipv4(ip) => vec![IpAddr::V4(*ip)],
        url::Host::Ipv6(ip) => vec![IpAddr::V6(*ip)],
        url::Host::Domain(name) => tokio::net::lookup_host((name.as_str(), remote.port))
            .await
            .map_err(|e| CheckoutError::Unresolved(name.clone(), e.to_string()))?
            .map(|a| a.ip())
            .collect(),
    };
    if let Some(refused) = addrs.iter().find(|ip| deny.denies(**ip)) {
        return Err(CheckoutError::InternalHost(
            remote.host.to_string(),
            refused.to_string(),
        ));
    }
    if addrs.is_empty() {
        return Err(CheckoutError::Unresolved(
            remote.host.to_string(),
            "no addresses".into(),
        ));
    }
    Ok(addrs)
}

/// `git -c` settings that hold an http(s) clone to the checked addresses: curl resolves the
/// host to them only, and redirects (which could lead anywhere) are refused.
fn pinned(remote: &Remote, addrs: &[IpAddr]) -> Vec<String> {
    let mut config = vec!["http.followRedirects=false".to_owned()];
    if let url::Host::Domain(name) = &remote.host {
        let list: Vec<String> = addrs
            .iter()
            .map(|ip| match ip {
                IpAddr::V4(v4) => v4.to_string(),
                IpAddr::V6(v6) => format!("[{v6}]"),
            })
            .collect();
        config.push(format!(
            "http.curloptResolve={name}:{}:{}",
            remote.port,
            list.join(",")
        ));
    }
    config
}

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

/// The `git -c` settings a command reaching `url` needs, after checking that it may: local
/// repositories only when allowed, and remote hosts only on addresses the deny list allows;
/// and how it authenticates with `credential` (a local repository needs none).
async fn reach(
    url: &str,
    access: &RepoAccess,
    credential: Option<&RepoCredential>,
) -> Result<(Vec<String>, GitAuth), CheckoutError> {
    if is_local(url) {
        if !access.allow_local {
            return Err(CheckoutError::LocalNotAllowed(url.to_owned()));
        }
        return Ok((Vec::new(), GitAuth::default()));
    }
    let remote = remote_of(url).ok_or_else(|| CheckoutError::Unsupported(url.to_owned()))?;
    let auth = GitAuth::new(credential, remote.http)?;
    // A token in clear over the network only where local repositories are allowed (tests,
    // a developer's machine).
    if matches!(credential, Some(RepoCredential::Token { .. }))
        && url.starts_with("http://")
        && !access.allow_local
    {
        return Err(CheckoutError::Credential(
            "the project's HTTPS token is not sent over plain http://: use the https:// URL".into(),
        ));
    }
    if access.allow_local {
        return Ok((Vec::new(), auth));
    }
    let addrs = resolve_allowed(&remote, &access.deny).await?;
    let config = if remote.http {
        pinned(&remote, &addrs)
    } else {
        Vec::new()
    };
    Ok((config, auth))
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
    let dest_str = dest.to_string_lossy();
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
    let with_config = |args: &[&str]| -> Vec<String> {
        config
            .iter()
            .flat_map(|c| ["-c".to_owned(), c.clone()])
            .chain(args.iter().map(|a| (*a).to_owned()))
            .collect()
    };
    let is_tag = if let Some(change) = change_ref {
        let args = with_config(&[
            "clone",
            "--quiet",
            "--no-checkout",
            "--",
            &source,
            &dest_str,
        ]);
        git_with(None, &as_strs(&args), "clone", clone_auth, cancel).await?;
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
                let args = with_config(&["fetch", "--quiet", "origin", "--", change]);
                git_with(Some(dest), &as_strs(&args), "fetch", clone_auth, cancel).await?;
                commit.unwrap_or("FETCH_HEAD").to_owned()
            }
        };
        git(
            Some(dest),
            &["checkout", "--quiet", "--detach", &target, "--"],
            "checkout",
            cancel,
        )
        .await?;
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
            let args = with_config(&[
                "clone", "--quiet", "--branch", git_ref, "--", &source, &dest_str,
            ]);
            git_with(None, &as_strs(&args), "clone", clone_auth, cancel).await?;
            if !tagged {
                detach_head(dest, &branch).await?;
            }
            *tagged
        } else {
            let args = with_config(&[
                "clone",
                "--quiet",
                "--no-checkout",
                "--",
                &source,
                &dest_str,
            ]);
            git_with(None, &as_strs(&args), "clone", clone_auth, cancel).await?;
            let is_tag = read_ref(&dest.join(".git"), &tag).await.is_some();
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

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
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
pub(crate) mod tests {
    use super::*;

    fn remote(host: &str, port: u16, http: bool) -> Option<Remote> {
        Some(Remote {
            host: url::Host::parse(host).unwrap(),
            port,
            http,
        })
    }

    #[test]
    fn remotes_are_parsed_as_git_parses_them() {
        assert_eq!(
            remote_of("https://git.example.com/a/b.git"),
            remote("git.example.com", 443, true)
        );
        assert_eq!(
            remote_of("ssh://git@git.example.com:2222/a/b"),
            remote("git.example.com", 2222, false)
        );
        assert_eq!(
            remote_of("git@github.com:a/b.git"),
            remote("github.com", 22, false)
        );
        assert_eq!(remote_of("git@[::1]:a/b.git"), remote("[::1]", 22, false));
        assert_eq!(
            remote_of("https://[::1]:8443/x"),
            remote("[::1]", 8443, true)
        );
        // The host is what comes before `?` or `#`, not after the last `@`.
        assert_eq!(
            remote_of("http://127.0.0.1:9?@192.0.2.2/x"),
            remote("127.0.0.1", 9, true)
        );
        assert_eq!(
            remote_of("http://127.0.0.1:9#@192.0.2.2/x"),
            remote("127.0.0.1", 9, true)
        );
        assert_eq!(
            remote_of("http://user@evil.example@127.0.0.1/x"),
            remote("127.0.0.1", 80, true)
        );
        for bad in [
            "http://evil.example\\@127.0.0.1/x",
            "git://host/x",
            "-oProxyCommand=x:y",
            "git@-oProxyCommand=x:y",
            "https://host/ x",
            "host",
            "ftp://host/x",
        ] {
            assert_eq!(remote_of(bad), None, "{bad}");
        }
    }

    #[tokio::test]
    async fn every_address_is_checked_and_http_clones_are_pinned() {
        let deny = DenyList::default();
        let err = resolve_allowed(&remote_of("https://localhost:1/x.git").unwrap(), &deny)
            .await
            .unwrap_err();
        assert!(matches!(err, CheckoutError::InternalHost(..)), "{err}");
        assert!(
            resolve_allowed(&remote_of("ssh://git@127.0.0.1/x").unwrap(), &deny)
                .await
                .is_err()
        );
        for own in crate::addresses::host_addresses() {
            let url = match own {
                IpAddr::V4(v4) => format!("http://{v4}:1/x"),
                IpAddr::V6(v6) => format!("http://[{v6}]:1/x"),
            };
            let err = resolve_allowed(&remote_of(&url).unwrap(), &deny)
                .await
                .unwrap_err();
            assert!(
                matches!(err, CheckoutError::InternalHost(..)),
                "{url}: {err}"
            );
        }
        let only_other = DenyList::parse("127.0.0.2").unwrap();
        let r = remote_of("http://localhost:8080/x").unwrap();
        let addrs = resolve_allowed(&r, &only_other).await.unwrap();
        let config = pinned(&r, &addrs);
        assert_eq!(config[0], "http.followRedirects=false");
        assert!(
            config[1].starts_with("http.curloptResolve=localhost:8080:"),
            "{config:?}"
        );
    }

    /// A repository with a branch `main` (two commits), a branch `feature/x`, an annotated
    /// tag `v1` on the first commit, and a change request ref `refs/pull/7/head`.
    pub(crate) fn sample_repo() -> (tempfile::TempDir, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let out = std::process::Command::new("git")
                .arg("-C")
                .arg(dir.path())
                .args(args)
                .env("GIT_AUTHOR_NAME", "Ada")
                .env("GIT_AUTHOR_EMAIL", "ada@example.com")
                .env("GIT_COMMITTER_NAME", "Ada")
                .env("GIT_COMMITTER_EMAIL", "ada@example.com")
                .output()
                .unwrap();
            assert!(out.status.success(), "{args:?}: {out:?}");
            String::from_utf8(out.stdout).unwrap().trim().to_owned()
        };
        run(&["init", "--quiet", "--initial-branch=main"]);
        run(&[
            "commit",
            "--quiet",
            "--allow-empty",
            "-m",
            "first\n\nbody line",
        ]);
        let first = run(&["rev-parse", "HEAD"]);
        run(&["tag", "-a", "v1", "-m", "release one"]);
        run(&["commit", "--quiet", "--allow-empty", "-m", "second"]);
        let second = run(&["rev-parse", "HEAD"]);
        run(&["branch", "feature/x", &first]);
        run(&["commit", "--quiet", "--allow-empty", "-m", "proposed"]);
        let proposed = run(&["rev-parse", "HEAD"]);
        run(&["update-ref", "refs/pull/7/head", &proposed]);
        run(&["reset", "--quiet", "--hard", &second]);
        (dir, vec![first, second, proposed])
    }

    pub(crate) fn local() -> RepoAccess {
        RepoAccess {
            allow_local: true,
            deny: DenyList::default(),
            mirror: None,
        }
    }

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
