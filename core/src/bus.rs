//! Announcements between Sluice processes, so replicas act as one: a write that makes cached
//! reads stale, a run queued that a dispatcher should admit now. Over Redis pub/sub when
//! Redis is configured (channel `<queue prefix>:events`), else PostgreSQL LISTEN/NOTIFY
//! (channel `sluice_events`); a lone SQLite process needs none.
//!
//! Subscribers must not trust what they cached while the subscription is down: [`Bus::healthy`]
//! is false from the moment it drops until it is back, and a [`Event::Resynced`] then tells them
//! to flush.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement};
use secrecy::ExposeSecret;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::config::Settings;

/// The PostgreSQL channel.
const PG_CHANNEL: &str = "sluice_events";

/// How long a publish may hold up the request that made it.
const PUBLISH_TIMEOUT: Duration = Duration::from_millis(500);

/// What one process tells the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Something was written: cached reads are stale.
    Written,
    /// A run was queued: dispatchers admit it now rather than at their next tick.
    Queued,
    /// The subscription was (re)established: anything cached before may have missed events.
    Resynced,
}

impl Event {
    fn encode(self) -> &'static str {
        match self {
            Event::Written => "w",
            Event::Queued => "q",
            Event::Resynced => "r",
        }
    }

    fn decode(text: &str) -> Option<Event> {
        match text {
            "w" => Some(Event::Written),
            "q" => Some(Event::Queued),
            _ => None,
        }
    }
}

enum Publisher {
    /// Connected on first use: a Redis that is down at start delays nothing (its processes run
    /// uncached until it is back, as the subscription is down too).
    Redis(
        redis::Client,
        tokio::sync::OnceCell<redis::aio::ConnectionManager>,
    ),
    Postgres(DatabaseConnection),
}

struct Inner {
    publisher: Publisher,
    /// The Redis channel (unused on PostgreSQL).
    channel: String,
    events: broadcast::Sender<Event>,
    healthy: AtomicBool,
}

/// The connection to the other processes; cheap to clone.
#[derive(Clone)]
pub struct Bus(Arc<Inner>);

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bus {{ healthy: {} }}", self.healthy())
    }
}

impl Bus {
    /// The bus for these settings: Redis when configured, else PostgreSQL; None on SQLite
    /// without Redis. Its subscription runs (and reconnects) until `shutdown`; only a malformed
    /// Redis URL fails here.
    pub async fn connect(
        settings: &Settings,
        db: &DatabaseConnection,
        shutdown: CancellationToken,
    ) -> crate::Result<Option<Bus>> {
        let (events, _) = broadcast::channel(1024);
        if let Some(url) = &settings.redis_url {
            let client = redis::Client::open(url.expose_secret())?;
            let channel = format!("{}:events", settings.queue_prefix);
            let bus = Bus(Arc::new(Inner {
                publisher: Publisher::Redis(client.clone(), tokio::sync::OnceCell::new()),
                channel: channel.clone(),
                events,
                healthy: AtomicBool::new(false),
            }));
            tokio::spawn(bus.clone().follow_redis(client, channel, shutdown));
            return Ok(Some(bus));
        }
        if db.get_database_backend() == DatabaseBackend::Postgres
            && let Some(url) = &settings.database_url
        {
            let bus = Bus(Arc::new(Inner {
                publisher: Publisher::Postgres(db.clone()),
                channel: PG_CHANNEL.to_owned(),
                events,
                healthy: AtomicBool::new(false),
            }));
            tokio::spawn(
                bus.clone()
                    .follow_postgres(url.expose_secret().to_owned(), shutdown),
            );
            return Ok(Some(bus));
        }
        Ok(None)
    }

    /// Whether the subscription is up (what was cached can be trusted).
    pub fn healthy(&self) -> bool {
        self.0.healthy.load(Ordering::Acquire)
    }

    /// Every event from now on, from any process (this one included).
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.0.events.subscribe()
    }

    /// Tells every process (waits at most half a second; a failure is logged).
    pub async fn publish(&self, event: Event) {
        let sent = tokio::time::timeout(PUBLISH_TIMEOUT, async {
            match &self.0.publisher {
                Publisher::Redis(client, manager) => {
                    let mut conn = manager
                        .get_or_try_init(|| redis::aio::ConnectionManager::new(client.clone()))
                        .await
                        .map_err(|e| e.to_string())?
                        .clone();
                    redis::cmd("PUBLISH")
                        .arg(&self.0.channel)
                        .arg(event.encode())
                        .query_async::<i64>(&mut conn)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
                Publisher::Postgres(db) => db
                    .execute_raw(Statement::from_sql_and_values(
                        DatabaseBackend::Postgres,
                        "SELECT pg_notify($1, $2)",
                        [PG_CHANNEL.into(), event.encode().into()],
                    ))
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            }
        })
        .await;
        match sent {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::warn!(error = %err, ?event, "announcing to the other processes failed")
            }
            Err(_) => tracing::warn!(?event, "announcing to the other processes timed out"),
        }
    }

    fn up(&self) {
        self.0.healthy.store(true, Ordering::Release);
        let _ = self.0.events.send(Event::Resynced);
    }

    fn down(&self, error: &str) {
        if self.0.healthy.swap(false, Ordering::AcqRel) {
            tracing::warn!(%error, "the connection to the other processes dropped; reconnecting (caches are bypassed meanwhile)");
        }
    }

    fn deliver(&self, text: &str) {
        if let Some(event) = Event::decode(text) {
            let _ = self.0.events.send(event);
        }
    }

    async fn follow_redis(
        self,
        client: redis::Client,
        channel: String,
        shutdown: CancellationToken,
    ) {
        while !shutdown.is_cancelled() {
            let session = async {
                let mut pubsub = client.get_async_pubsub().await.map_err(|e| e.to_string())?;
                pubsub
                    .subscribe(&channel)
                    .await
                    .map_err(|e| e.to_string())?;
                self.up();
                let mut messages = pubsub.on_message();
                while let Some(message) = futures_util::StreamExt::next(&mut messages).await {
                    if let Ok(text) = message.get_payload::<String>() {
                        self.deliver(&text);
                    }
                }
                Err::<(), String>("subscription closed".into())
            };
            let ended = tokio::select! {
                _ = shutdown.cancelled() => return,
                ended = session => ended,
            };
            if let Err(err) = ended {
                self.down(&err);
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    }

    async fn follow_postgres(self, url: String, shutdown: CancellationToken) {
        use sea_orm::sqlx::postgres::PgListener;
        while !shutdown.is_cancelled() {
            let session = async {
                let mut listener = PgListener::connect(&url).await.map_err(|e| e.to_string())?;
                listener
                    .listen(PG_CHANNEL)
                    .await
                    .map_err(|e| e.to_string())?;
                self.up();
                loop {
                    // `try_recv` reports a dropped connection instead of reconnecting quietly
                    // (which would lose what was sent meanwhile).
                    match listener.try_recv().await.map_err(|e| e.to_string())? {
                        Some(n) => self.deliver(n.payload()),
                        None => return Err::<(), String>("connection lost".into()),
                    }
                }
            };
            let ended = tokio::select! {
                _ = shutdown.cancelled() => return,
                ended = session => ended,
            };
            if let Err(err) = ended {
                self.down(&err);
            }
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    }
}
