//! How git authenticates to a private repository: an HTTPS token goes as a Basic
//! `Authorization` header through git's environment (never in the URL, on a command line or
//! in `.git/config`); an SSH key is written to a private file for the one command, with the
//! host keys pinned for the project (or learned on first contact).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;

use base64::Engine;

use crate::git::CheckoutError;

/// A project's repository credential in clear, for one git command.
#[derive(Clone, PartialEq, Eq)]
pub enum RepoCredential {
    /// HTTPS: Basic authentication with a user name and a token (a personal, project or
    /// deploy token; GitHub takes any user name with a token, GitLab `oauth2` or the token's).
    Token { username: String, token: String },
    /// SSH: a private key in OpenSSH format, and the host keys pinned for the project
    /// (`known_hosts` lines; None until the first contact records them).
    SshKey {
        private_key: String,
        known_hosts: Option<String>,
    },
}

impl std::fmt::Debug for RepoCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RepoCredential::Token { username, .. } => {
                write!(f, "Token {{ username: {username:?}, token: **** }}")
            }
            RepoCredential::SshKey { known_hosts, .. } => write!(
                f,
                "SshKey {{ private_key: ****, pinned: {} }}",
                known_hosts.is_some()
            ),
        }
    }
}

/// What one git command gets to authenticate: environment variables, and the private
/// directory holding the files they name (removed when this is dropped).
#[derive(Default)]
pub(crate) struct GitAuth {
    pub env: Vec<(String, String)>,
    dir: Option<tempfile::TempDir>,
    /// Host keys were not pinned: what the command learned is in this file.
    learning: bool,
}

impl GitAuth {
    /// The authentication for reaching `url` (`http` tells its transport) with `credential`.
    pub fn new(credential: Option<&RepoCredential>, http: bool) -> Result<GitAuth, CheckoutError> {
        let mismatch = |what: &str| CheckoutError::Credential(what.to_owned());
        match (credential, http) {
            (None, _) => Ok(GitAuth::default()),
            (Some(RepoCredential::Token { username, token }), true) => {
                let basic =
                    base64::engine::general_purpose::STANDARD.encode(format!("{username}:{token}"));
                Ok(GitAuth {
                    env: vec![
                        ("GIT_CONFIG_COUNT".into(), "1".into()),
                        ("GIT_CONFIG_KEY_0".into(), "http.extraHeader".into()),
                        (
                            "GIT_CONFIG_VALUE_0".into(),
                            format!("Authorization: Basic {basic}"),
                        ),
                    ],
                    ..GitAuth::default()
                })
            }
            (Some(RepoCredential::Token { .. }), false) => Err(mismatch(
                "the project's repository credential is an HTTPS token, but the repository URL is not https://: use an https:// URL, or an SSH deploy key",
            )),
            (Some(RepoCredential::SshKey { .. }), true) => Err(mismatch(
                "the project's repository credential is an SSH deploy key, but the repository URL is https://: use the ssh:// or git@host:path URL, or an HTTPS token",
            )),
            (
                Some(RepoCredential::SshKey {
                    private_key,
                    known_hosts,
                }),
                false,
            ) => {
                let io = |e: std::io::Error| {
                    CheckoutError::Credential(format!("cannot prepare the SSH key: {e}"))
                };
                let dir = tempfile::Builder::new()
                    .prefix("sluice-ssh-")
                    .tempdir()
                    .map_err(io)?;
                let key = dir.path().join("key");
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&key)
                    .map_err(io)?;
                let mut text = private_key.trim_end().to_owned();
                text.push('\n');
                file.write_all(text.as_bytes()).map_err(io)?;
                let hosts = dir.path().join("known_hosts");
                std::fs::write(&hosts, known_hosts.as_deref().unwrap_or("")).map_err(io)?;
                // Pinned host keys must match; without them the first contact records them.
                let checking = if known_hosts.is_some() {
                    "yes"
                } else {
                    "accept-new"
                };
                let command = format!(
                    "ssh -i {} -o IdentitiesOnly=yes -o IdentityAgent=none -o BatchMode=yes \
                     -o UserKnownHostsFile={} -o GlobalKnownHostsFile=/dev/null -o HashKnownHosts=no \
                     -o StrictHostKeyChecking={checking} -o ConnectTimeout=15",
                    key.display(),
                    hosts.display()
                );
                Ok(GitAuth {
                    env: vec![
                        ("GIT_SSH_COMMAND".into(), command),
                        ("GIT_SSH_VARIANT".into(), "ssh".into()),
                    ],
                    dir: Some(dir),
                    learning: known_hosts.is_none(),
                })
            }
        }
    }

    /// The host keys an SSH command learned on first contact (`known_hosts` lines).
    pub fn learned_host_keys(&self) -> Option<String> {
        let dir = self.dir.as_ref().filter(|_| self.learning)?;
        std::fs::read_to_string(dir.path().join("known_hosts"))
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    }
}
