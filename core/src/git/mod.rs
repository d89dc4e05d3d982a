//! Checking out a run's commit with the system `git`, into the attempt's workspace.
//! Local repositories (`file://`, absolute paths) only when allowed; git never prompts.
//! Otherwise the URL is parsed as git parses it, every address its host resolves to is checked
//! against the deny list, and an http(s) clone is pinned to those addresses with redirects
//! refused.

use std::net::IpAddr;
use std::path::Path;
use std::process::Stdio;

use crate::addresses::DenyList;
use crate::git_auth::{GitAuth, RepoCredential};

use tokio::process::Command;
use tokio_util::sync::CancellationToken;

mod checkout;
pub mod mirror;
mod refs;
pub use checkout::{CheckedOut, CommitInfo, checkout, head_commit};
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

/// `-c` before each of `config`'s settings, then `args`: a git command line.
fn with_config(config: &[String], args: &[&str]) -> Vec<String> {
    config
        .iter()
        .flat_map(|c| ["-c".to_owned(), c.clone()])
        .chain(args.iter().map(|a| (*a).to_owned()))
        .collect()
}

fn as_strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
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
}
