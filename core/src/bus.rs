//! Announcements between Sluice processes, so replicas act as one: a write that makes cached
//! reads stale, a run queued that a dispatcher should admit now, a run's log flushed by a
//! worker that followers on an API replica should read now. Over Redis pub/sub when
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

/// What crosses the channel: an [`Event`], or a log flush (`f<run>:<origin>`, which goes to
/// [`crate::logs`] rather than to subscribers, and which the process that flushed ignores).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Message {
    Event(Event),
    Flushed { run: i64, origin: u64 },
}

impl Message {
    fn encode(self) -> String {
        match self {
            Message::Event(Event::Written) => "w".into(),
            Message::Event(Event::Queued) => "q".into(),
            Message::Event(Event::Resynced) => "r".into(),
            Message::Flushed { run, origin } => format!("f{run}:{origin:x}"),
        }
    }

    fn decode(text: &str) -> Option<Message> {
        match text {
            "w" => Some(Message::Event(Event::Written)),
            "q" => Some(Message::Event(Event::Queued)),
            _ => {
                let (run, origin) = text.strip_prefix('f')?.split_once(':')?;
                Some(Message::Flushed {
                    run: run.parse().ok()?,
                    origin: u64::from_str_radix(origin, 16).ok()?,
                })
            }
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
    /// This process, in the log flushes it announces.
    origin: u64,
    /// Counts what arrives from the other processes, once [`Bus::observe`] is called.
    received: std::sync::OnceLock<prometheus::IntCounterVec>,
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
                origin: rand::random(),
                received: std::sync::OnceLock::new(),
            }));
            tokio::spawn(bus.clone().follow_redis(client, channel, shutdown.clone()));
            tokio::spawn(bus.clone().announce_flushes(shutdown));
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
                origin: rand::random(),
                received: std::sync::OnceLock::new(),
            }));
            tokio::spawn(
                bus.clone()
                    .follow_postgres(url.expose_secret().to_owned(), shutdown.clone()),
            );
            tokio::spawn(bus.clone().announce_flushes(shutdown));
            return Ok(Some(bus));
        }
        Ok(None)
    }

    /// Counts received announcements in `metrics` (`sluice_bus_messages_received_total`).
    pub fn observe(&self, metrics: &crate::metrics::Metrics) {
        let _ = self.0.received.set(metrics.bus_messages.clone());
    }

    fn count(&self, kind: &str) {
        if let Some(received) = self.0.received.get() {
            received.with_label_values(&[kind]).inc();
        }
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
        self.send(Message::Event(event)).await;
    }

    async fn send(&self, message: Message) {
        let encoded = message.encode();
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
                        .arg(&encoded)
                        .query_async::<i64>(&mut conn)
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
                Publisher::Postgres(db) => db
                    .execute_raw(Statement::from_sql_and_values(
                        DatabaseBackend::Postgres,
                        "SELECT pg_notify($1, $2)",
                        [PG_CHANNEL.into(), encoded.as_str().into()],
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
                tracing::warn!(error = %err, ?message, "announcing to the other processes failed")
            }
            Err(_) => tracing::warn!(?message, "announcing to the other processes timed out"),
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
        match Message::decode(text) {
            Some(Message::Event(event)) => {
                self.count(match event {
                    Event::Written => "written",
                    Event::Queued => "queued",
                    Event::Resynced => "resynced",
                });
                let _ = self.0.events.send(event);
            }
            Some(Message::Flushed { run, origin }) if origin != self.0.origin => {
                self.count("log_flushed");
                crate::logs::flushed_elsewhere(run);
            }
            _ => {}
        }
    }

    /// Announces this process's log flushes, so followers on other processes read the new
    /// lines at once (their one-second poll is only the fallback). Flushes that pile up while
    /// one is announced go out once per run.
    async fn announce_flushes(self, shutdown: CancellationToken) {
        use tokio::sync::broadcast::error::{RecvError, TryRecvError};
        let mut flushed = crate::logs::subscribe_here();
        loop {
            let first = tokio::select! {
                _ = shutdown.cancelled() => return,
                got = flushed.recv() => got,
            };
            let mut runs = match first {
                Ok(run) => vec![run],
                Err(RecvError::Lagged(_)) => Vec::new(),
                Err(RecvError::Closed) => return,
            };
            loop {
                match flushed.try_recv() {
                    Ok(run) if !runs.contains(&run) => runs.push(run),
                    Ok(_) | Err(TryRecvError::Lagged(_)) => {}
                    Err(_) => break,
                }
            }
            for run in runs {
                let origin = self.0.origin;
                self.send(Message::Flushed { run, origin }).await;
            }
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

#[cfg(test)]
mod tests {
    use super::{Event, Message};

    #[test]
    fn messages_survive_the_channel_and_garbage_is_ignored() {
        for message in [
            Message::Event(Event::Written),
            Message::Event(Event::Queued),
            Message::Flushed {
                run: 42,
                origin: u64::MAX,
            },
        ] {
            assert_eq!(Message::decode(&message.encode()), Some(message));
        }
        // Resynced is local (each process learns it from its own subscription).
        assert_eq!(Message::decode("r"), None);
        for garbage in ["", "x", "f", "f12", "f:1", "fx:1", "f1:zz", "f1:"] {
            assert_eq!(Message::decode(garbage), None, "{garbage:?}");
        }
    }
}
