//! Getting queued runs into the job queue, and keeping them there: each pass the fair
//! scheduler (`schedule`) admits runs and they are published; a reconciler republishes
//! admitted runs whose job vanished (Redis flushed, a crash between commit and publish) and
//! fails runs whose worker is gone for good. The database is the source of truth; the queue
//! may be lost.

use std::sync::LazyLock;
use std::time::Duration;

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::entities::run;
use crate::queue::{Job, Queue};

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("database error")]
    Database(#[from] sea_orm::DbErr),
    #[error("queue error")]
    Queue(#[from] crate::queue::QueueError),
    #[error(transparent)]
    Store(#[from] crate::Error),
}

/// Wakes this process's dispatcher before its next tick: a run was queued or a slot freed.
static WAKE: LazyLock<Notify> = LazyLock::new(Notify::new);

/// The other processes, when there can be any: a wake-up here wakes their dispatchers too.
static BUS: std::sync::OnceLock<crate::bus::Bus> = std::sync::OnceLock::new();

/// Wakes the dispatchers of every process on `bus`, not only this one's.
pub fn attach_bus(bus: crate::bus::Bus) {
    let _ = BUS.set(bus);
}

/// Asks the dispatcher to run a pass now (cheap; many calls before a pass make one pass), in
/// every process when they share a bus: a run queued on an API replica is admitted by
/// whichever dispatcher passes first, without waiting for a tick.
pub fn wake() {
    wake_here();
    if let Some(bus) = BUS.get()
        && let Ok(runtime) = tokio::runtime::Handle::try_current()
    {
        let bus = bus.clone();
        runtime.spawn(async move { bus.publish(crate::bus::Event::Queued).await });
    }
}

fn wake_here() {
    WAKE.notify_waiters();
    WAKE.notify_one();
}

/// Admits what the scheduler allows (at most `backlog` runs waiting in the queue) and
/// publishes it; returns how many. A crash between admitting and publishing leaves admitted
/// runs the reconciler republishes; workers treat a run that is no longer queued as done, so
/// a duplicate job is harmless.
pub async fn publish_outbox(
    db: &DatabaseConnection,
    queue: &dyn Queue,
    backlog: u32,
) -> Result<usize, DispatchError> {
    let admitted = crate::schedule::admit(db, backlog).await?;
    for admission in &admitted {
        queue.publish(admission.job).await?;
    }
    Ok(admitted.len())
}

/// What a reconciler pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reconciled {
    /// Admitted runs whose job was missing from the queue, published again.
    pub republished: usize,
    /// Runs whose worker stopped heart-beating and whose job is gone, marked failed.
    pub abandoned: usize,
}

/// Republishes runs still `queued`, admitted longer ago than `grace`, whose job is no longer
/// in the queue; marks failed the runs `running` without a heartbeat for `stale` whose job is
/// gone too (dead-lettered or lost), so nothing stays running forever.
pub async fn reconcile(
    db: &DatabaseConnection,
    queue: &dyn Queue,
    grace: Duration,
    stale: Duration,
) -> Result<Reconciled, DispatchError> {
    let cutoff = Utc::now() - chrono::Duration::from_std(grace).unwrap_or_default();
    // Queued runs the scheduler admitted (outbox published) longer ago than `grace`: from the
    // runs in play and the waiting outbox entries (`ix_runs_active`, `ix_run_outbox_waiting`),
    // so the cost does not grow with ended runs.
    let backend = db.get_database_backend();
    // Materialised first: otherwise PostgreSQL may join every published entry before
    // narrowing to the few admitted runs (237 ms instead of 5 on a million runs).
    let sql = "WITH admitted AS MATERIALIZED (SELECT r.id, r.org_id FROM runs r \
           WHERE r.status = 'queued' AND NOT EXISTS \
           (SELECT 1 FROM run_outbox w WHERE w.run_id = r.id AND w.published_at IS NULL)) \
         SELECT a.id, a.org_id FROM admitted a WHERE EXISTS \
           (SELECT 1 FROM run_outbox o WHERE o.run_id = a.id AND o.published_at < ?) \
         ORDER BY a.id";
    let sql = crate::db::placeholders(backend, sql);
    let admitted = db
        .query_all_raw(sea_orm::Statement::from_sql_and_values(
            backend,
            sql,
            [cutoff.into()],
        ))
        .await
        .map_err(crate::Error::from)?
        .iter()
        .map(|row| Ok((row.try_get_by_index(0)?, row.try_get_by_index(1)?)))
        .collect::<Result<Vec<(i64, i64)>, sea_orm::DbErr>>()
        .map_err(crate::Error::from)?;
    let stale_cutoff = Utc::now() - chrono::Duration::from_std(stale).unwrap_or_default();
    let stalled = run::Entity::find()
        .filter(run::Column::Status.is_in(["running", "waiting"]))
        .filter(run::Column::HeartbeatAt.lt(stale_cutoff))
        .all(db)
        .await?;
    let mut done = Reconciled::default();
    if admitted.is_empty() && stalled.is_empty() {
        return Ok(done);
    }
    let in_queue = queue.run_ids().await?;
    for &(run_id, org_id) in admitted.iter().filter(|(id, _)| !in_queue.contains(id)) {
        tracing::warn!(
            run = run_id,
            "queued run missing from the queue: republishing"
        );
        queue.publish(Job { run_id, org_id }).await?;
        done.republished += 1;
    }
    for r in stalled.iter().filter(|r| !in_queue.contains(&r.id)) {
        let reason = format!(
            "worker {} stopped heart-beating and the job is gone from the queue",
            r.worker.as_deref().unwrap_or("?")
        );
        let changed = run::Entity::update_many()
            .col_expr(run::Column::Status, Expr::value("failed"))
            .col_expr(run::Column::FinishedAt, Expr::value(Utc::now()))
            .col_expr(run::Column::Reason, Expr::value(reason.clone()))
            .filter(run::Column::Id.eq(r.id))
            .filter(run::Column::Status.is_in(["running", "waiting"]))
            .filter(run::Column::Attempt.eq(r.attempt))
            .exec(db)
            .await?
            .rows_affected;
        if changed == 1 {
            tracing::warn!(run = r.id, "{reason}: marked failed");
            done.abandoned += 1;
        }
    }
    Ok(done)
}

/// How the dispatcher paces itself.
#[derive(Debug, Clone)]
pub struct DispatchSettings {
    /// A pass at least this often (and whenever `wake` is called).
    pub every: Duration,
    /// Runs waiting in the queue at most.
    pub backlog: u32,
    /// The queue's lease: a run without a heartbeat for two leases is abandoned.
    pub lease: Duration,
    /// Where cron runs' refs are looked up (None: their checkout resolves them).
    pub repo_access: Option<crate::git::RepoAccess>,
}

/// Admits and publishes every `every` (or when woken), reconciles every tenth pass and
/// reports the queue's depth, until cancelled.
pub async fn run(
    db: DatabaseConnection,
    queue: std::sync::Arc<dyn Queue>,
    metrics: crate::metrics::Metrics,
    settings: DispatchSettings,
    shutdown: CancellationToken,
) {
    let mut pass = 0u64;
    // Wake-ups from other processes (a run queued on another replica).
    let mut events = BUS.get().map(|bus| bus.subscribe());
    // Cron slots are fired for (cron_after, now]; a fresh process looks two minutes back.
    let mut cron_after = Utc::now() - chrono::Duration::minutes(2);
    loop {
        let now = Utc::now();
        if now - cron_after >= chrono::Duration::seconds(5) {
            match crate::cron_runs::fire_due(&db, cron_after, now, settings.repo_access.as_ref())
                .await
            {
                Ok(_) => cron_after = now,
                Err(err) => tracing::error!(error = %err, "firing cron triggers failed"),
            }
        }
        if let Err(err) = publish_outbox(&db, queue.as_ref(), settings.backlog).await {
            tracing::error!(error = %err, "publishing queued runs failed");
        }
        // Housekeeping, every hundredth pass (25 s): waiting outbox entries of runs cancelled
        // before admission (`admit` skips them meanwhile).
        if pass.is_multiple_of(100)
            && let Err(err) = crate::schedule::close_cancelled(&db).await
        {
            tracing::error!(error = %err, "closing cancelled runs' outbox entries failed");
        }
        if pass.is_multiple_of(10)
            && let Err(err) =
                reconcile(&db, queue.as_ref(), settings.every * 10, settings.lease * 2).await
        {
            tracing::error!(error = %err, "reconciling runs failed");
        }
        match queue.depth().await {
            Ok(depth) => metrics
                .queue_depth
                .set(i64::try_from(depth).unwrap_or(i64::MAX)),
            Err(err) => tracing::warn!(error = %err, "reading the queue depth failed"),
        }
        pass += 1;
        let remote = async {
            match events.as_mut() {
                Some(events) => loop {
                    match events.recv().await {
                        Ok(crate::bus::Event::Queued | crate::bus::Event::Resynced)
                        | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                        Ok(crate::bus::Event::Written) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                            std::future::pending::<()>().await
                        }
                    }
                },
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = WAKE.notified() => {}
            _ = remote => {}
            _ = tokio::time::sleep(settings.every) => {}
        }
    }
}
