//! Whether the backing services answer: the database always, Redis when configured.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use tokio::sync::Mutex;

use crate::Result;

/// How long one dependency may take to answer before it counts as down.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// The state of one dependency.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Check {
    /// `database` or `queue`.
    pub component: &'static str,
    pub ok: bool,
    /// Why it is not ok; never contains credentials.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Probes the dependencies of this process, reusing one Redis connection between probes.
pub struct Readiness {
    db: DatabaseConnection,
    redis: Option<(
        redis::Client,
        Mutex<Option<redis::aio::MultiplexedConnection>>,
    )>,
}

impl Readiness {
    /// Builds the probe; a malformed Redis URL is an error now, an unreachable one only later.
    pub fn new(db: DatabaseConnection, redis_url: Option<&SecretString>) -> Result<Readiness> {
        let redis = match redis_url {
            Some(url) => Some((redis::Client::open(url.expose_secret())?, Mutex::new(None))),
            None => None,
        };
        Ok(Readiness { db, redis })
    }

    /// Checks every dependency, each bounded by a timeout.
    pub async fn check(&self) -> Vec<Check> {
        let mut checks = vec![self.check_database().await];
        if let Some((client, conn)) = &self.redis {
            checks.push(check_redis(client, conn).await);
        }
        checks
    }

    async fn check_database(&self) -> Check {
        let backend = self.db.get_database_backend();
        let ping = self.db.execute_unprepared("SELECT 1");
        let error = match tokio::time::timeout(CHECK_TIMEOUT, ping).await {
            Ok(Ok(_)) => None,
            Ok(Err(err)) => Some(format!(
                "{backend:?} did not answer: {}",
                describe_db_error(&err)
            )),
            Err(_) => Some(format!(
                "{backend:?} did not answer within {CHECK_TIMEOUT:?}"
            )),
        };
        Check {
            component: "database",
            ok: error.is_none(),
            error,
        }
    }
}

async fn check_redis(
    client: &redis::Client,
    cached: &Mutex<Option<redis::aio::MultiplexedConnection>>,
) -> Check {
    let probe = async {
        let mut guard = cached.lock().await;
        let mut conn = match guard.take() {
            Some(conn) => conn,
            None => client.get_multiplexed_async_connection().await?,
        };
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        *guard = Some(conn);
        Ok::<(), redis::RedisError>(())
    };
    let error = match tokio::time::timeout(CHECK_TIMEOUT, probe).await {
        Ok(Ok(())) => None,
        Ok(Err(err)) => Some(format!(
            "redis did not answer: {}",
            describe_redis_error(&err)
        )),
        Err(_) => Some(format!("redis did not answer within {CHECK_TIMEOUT:?}")),
    };
    Check {
        component: "queue",
        ok: error.is_none(),
        error,
    }
}

/// A short description without connection strings.
fn describe_db_error(err: &sea_orm::DbErr) -> &'static str {
    match err {
        sea_orm::DbErr::ConnectionAcquire(_) => "no connection could be acquired",
        sea_orm::DbErr::Conn(_) => "connection failed",
        _ => "query failed",
    }
}

/// A short description of a Redis failure without the URL.
fn describe_redis_error(err: &redis::RedisError) -> String {
    if err.is_connection_refusal() {
        "connection refused".to_owned()
    } else if err.is_timeout() {
        "timed out".to_owned()
    } else {
        format!("{:?}", err.kind())
    }
}
