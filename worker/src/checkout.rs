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
    #[error(
        "repository host `{0}` resolves to a loopback, link-local or cloud-metadata address; such hosts are allowed only with SLUICE_ALLOW_LOCAL_REPOS"
    )]
    InternalHost(String),
    #[error("repository host `{0}` cannot be resolved: {1}")]
    Unresolved(String, String),
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

/// The host and port of a remote URL: `scheme://[user@]host[:port]/…` or `user@host:path`.
pub fn host_of(url: &str) -> Option<(String, u16)> {
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority = rest.split('/').next()?;
        let host_port = authority.rsplit('@').next()?;
        let default = match scheme {
            "ssh" => 22,
            "http" => 80,
            _ => 443,
        };
        if let Some(v6) = host_port.strip_prefix('[') {
            let (host, after) = v6.split_once(']')?;
            let port = after.strip_prefix(':').and_then(|p| p.parse().ok());
            return Some((host.to_owned(), port.unwrap_or(default)));
        }
        return match host_port.rsplit_once(':') {
            Some((host, port)) => Some((host.to_owned(), port.parse().ok()?)),
            None => Some((host_port.to_owned(), default)),
        };
    }
    let (user_host, _) = url.split_once(':')?;
    Some((user_host.rsplit('@').next()?.to_owned(), 22))
}

/// Loopback, unspecified, link-local (which holds 169.254.169.254) and the cloud metadata
/// addresses outside it.
pub fn is_internal(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback()
                || v4.is_unspecified()
                || v4.is_link_local()
                || v4.octets() == [100, 100, 100, 200]
                || v4.octets() == [192, 0, 0, 192]
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal(IpAddr::V4(v4));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6 == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
    }
}

/// Refuses a remote URL whose host resolves to an internal address.
async fn refuse_internal(url: &str) -> Result<(), CheckoutError> {
    let Some((host, port)) = host_of(url) else {
        return Err(CheckoutError::Unsupported(url.to_owned()));
    };
    let addrs = tokio::net::lookup_host((host.as_str(), port))
        .await
        .map_err(|e| CheckoutError::Unresolved(host.clone(), e.to_string()))?;
    let internal = addrs.into_iter().any(|a| is_internal(a.ip()));
    if internal {
        return Err(CheckoutError::InternalHost(host));
    }
    Ok(())
}

/// Whether the fresh clone in `dest` has `name` (read from its ref files: no git process).
async fn has_ref(dest: &Path, name: &str) -> bool {
    let git_dir = dest.join(".git");
    if tokio::fs::try_exists(git_dir.join(name))
        .await
        .unwrap_or(false)
    {
        return true;
    }
    let packed = tokio::fs::read_to_string(git_dir.join("packed-refs"))
        .await
        .unwrap_or_default();
    packed
        .lines()
        .any(|l| l.split_once(' ').is_some_and(|(_, r)| r == name))
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
    } else if !allow_local {
        refuse_internal(url).await?;
    }
    let dest_str = dest.to_string_lossy();
    // A local repository by path, not `file://`: git then clones with hard links, without the
    // pack protocol (about twice as fast).
    let source = url.strip_prefix("file://").unwrap_or(url);
    git(
        None,
        &["clone", "--quiet", "--no-checkout", "--", source, &dest_str],
        "clone",
        cancel,
    )
    .await?;
    let tag = format!("refs/tags/{git_ref}");
    let is_tag = has_ref(dest, &tag).await;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_https_ssh_and_scp_urls() {
        assert_eq!(
            host_of("https://git.example.com/a/b.git"),
            Some(("git.example.com".into(), 443))
        );
        assert_eq!(
            host_of("ssh://git@git.example.com:2222/a/b"),
            Some(("git.example.com".into(), 2222))
        );
        assert_eq!(
            host_of("git@github.com:a/b.git"),
            Some(("github.com".into(), 22))
        );
        assert_eq!(host_of("https://[::1]:8443/x"), Some(("::1".into(), 8443)));
    }

    #[test]
    fn internal_addresses_are_recognised() {
        for ip in [
            "127.0.0.1",
            "169.254.169.254",
            "::1",
            "fe80::1",
            "0.0.0.0",
            "::ffff:127.0.0.1",
            "fd00:ec2::254",
            "100.100.100.200",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["140.82.112.3", "10.0.0.5", "2606:4700::1"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn a_host_resolving_to_loopback_is_refused_unless_local_repos_are_allowed() {
        let err = refuse_internal("https://localhost:1/x.git")
            .await
            .unwrap_err();
        assert!(matches!(err, CheckoutError::InternalHost(_)), "{err}");
        assert!(refuse_internal("ssh://git@127.0.0.1/x").await.is_err());
    }
}
