//! Typed settings, layered: built-in defaults < `sluice.toml` < `SLUICE_*` environment.
//!
//! Loading settings never writes anything; `serve` may create the data dir afterwards.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::SecretString;
use serde::Deserialize;

use crate::addresses::DenyList;

mod validate;
use crate::{Error, Result};
pub use validate::is_quantity;

/// The name of the configuration file read from the working directory when present.
pub const DEFAULT_CONFIG_FILE: &str = "sluice.toml";

/// Settings taken from the environment as the text given: parsed like other values, a token
/// of digits would arrive as a number (and lose leading zeros).
const VERBATIM: [&str; 1] = ["metrics_token"];

/// The setting `SLUICE_<NAME>` names when it is one of [`VERBATIM`].
fn verbatim(key: &str) -> Option<&'static str> {
    let name = key.strip_prefix("SLUICE_")?;
    VERBATIM.into_iter().find(|v| v.eq_ignore_ascii_case(name))
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Where build steps run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorKind {
    /// A process group per step on this machine (single-team installs).
    #[default]
    Local,
    /// An ephemeral Pod per run in the tenant's namespace.
    Kubernetes,
}

/// One OAuth 2.0 / OpenID Connect sign-in provider (`SLUICE_OAUTH_<NAME>_*`, or
/// `[oauth.<name>]` in `sluice.toml`).
#[derive(Debug, Clone, Deserialize)]
pub struct OAuthProviderSettings {
    /// OpenID issuer URL, discovered at `/.well-known/openid-configuration`. The `gitlab`
    /// preset defaults to `https://gitlab.com`; `github` uses GitHub's OAuth endpoints.
    pub issuer: Option<String>,
    pub client_id: String,
    pub client_secret: SecretString,
    /// Button text; defaults to the provider's name.
    pub label: Option<String>,
}

/// The default log filter: Sluice's own information, and only warnings from the libraries
/// that narrate their work (each migration applied, each HTTP worker started).
pub const DEFAULT_LOG: &str = "info,sea_orm_migration=warn,actix_server=warn";

/// Everything Sluice can be told at start-up. Secrets are wrapped so `Debug` never shows them.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Address the HTTP server listens on (`SLUICE_BIND`).
    pub bind: SocketAddr,
    /// Directory for the embedded database, the generated secret key and local blobs.
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; unset means a SQLite file in the data dir.
    pub database_url: Option<SecretString>,
    /// Redis for the job queue; unset means the embedded queue in the database.
    pub redis_url: Option<SecretString>,
    /// The URL people and webhooks reach Sluice at; defaults to `http://{bind}`.
    pub public_url: Option<String>,
    /// Key material for encrypting secrets at rest; generated into the data dir when unset.
    pub secret_key: Option<SecretString>,
    /// Whether email + password accounts may sign up and sign in.
    pub local_accounts: bool,
    /// Which executor runs builds.
    pub executor: ExecutorKind,
    /// Whether `file://` and loopback repository URLs are allowed (default: on in `serve` only).
    pub allow_local_repos: Option<bool>,
    /// Addresses repository hosts may not resolve to, unless local repositories are allowed:
    /// CIDR ranges, addresses and the words `default` and `host` (see [`DenyList::parse`]).
    pub repo_deny_cidrs: String,
    /// What tenant build pods may reach besides DNS (the Kubernetes executor's NetworkPolicy):
    /// comma-separated `CIDR` or `CIDR:PORT` (see [`parse_egress`]).
    pub tenant_egress_cidrs: String,
    /// Each build pod's CPU, memory and ephemeral storage limits; a tenant namespace's quota
    /// is these times the org's concurrent runs.
    pub tenant_pod_cpu: String,
    pub tenant_pod_memory: String,
    pub tenant_pod_ephemeral_storage: String,
    /// The build image of a pipeline with `agent any` on the Kubernetes executor.
    pub kube_default_image: String,
    /// Images for `agent { label 'x' }` on the Kubernetes executor: `label=image` pairs,
    /// comma-separated (`java=eclipse-temurin:21,node=node:22`).
    pub kube_pod_templates: String,
    /// Seconds a build pod may stay unschedulable before its run fails.
    pub kube_unschedulable_secs: u64,
    /// This install's name on the cluster: the controller label of its build pods, which its
    /// workers collect when orphaned (two installs sharing a cluster need different ones).
    pub kube_controller: String,
    /// Seconds between two looks for orphaned build pods.
    pub kube_orphan_scan_secs: u64,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// A `tracing` filter such as `info` or `sluice_api=debug,info`.
    pub log: String,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// How long in-flight requests may take to finish after a shutdown signal, in seconds.
    pub shutdown_timeout_secs: u64,
    /// Size of the database connection pool.
    pub db_max_connections: u32,
    /// Sign-up and sign-in attempts allowed per client address and minute.
    pub auth_attempts_per_minute: u32,
    /// Sign-in providers by name (lowercase letters, digits, dashes).
    pub oauth: BTreeMap<String, OAuthProviderSettings>,
    /// Cache token authentication, tenancy and project lists in memory (only where every
    /// write passes through this process; `sluice api` replicas turn it off).
    pub read_cache: bool,
    /// Runs one worker process (or `serve`) executes at once.
    pub worker_concurrency: usize,
    /// Seconds a claimed job stays with a worker that stopped heart-beating before another
    /// worker takes it over.
    pub queue_lease_secs: u64,
    /// Deliveries of one job before it is dead-lettered.
    pub queue_max_deliveries: u32,
    /// Prefix of the Redis keys of the job queue.
    pub queue_prefix: String,
    /// Runs handed to the queue but not yet started, across all orgs. The scheduler keeps the
    /// rest in the database and picks fairly between orgs as workers free up.
    pub dispatch_backlog: u32,
    /// Where workers check out repositories; `{data_dir}/workspaces` when unset.
    pub workspace_dir: Option<PathBuf>,
    /// Where run logs and artifacts go: `s3://bucket/prefix`, `az://…`, `gs://…` (credentials
    /// from the provider's usual `AWS_*`, `AZURE_*`, `GOOGLE_*` variables); unset means the
    /// local filesystem under `{data_dir}/objects`.
    pub object_store_url: Option<String>,
    /// Largest log one run may write, in bytes; past it, lines are dropped after a marker.
    pub log_max_bytes: u64,
    /// Keep each run's workspace after it ends (for debugging builds); off by default.
    pub keep_workspaces: bool,
    /// Keep a mirror of each project's remote repository beside the workspaces, fetched into
    /// before each checkout (only new objects cross the network); off clones every run from
    /// the repository, leaving no code on the worker between runs.
    pub git_mirrors: bool,
    /// When set, `/metrics` answers only `Authorization: Bearer <this>` (org slugs are label
    /// values there); unset leaves it open, for a scraper on a private network.
    pub metrics_token: Option<SecretString>,
    /// The address the local runtime's routers listen on; each app environment gets a port.
    pub router_bind: std::net::IpAddr,
    /// The release analysis: the lowest success rate (0-1) a colour may show while monitored.
    pub release_min_success_rate: f64,
    /// The highest p99 latency, in milliseconds, a colour may show while monitored.
    pub release_max_p99_ms: f64,
    /// Below this many requests the analysis judges nothing (health checks alone decide).
    pub release_min_requests: u64,
    /// Seconds a release's instances get to become ready.
    pub release_ready_timeout_secs: u64,
    /// Seconds an app environment's controller holds it without renewing: a dead worker's
    /// releases are taken over after this.
    pub release_lease_secs: u64,
    /// Kubernetes: seconds pods stay up after leaving the live Service's endpoints, before
    /// their Deployment is scaled down (for proxies to notice).
    pub release_scale_down_delay_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./sluice-data"),
            database_url: None,
            redis_url: None,
            public_url: None,
            secret_key: None,
            local_accounts: true,
            executor: ExecutorKind::Local,
            allow_local_repos: None,
            repo_deny_cidrs: "default".to_owned(),
            tenant_egress_cidrs: String::new(),
            tenant_pod_cpu: "2".to_owned(),
            tenant_pod_memory: "4Gi".to_owned(),
            tenant_pod_ephemeral_storage: "10Gi".to_owned(),
            kube_default_image: "debian:bookworm-slim".to_owned(),
            kube_pod_templates: String::new(),
            kube_unschedulable_secs: 120,
            kube_controller: "sluice".to_owned(),
            kube_orphan_scan_secs: 60,
            log_format: LogFormat::Text,
            log: DEFAULT_LOG.to_owned(),
            max_body_bytes: 1024 * 1024,
            shutdown_timeout_secs: 30,
            db_max_connections: 10,
            auth_attempts_per_minute: 10,
            oauth: BTreeMap::new(),
            read_cache: true,
            worker_concurrency: 2,
            queue_lease_secs: 60,
            queue_max_deliveries: 5,
            queue_prefix: "sluice".to_owned(),
            dispatch_backlog: 16,
            workspace_dir: None,
            object_store_url: None,
            log_max_bytes: 64 * 1024 * 1024,
            keep_workspaces: false,
            git_mirrors: true,
            metrics_token: None,
            router_bind: std::net::IpAddr::from([127, 0, 0, 1]),
            release_min_success_rate: 0.99,
            release_max_p99_ms: 500.0,
            release_min_requests: 50,
            release_ready_timeout_secs: 60,
            release_lease_secs: 10,
            release_scale_down_delay_secs: 30,
        }
    }
}

/// Values given on the command line; they win over every other layer.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub bind: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
}

impl Settings {
    /// Loads settings from the config file (explicit `path`, else `./sluice.toml` if present),
    /// then the process environment, then `overrides`.
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Settings> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        let mut figment = Self::figment(path)?.merge(
            Env::prefixed("SLUICE_")
                .filter(|k| !k.starts_with("oauth_") && !VERBATIM.iter().any(|v| k == *v)),
        );
        for (key, value) in &env {
            if let Some(name) = verbatim(key) {
                figment = figment.merge(Serialized::default(name, value));
            }
        }
        let mut settings = Self::extract(figment, overrides)?;
        settings.add_oauth_from_env(&env)?;
        Ok(settings)
    }

    /// Like [`Settings::load`] but with the environment given as pairs, for tests and tools.
    pub fn load_from<I, K, V>(
        path: Option<&Path>,
        env: I,
        overrides: &Overrides,
    ) -> Result<Settings>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut figment = Self::figment(path)?;
        let env: Vec<(String, String)> = env
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
            .collect();
        for (key, value) in &env {
            if let Some(name) = key
                .strip_prefix("SLUICE_")
                .filter(|n| !n.starts_with("OAUTH_"))
            {
                if let Some(name) = verbatim(key) {
                    figment = figment.merge(Serialized::default(name, value));
                    continue;
                }
                let value: figment::value::Value =
                    value.parse().unwrap_or_else(|never| match never {});
                figment = figment.merge(Serialized::default(&name.to_ascii_lowercase(), value));
            }
        }
        let mut settings = Self::extract(figment, overrides)?;
        settings.add_oauth_from_env(&env)?;
        Ok(settings)
    }

    /// Adds providers from `SLUICE_OAUTH_<NAME>_{ISSUER,CLIENT_ID,CLIENT_SECRET,LABEL}`.
    fn add_oauth_from_env(&mut self, env: &[(String, String)]) -> Result<()> {
        const PARTS: [&str; 4] = ["_ISSUER", "_CLIENT_ID", "_CLIENT_SECRET", "_LABEL"];
        let mut found: BTreeMap<String, BTreeMap<&str, String>> = BTreeMap::new();
        for (key, value) in env {
            let Some(rest) = key.strip_prefix("SLUICE_OAUTH_") else {
                continue;
            };
            let Some(part) = PARTS.iter().find(|p| rest.ends_with(*p)) else {
                continue;
            };
            let name = rest[..rest.len() - part.len()]
                .to_ascii_lowercase()
                .replace('_', "-");
            found.entry(name).or_default().insert(part, value.clone());
        }
        for (name, mut parts) in found {
            let var = |part: &str| {
                format!(
                    "SLUICE_OAUTH_{}{part}",
                    name.to_ascii_uppercase().replace('-', "_")
                )
            };
            let (Some(client_id), Some(secret)) =
                (parts.remove("_CLIENT_ID"), parts.remove("_CLIENT_SECRET"))
            else {
                return Err(Error::InvalidSetting {
                    field: "oauth",
                    message: format!(
                        "provider `{name}` needs both {} and {}",
                        var("_CLIENT_ID"),
                        var("_CLIENT_SECRET")
                    ),
                });
            };
            let provider = OAuthProviderSettings {
                issuer: parts.remove("_ISSUER"),
                client_id,
                client_secret: SecretString::from(secret),
                label: parts.remove("_LABEL"),
            };
            self.oauth.insert(name, provider);
        }
        self.validate_oauth()
    }

    fn figment(path: Option<&Path>) -> Result<Figment> {
        let file = match path {
            Some(path) if !path.is_file() => {
                return Err(Error::InvalidSetting {
                    field: "config",
                    message: format!("configuration file {} does not exist", path.display()),
                });
            }
            Some(path) => path.to_path_buf(),
            None if Path::new(DEFAULT_CONFIG_FILE).is_file() => PathBuf::from(DEFAULT_CONFIG_FILE),
            None => return Ok(Figment::new()),
        };
        Ok(Figment::new().merge(Toml::file_exact(file)))
    }

    fn extract(mut figment: Figment, overrides: &Overrides) -> Result<Settings> {
        if let Some(bind) = overrides.bind {
            figment = figment.merge(Serialized::default("bind", bind.to_string()));
        }
        if let Some(dir) = &overrides.data_dir {
            figment = figment.merge(Serialized::default("data_dir", dir));
        }
        let settings: Settings = figment.extract()?;
        settings.validate()?;
        Ok(settings)
    }

    /// The parsed `repo_deny_cidrs` (checked at load).
    pub fn repo_deny(&self) -> DenyList {
        DenyList::parse(&self.repo_deny_cidrs).unwrap_or_default()
    }

    pub fn database_url(&self) -> SecretString {
        match &self.database_url {
            Some(url) => url.clone(),
            None => {
                let file = self.data_dir.join("sluice.db");
                SecretString::from(format!("sqlite://{}?mode=rwc", file.display()))
            }
        }
    }

    /// The job queue's lease and delivery limit.
    pub fn queue_settings(&self) -> crate::queue::QueueSettings {
        crate::queue::QueueSettings {
            lease: std::time::Duration::from_secs(self.queue_lease_secs),
            max_deliveries: self.queue_max_deliveries,
        }
    }

    /// Where workers check out repositories.
    pub fn workspace_dir(&self) -> PathBuf {
        self.workspace_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("workspaces"))
    }

    /// The public base URL, without a trailing slash.
    pub fn public_url(&self, listening_on: SocketAddr) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("http://{listening_on}"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn quantities_take_kubernetes_forms() {
        for good in ["2", "250m", "1.5", "512Mi", "4Gi", "1G", "10Ti"] {
            assert!(is_quantity(good), "{good}");
        }
        for bad in ["", "Gi", "4 Gi", "-1", "1.", ".5", "4gb", "2x"] {
            assert!(!is_quantity(bad), "{bad}");
        }
        let err = Settings::load_from(
            None,
            env(&[("SLUICE_TENANT_POD_MEMORY", "4gb")]),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("tenant_pod_memory"), "{err}");
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("absent.toml");
        let err = Settings::load_from(Some(&missing), env(&[]), &Overrides::default()).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");

        let settings = Settings::load_from(None, env(&[]), &Overrides::default()).unwrap();
        assert_eq!(settings.bind.to_string(), "127.0.0.1:8080");
        assert!(settings.local_accounts);
        assert!(
            settings
                .database_url()
                .expose_secret()
                .starts_with("sqlite:")
        );
    }

    #[test]
    fn file_overrides_defaults_and_env_overrides_file_and_flags_override_env() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sluice.toml");
        std::fs::write(
            &file,
            "bind = \"127.0.0.1:9000\"\nlog_format = \"json\"\nmax_body_bytes = 2048\nlocal_accounts = false\n",
        )
        .unwrap();

        let from_file = Settings::load_from(Some(&file), env(&[]), &Overrides::default()).unwrap();
        assert_eq!(from_file.bind.to_string(), "127.0.0.1:9000");
        assert_eq!(from_file.log_format, LogFormat::Json);
        assert_eq!(from_file.max_body_bytes, 2048);
        assert!(!from_file.local_accounts);

        let vars = env(&[
            ("SLUICE_BIND", "127.0.0.1:9100"),
            ("SLUICE_LOCAL_ACCOUNTS", "true"),
            ("OTHER", "x"),
        ]);
        let from_env =
            Settings::load_from(Some(&file), vars.clone(), &Overrides::default()).unwrap();
        assert_eq!(from_env.bind.to_string(), "127.0.0.1:9100");
        assert!(from_env.local_accounts);
        assert_eq!(
            from_env.max_body_bytes, 2048,
            "file value kept where env is silent"
        );

        let flags = Overrides {
            bind: Some("127.0.0.1:9200".parse().unwrap()),
            data_dir: Some("/tmp/x".into()),
        };
        let from_flags = Settings::load_from(Some(&file), vars, &flags).unwrap();
        assert_eq!(from_flags.bind.to_string(), "127.0.0.1:9200");
        assert_eq!(from_flags.data_dir, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let vars = env(&[
            ("SLUICE_SECRET_KEY", "very-secret-key-material-0123456789"),
            ("SLUICE_DATABASE_URL", "postgres://sluice:hunter2@db/sluice"),
            ("SLUICE_METRICS_TOKEN", "scrape-me-7f3a9c"),
        ]);
        let settings = Settings::load_from(None, vars, &Overrides::default()).unwrap();
        let shown = format!("{settings:?}");
        assert!(!shown.contains("very-secret-key-material"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!shown.contains("scrape-me"), "{shown}");
    }

    #[test]
    fn a_metrics_token_is_printable_text_even_when_all_digits() {
        for digits in ["0123456", "12345678901234567890123"] {
            let settings = Settings::load_from(
                None,
                env(&[("SLUICE_METRICS_TOKEN", digits)]),
                &Overrides::default(),
            )
            .unwrap();
            assert_eq!(settings.metrics_token.unwrap().expose_secret(), digits);
        }
        for bad in ["", "two words"] {
            let err = Settings::load_from(
                None,
                env(&[("SLUICE_METRICS_TOKEN", bad)]),
                &Overrides::default(),
            )
            .unwrap_err();
            assert!(err.to_string().contains("metrics_token"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn bad_values_name_the_field_at_fault() {
        let err = Settings::load_from(
            None,
            env(&[("SLUICE_DATABASE_URL", "mysql://x")]),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("database_url"), "{err}");
        let err = Settings::load_from(
            None,
            env(&[("SLUICE_BIND", "not-an-address")]),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("bind"), "{err}");
        let err = Settings::load_from(
            None,
            env(&[("SLUICE_LOG_FORMAT", "xml")]),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("log_format"), "{err}");
    }

    #[test]
    fn oauth_providers_come_from_env_with_presets() {
        let vars = env(&[
            ("SLUICE_OAUTH_CORP_SSO_ISSUER", "https://sso.example.com"),
            ("SLUICE_OAUTH_CORP_SSO_CLIENT_ID", "sluice"),
            ("SLUICE_OAUTH_CORP_SSO_CLIENT_SECRET", "shh-secret"),
            ("SLUICE_OAUTH_GITLAB_CLIENT_ID", "gl"),
            ("SLUICE_OAUTH_GITLAB_CLIENT_SECRET", "gl-secret"),
        ]);
        let settings = Settings::load_from(None, vars, &Overrides::default()).unwrap();
        let corp = &settings.oauth["corp-sso"];
        assert_eq!(corp.issuer.as_deref(), Some("https://sso.example.com"));
        assert_eq!(corp.client_id, "sluice");
        assert!(settings.oauth["gitlab"].issuer.is_none(), "preset");
        assert!(!format!("{settings:?}").contains("shh-secret"));

        let missing = env(&[
            ("SLUICE_OAUTH_X_ISSUER", "https://x"),
            ("SLUICE_OAUTH_X_CLIENT_ID", "id"),
        ]);
        let err = Settings::load_from(None, missing, &Overrides::default()).unwrap_err();
        assert!(
            err.to_string().contains("SLUICE_OAUTH_X_CLIENT_SECRET"),
            "{err}"
        );
        let no_issuer = env(&[
            ("SLUICE_OAUTH_X_CLIENT_ID", "id"),
            ("SLUICE_OAUTH_X_CLIENT_SECRET", "s"),
        ]);
        assert!(Settings::load_from(None, no_issuer, &Overrides::default()).is_err());
    }

    #[test]
    fn default_database_lives_in_the_data_dir() {
        let flags = Overrides {
            bind: None,
            data_dir: Some("/srv/sluice".into()),
        };
        let settings = Settings::load_from(None, env(&[]), &flags).unwrap();
        assert_eq!(
            settings.database_url().expose_secret(),
            "sqlite:///srv/sluice/sluice.db?mode=rwc"
        );
    }
}
