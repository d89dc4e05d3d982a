//! The `sluice` command: parses the command line and wires the crates together.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use sluice_api::{AppState, Application};
use sluice_core::config::{ExecutorKind, LogFormat, Overrides, Settings};
use sluice_core::crypto::Keyring;
use sluice_core::dispatch::DispatchSettings;
use sluice_core::metrics::Metrics;
use sluice_core::startup::{Prepared, Role, prepare};
use sluice_worker::agent::Agents;
use sluice_worker::agent::local::LocalAgents;
use sluice_worker::interpreter::JenkinsExecutor;
use sluice_worker::{Worker, WorkerConfig, WorkerParts};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// Sluice: multi-tenant CI/CD for declarative Jenkinsfiles.
#[derive(Parser)]
#[command(name = "sluice", version, about)]
struct Cli {
    /// Configuration file (default: ./sluice.toml when present). SLUICE_* variables win over it.
    #[arg(long, global = true, env = "SLUICE_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API and a worker in one process on embedded defaults (SQLite, embedded queue).
    Serve(ServeArgs),
    /// Run the HTTP API only (scale-out role).
    Api(ServeArgs),
    /// Run a queue worker only (scale-out role).
    Worker(DataDirArgs),
    /// Apply database migrations and exit.
    Migrate(DataDirArgs),
    /// Check a Jenkinsfile: exit 0 when valid, 1 when not; diagnostics on stderr.
    Lint {
        /// The Jenkinsfile to check.
        path: PathBuf,
    },
    /// Kubernetes tools.
    #[command(subcommand)]
    Kube(KubeCommand),
}

#[derive(Subcommand)]
enum KubeCommand {
    /// Print the objects of an org's build namespace as YAML documents, as the tenant
    /// provisioner would apply them (no cluster needed; reads the org from the database).
    Manifests {
        /// The org's slug.
        #[arg(long)]
        org: String,
    },
    /// Run the tenant provisioner: apply every org's namespace objects with server-side apply
    /// and delete the namespaces of orgs that are gone (cluster from KUBECONFIG or in-cluster).
    Reconcile {
        /// One pass, then exit: 0 when every org was applied, 1 otherwise.
        #[arg(long)]
        once: bool,
        /// Seconds between full passes.
        #[arg(long, default_value_t = 300)]
        every: u64,
        /// Milliseconds between checks for org changes (a change starts a pass at once).
        #[arg(long, default_value_t = 5000)]
        poll_ms: u64,
    },
}

#[derive(Args)]
struct ServeArgs {
    /// Address to listen on, e.g. 127.0.0.1:8080 (SLUICE_BIND).
    #[arg(long, value_name = "ADDR")]
    bind: Option<std::net::SocketAddr>,
    #[command(flatten)]
    dirs: DataDirArgs,
}

#[derive(Args)]
struct DataDirArgs {
    /// Directory for the embedded database, secret key and local blobs (SLUICE_DATA_DIR).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    // kube's client (ring) and object_store (aws-lc-rs) both bring a rustls crypto provider:
    // one is chosen before either builds a TLS configuration.
    let _ = rustls::crypto::ring::default_provider().install_default();
    // `sluice __supervise -- …`: the step supervisor the local executor puts above each `sh`
    // step (before anything else: it must stay single-threaded).
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args
        .get(1)
        .is_some_and(|a| a == sluice_worker::supervisor::ARG)
    {
        let command = match args.get(2) {
            Some(dashes) if dashes == "--" => &args[3..],
            _ => &args[2..],
        };
        return sluice_worker::supervisor::main(command);
    }
    let cli = Cli::parse();
    if let Command::Lint { path } = &cli.command {
        return lint(path);
    }
    if let Command::Kube(KubeCommand::Manifests { org }) = &cli.command {
        return kube_manifests(cli.config.as_deref(), org);
    }
    if let Command::Kube(KubeCommand::Reconcile {
        once,
        every,
        poll_ms,
    }) = &cli.command
    {
        return kube_reconcile(
            cli.config.as_deref(),
            *once,
            Duration::from_secs(*every),
            Duration::from_millis(*poll_ms),
        );
    }
    let (role, overrides) = match &cli.command {
        Command::Serve(a) => (Role::Serve, overrides(a.bind, &a.dirs)),
        Command::Api(a) => (Role::Api, overrides(a.bind, &a.dirs)),
        Command::Worker(d) => (Role::Worker, overrides(None, d)),
        Command::Migrate(d) => (Role::Migrate, overrides(None, d)),
        Command::Lint { .. } | Command::Kube(_) => return ExitCode::from(2),
    };
    let settings = match Settings::load(cli.config.as_deref(), &overrides) {
        // Replicas see each other's writes only over a bus: their cache is off until `run`
        // has one.
        Ok(settings) if role == Role::Api => Settings {
            read_cache: false,
            ..settings
        },
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("sluice: {err}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&settings);
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    match runtime.block_on(run(role, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "sluice stopped with an error");
            eprintln!("sluice: {err}");
            let mut source = std::error::Error::source(err.as_ref());
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

/// `sluice lint PATH`.
fn lint(path: &std::path::Path) -> ExitCode {
    let source = match std::fs::read_to_string(path) {
        Ok(source) => source,
        Err(err) => {
            eprintln!("sluice: cannot read {}: {err}", path.display());
            return ExitCode::from(2);
        }
    };
    let result = sluice_core::pipeline::lint(&source);
    let file = path.display().to_string();
    for diagnostic in &result.diagnostics {
        eprintln!("{}", diagnostic.render(&file, &source));
    }
    if result.is_valid() {
        eprintln!("{file}: valid");
        ExitCode::SUCCESS
    } else {
        let errors = result
            .diagnostics
            .iter()
            .filter(|d| d.severity == sluice_core::pipeline::Severity::Error)
            .count();
        eprintln!("{file}: {errors} error(s)");
        ExitCode::FAILURE
    }
}

/// The settings a `kube` command runs with; bad ones are reported, exit code 2.
fn load_settings(config: Option<&std::path::Path>) -> Result<Settings, ExitCode> {
    Settings::load(config, &Overrides::default()).map_err(|err| {
        eprintln!("sluice: {err}");
        ExitCode::from(2)
    })
}

/// The multi-threaded runtime every long-running command uses.
fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(sluice_core::groovy::STACK_BYTES)
        .build()
        .map_err(|err| {
            eprintln!("sluice: cannot start the async runtime: {err}");
            ExitCode::FAILURE
        })
}

/// `sluice kube manifests --org SLUG`: exit 0 with the YAML on stdout, 1 when the org does not
/// exist or the database cannot be read, 2 on bad settings.
fn kube_manifests(config: Option<&std::path::Path>, slug: &str) -> ExitCode {
    let settings = match load_settings(config) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    let printed = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())
        .and_then(|runtime| {
            runtime
                .block_on(sluice_kube::commands::manifests_of(&settings, slug))
                .map_err(|e| e.to_string())
        });
    match printed {
        Ok(yaml) => {
            print!("{yaml}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("sluice: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `sluice kube reconcile`: with `--once`, exit 0 only when every org was applied.
fn kube_reconcile(
    config: Option<&std::path::Path>,
    once: bool,
    every: Duration,
    poll: Duration,
) -> ExitCode {
    let settings = match load_settings(config) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    init_tracing(&settings);
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        if !once {
            match Signals::install() {
                Ok(signals) => {
                    tokio::spawn(signals.stop_on_signal(shutdown.clone()));
                }
                Err(err) => {
                    eprintln!("sluice: cannot install signal handlers: {err}");
                    return ExitCode::FAILURE;
                }
            }
            println!("tenant provisioner running: a pass every {every:?} and on org changes");
        }
        match sluice_kube::commands::reconcile(settings, once, every, poll, shutdown).await {
            Ok(Some(pass)) => {
                println!("{}", pass.summary());
                for (org, err) in &pass.failed {
                    eprintln!("sluice: {org}: {err}");
                }
                if pass.failed.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Ok(None) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("sluice: {err}");
                ExitCode::FAILURE
            }
        }
    })
}

fn overrides(bind: Option<std::net::SocketAddr>, dirs: &DataDirArgs) -> Overrides {
    Overrides {
        bind,
        data_dir: dirs.data_dir.clone(),
    }
}

fn init_tracing(settings: &Settings) {
    let filter = EnvFilter::try_new(&settings.log).unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal, not in files, pipes or a log collector.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match settings.log_format {
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        LogFormat::Text => builder.init(),
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn run(role: Role, mut settings: Settings) -> Result<(), BoxError> {
    let Prepared {
        db,
        notes,
        secret_key,
    } = prepare(&settings, role).await?;
    if role == Role::Migrate {
        for note in &notes {
            tracing::info!("{note}");
        }
        let applied = sluice_core::db::applied_migrations(&db).await?;
        println!(
            "database is up to date (migrations applied: {})",
            applied.len()
        );
        return Ok(());
    }

    let shutdown = CancellationToken::new();
    // Installed before anything is announced, so a signal sent right after the banner is seen.
    let signals = Signals::install()?;
    tokio::spawn(signals.stop_on_signal(shutdown.clone()));

    let metrics = Metrics::new()?;
    // The other processes: writes, wake-ups and cache invalidations cross it. API replicas
    // keep their read cache only with one.
    let bus = sluice_core::bus::Bus::connect(&settings, &db, shutdown.clone()).await?;
    if let Some(bus) = &bus {
        bus.observe(&metrics);
        sluice_core::dispatch::attach_bus(bus.clone());
        if role == Role::Api {
            settings.read_cache = true;
        }
    }
    // The API binds first and says where to sign in before the other parts start talking.
    let api = if matches!(role, Role::Serve | Role::Api) {
        let secret_key = secret_key.clone().ok_or("the API needs a secret key")?;
        let mut state = AppState::new(&settings, db.clone(), metrics.clone(), &secret_key)?;
        if let Some(bus) = &bus {
            state.attach_bus(bus.clone());
        }
        state.repo_access.allow_local = settings.allow_local_repos.unwrap_or(role == Role::Serve);
        let app = Application::build(&settings, state)?;
        let url = settings.public_url(app.local_addr());
        println!("Sluice is listening on {url}");
        if settings.local_accounts {
            println!(
                "Sign in: open {url}/login and create an account with your email and a password."
            );
        } else {
            println!("Sign in: open {url}/login and use one of the configured OAuth providers.");
        }
        Some((app, url))
    } else {
        None
    };
    for note in &notes {
        tracing::info!("{note}");
    }
    let queue = sluice_core::queue::from_settings(&settings, &db).await?;
    let objects = sluice_core::objects::open(&settings)?;
    // Every role dispatches: the fair scheduler hands queued runs to the job queue (at once
    // when this process queued one, else on the next tick) and the reconciler refills a lost
    // queue. Passes are serialised in the database, so several processes are fine.
    let dispatch = sluice_core::dispatch::run(
        db.clone(),
        queue.clone(),
        metrics.clone(),
        DispatchSettings {
            every: Duration::from_millis(250),
            backlog: settings.dispatch_backlog,
            lease: settings.queue_settings().lease,
            repo_access: Some(sluice_core::git::RepoAccess {
                allow_local: settings.allow_local_repos.unwrap_or(role == Role::Serve),
                deny: settings.repo_deny(),
                mirror: None,
            }),
        },
        shutdown.clone(),
    );
    let dispatcher = tokio::spawn(dispatch);
    // The release runtime runs beside each worker: routers, instances, release controllers.
    let mut releases = None;
    let worker = if matches!(role, Role::Serve | Role::Worker) {
        let config = WorkerConfig {
            name: WorkerConfig::default_name(),
            concurrency: settings.worker_concurrency,
            lease: settings.queue_settings().lease,
            grace: Duration::from_secs(settings.shutdown_timeout_secs),
            workspace_root: settings.workspace_dir(),
            allow_local_repos: settings.allow_local_repos.unwrap_or(role == Role::Serve),
            repo_deny: settings.repo_deny(),
            keep_workspaces: settings.keep_workspaces,
            git_mirrors: settings.git_mirrors,
            log_max_bytes: settings.log_max_bytes,
        };
        let agents: Arc<dyn Agents> = match settings.executor {
            ExecutorKind::Local => {
                tracing::warn!(
                    "builds run on this host with this process's privileges (the local executor): \
                     for single-team installs only; multi-tenant installs use the Kubernetes executor"
                );
                let supervisor = std::env::current_exe()
                    .map_err(|e| format!("cannot find this binary for the step supervisor: {e}"))?;
                Arc::new(LocalAgents::new(supervisor))
            }
            ExecutorKind::Kubernetes => {
                tracing::info!("builds run in a pod per run in each tenant's namespace");
                sluice_kube::executor::start(
                    &settings,
                    db.clone(),
                    metrics.clone(),
                    shutdown.clone(),
                )
                .await?
            }
        };
        let parts = WorkerParts {
            db: db.clone(),
            queue: queue.clone(),
            metrics: metrics.clone(),
            objects: objects.clone(),
            keys: Keyring::new(secret_key.as_ref().ok_or("the worker needs a secret key")?),
        };
        let holder = config.name.clone();
        let worker = Worker::new(parts, config, Arc::new(JenkinsExecutor::new(agents)));
        let supervisor = std::env::current_exe()
            .map_err(|e| format!("cannot find this binary for the instance supervisor: {e}"))?;
        let mut release_config =
            sluice_release::Config::new(holder, settings.data_dir.join("releases"), supervisor);
        release_config.router_bind = settings.router_bind;
        release_config.thresholds = sluice_core::release::plan::Thresholds {
            min_success_rate: settings.release_min_success_rate,
            max_p99_ms: settings.release_max_p99_ms,
            min_requests: settings.release_min_requests,
        };
        release_config.ready_timeout = Duration::from_secs(settings.release_ready_timeout_secs);
        release_config.lease = Duration::from_secs(settings.release_lease_secs);
        if settings.executor == ExecutorKind::Kubernetes {
            // Releases run where builds do: a Deployment per release in the tenant's namespace.
            let client = sluice_kube::provisioner::client()
                .await
                .map_err(|e| format!("cannot reach Kubernetes: {e}"))?;
            release_config.kube = Some(sluice_release::kube_apps::KubeConfig {
                client,
                scale_down_delay: Duration::from_secs(settings.release_scale_down_delay_secs),
                cpu: settings.tenant_pod_cpu.clone(),
                memory: settings.tenant_pod_memory.clone(),
            });
        }
        releases = Some(
            sluice_release::Runtime::new(
                db.clone(),
                objects.clone(),
                metrics.clone(),
                release_config,
            )
            .start(shutdown.clone()),
        );
        Some(tokio::spawn(worker.run(shutdown.clone())))
    } else {
        None
    };

    if let Some((app, url)) = api {
        tracing::info!(%url, "listening");
        let served = app.run_until_stopped(shutdown.clone()).await;
        shutdown.cancel();
        served?;
    }
    if role == Role::Worker {
        // A worker serves only its probes and metrics.
        let secret_key = secret_key.ok_or("the worker needs a secret key")?;
        let state = AppState::new(&settings, db.clone(), metrics.clone(), &secret_key)?;
        let probes = Application::build_probes(&settings, state)?;
        let url = format!("http://{}", probes.local_addr());
        println!("Sluice worker is running; metrics at {url}/metrics");
        tracing::info!(%url, "worker probes listening");
        probes.run_until_stopped(shutdown.clone()).await?;
    }
    if let Some(worker) = worker {
        worker.await?;
    }
    if let Some(releases) = releases {
        releases.stop().await;
    }
    dispatcher.await?;
    db.close().await?;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// SIGTERM and SIGINT listeners.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Cancels `shutdown` on the first SIGINT or SIGTERM; a second signal exits at once.
    async fn stop_on_signal(mut self, shutdown: CancellationToken) {
        tokio::select! {
            _ = self.term.recv() => tracing::info!("SIGTERM received: shutting down"),
            _ = self.int.recv() => tracing::info!("SIGINT received: shutting down"),
        }
        shutdown.cancel();
        tokio::select! {
            _ = self.term.recv() => {},
            _ = self.int.recv() => {},
        }
        tracing::warn!("second signal: exiting without waiting");
        std::process::exit(130);
    }
}
