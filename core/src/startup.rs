//! Preparing a process to serve: data dir, secret key, database and schema.

use sea_orm::DatabaseConnection;
use secrecy::SecretString;

use crate::config::Settings;
use crate::secret_key::{self, KeySource};
use crate::{Error, Result, db};

/// Which process is starting; only the all-in-one `serve` may generate a secret key, since
/// scaled-out replicas must share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// API and worker in one process, embedded defaults.
    Serve,
    /// The HTTP API alone.
    Api,
    /// The queue consumer alone.
    Worker,
    /// Apply migrations and exit.
    Migrate,
}

/// What start-up produced, plus what it did that the operator should hear about.
pub struct Prepared {
    pub db: DatabaseConnection,
    pub secret_key: Option<SecretString>,
    /// Human sentences such as "created data dir ./sluice-data".
    pub notes: Vec<String>,
}

/// Creates the data dir when the embedded database lives there, loads or generates the secret
/// key, connects to the database and applies pending migrations.
pub async fn prepare(settings: &Settings, role: Role) -> Result<Prepared> {
    if matches!(role, Role::Api | Role::Worker) && settings.secret_key.is_none() {
        return Err(Error::InvalidSetting {
            field: "secret_key",
            message: "set SLUICE_SECRET_KEY: every api and worker replica must share one key"
                .into(),
        });
    }
    let mut notes = Vec::new();
    let needs_data_dir = settings.database_url.is_none() || role == Role::Serve;
    if needs_data_dir && !settings.data_dir.exists() {
        std::fs::create_dir_all(&settings.data_dir).map_err(|source| Error::Io {
            action: "creating data dir",
            path: settings.data_dir.clone(),
            source,
        })?;
        notes.push(format!("created data dir {}", settings.data_dir.display()));
    }

    let secret_key = match role {
        Role::Migrate => None,
        Role::Serve => {
            let (key, source) =
                secret_key::load_or_generate(settings.secret_key.as_ref(), &settings.data_dir)?;
            if let KeySource::Generated(path) = source {
                notes.push(format!(
                    "generated a secret key into {} (keep it safe)",
                    path.display()
                ));
            }
            Some(key)
        }
        Role::Api | Role::Worker => settings.secret_key.clone(),
    };

    let db = db::connect(&settings.database_url(), settings.db_max_connections).await?;
    db::migrate(&db).await?;
    Ok(Prepared {
        db,
        secret_key,
        notes,
    })
}
