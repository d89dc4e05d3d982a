//! The embedded backend: jobs are rows of `queue_jobs` in Sluice's own database (SQLite for
//! `sluice serve`), claimed with one atomic UPDATE each.

use std::time::{Duration, Instant};

use chrono::Utc;
use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, Statement, Value};

use super::{Claimed, Job, Queue, QueueError, QueueResult, QueueSettings};

/// How often an idle claim looks again (a publish in this process wakes it at once).
const POLL: Duration = Duration::from_millis(25);

/// Publishes in this process: idle claims wake at once instead of at their next poll.
static PUBLISHED: std::sync::LazyLock<tokio::sync::Notify> =
    std::sync::LazyLock::new(tokio::sync::Notify::new);

pub struct EmbeddedQueue {
    db: DatabaseConnection,
    settings: QueueSettings,
}

impl EmbeddedQueue {
    pub fn new(db: DatabaseConnection, settings: QueueSettings) -> EmbeddedQueue {
        EmbeddedQueue { db, settings }
    }

    fn sql(&self, sqlite: &str) -> String {
        crate::db::placeholders(self.db.get_database_backend(), sqlite)
    }

    async fn exec(&self, sql: &str, values: Vec<Value>) -> QueueResult<u64> {
        let backend = self.db.get_database_backend();
        Ok(self
            .db
            .execute_raw(Statement::from_sql_and_values(
                backend,
                self.sql(sql),
                values,
            ))
            .await?
            .rows_affected())
    }

    async fn scalar(&self, sql: &str) -> QueueResult<u64> {
        let backend = self.db.get_database_backend();
        let row = self
            .db
            .query_one_raw(Statement::from_string(backend, self.sql(sql)))
            .await?;
        Ok(row
            .map(|r| r.try_get_by_index::<i64>(0))
            .transpose()?
            .unwrap_or(0)
            .max(0) as u64)
    }

    /// One attempt: take the oldest free (or lease-expired) job, or dead-letter it.
    async fn try_claim(&self, consumer: &str) -> QueueResult<Option<Claimed>> {
        let now = Utc::now();
        let lease_until = now
            + chrono::Duration::from_std(self.settings.lease)
                .unwrap_or(chrono::Duration::seconds(60));
        let backend = self.db.get_database_backend();
        let pick = "SELECT id FROM queue_jobs WHERE dead = ? AND (claimed_by IS NULL OR lease_until < ?) ORDER BY id LIMIT 1";
        let pick = match backend {
            DatabaseBackend::Postgres => format!("{pick} FOR UPDATE SKIP LOCKED"),
            _ => pick.to_owned(),
        };
        let sql = format!(
            "UPDATE queue_jobs SET claimed_by = ?, lease_until = ?, deliveries = deliveries + 1 \
             WHERE id = ({pick}) AND (claimed_by IS NULL OR lease_until < ?) \
             RETURNING id, run_id, org_id, deliveries"
        );
        let values: Vec<Value> = vec![
            consumer.into(),
            lease_until.into(),
            false.into(),
            now.into(),
            now.into(),
        ];
        let Some(row) = self
            .db
            .query_one_raw(Statement::from_sql_and_values(
                backend,
                self.sql(&sql),
                values,
            ))
            .await?
        else {
            return Ok(None);
        };
        let id: i64 = row.try_get_by_index(0)?;
        let deliveries: i32 = row.try_get_by_index(3)?;
        if deliveries as u32 > self.settings.max_deliveries {
            self.exec(
                "UPDATE queue_jobs SET dead = ?, claimed_by = NULL WHERE id = ?",
                vec![true.into(), id.into()],
            )
            .await?;
            tracing::warn!(
                job = id,
                deliveries,
                "job dead-lettered after too many deliveries"
            );
            return Box::pin(self.try_claim(consumer)).await;
        }
        Ok(Some(Claimed {
            job: Job {
                run_id: row.try_get_by_index(1)?,
                org_id: row.try_get_by_index(2)?,
            },
            handle: id.to_string(),
            deliveries: deliveries as u32,
        }))
    }
}

fn handle(claimed: &Claimed) -> QueueResult<i64> {
    claimed
        .handle
        .parse()
        .map_err(|_| QueueError::Malformed(claimed.handle.clone()))
}

#[async_trait::async_trait]
impl Queue for EmbeddedQueue {
    async fn publish(&self, job: Job) -> QueueResult<()> {
        self.exec(
            "INSERT INTO queue_jobs (run_id, org_id, enqueued_at, deliveries, dead) VALUES (?, ?, ?, ?, ?)",
            vec![job.run_id.into(), job.org_id.into(), Utc::now().into(), 0i32.into(), false.into()],
        )
        .await?;
        PUBLISHED.notify_waiters();
        Ok(())
    }

    async fn claim(&self, consumer: &str, wait: Duration) -> QueueResult<Option<Claimed>> {
        let deadline = Instant::now() + wait;
        loop {
            // Registered before looking, so a publish between the look and the wait is seen.
            let published = PUBLISHED.notified();
            tokio::pin!(published);
            published.as_mut().enable();
            if let Some(claimed) = self.try_claim(consumer).await? {
                return Ok(Some(claimed));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            let nap = POLL.min(deadline.saturating_duration_since(Instant::now()));
            tokio::select! {
                _ = published => {}
                _ = tokio::time::sleep(nap) => {}
            }
        }
    }

    async fn ack(&self, claimed: &Claimed) -> QueueResult<()> {
        self.exec(
            "DELETE FROM queue_jobs WHERE id = ?",
            vec![handle(claimed)?.into()],
        )
        .await?;
        Ok(())
    }

    async fn heartbeat(&self, claimed: &Claimed) -> QueueResult<()> {
        let lease_until = Utc::now()
            + chrono::Duration::from_std(self.settings.lease)
                .unwrap_or(chrono::Duration::seconds(60));
        self.exec(
            "UPDATE queue_jobs SET lease_until = ? WHERE id = ? AND deliveries = ?",
            vec![
                lease_until.into(),
                handle(claimed)?.into(),
                (claimed.deliveries as i32).into(),
            ],
        )
        .await?;
        Ok(())
    }

    async fn release(&self, claimed: &Claimed) -> QueueResult<()> {
        self.exec(
            "UPDATE queue_jobs SET claimed_by = NULL, lease_until = NULL, deliveries = deliveries - 1 \
             WHERE id = ? AND deliveries = ?",
            vec![
                handle(claimed)?.into(),
                (claimed.deliveries as i32).into(),
            ],
        )
        .await?;
        Ok(())
    }

    async fn depth(&self) -> QueueResult<u64> {
        self.scalar("SELECT COUNT(*) FROM queue_jobs WHERE dead = false")
            .await
    }

    async fn dead_letters(&self) -> QueueResult<u64> {
        self.scalar("SELECT COUNT(*) FROM queue_jobs WHERE dead = true")
            .await
    }

    async fn run_ids(&self) -> QueueResult<std::collections::HashSet<i64>> {
        let backend = self.db.get_database_backend();
        let sql = "SELECT run_id FROM queue_jobs WHERE dead = false";
        let rows = self
            .db
            .query_all_raw(Statement::from_string(backend, sql))
            .await?;
        Ok(rows
            .iter()
            .filter_map(|r| r.try_get_by_index::<i64>(0).ok())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    async fn queue(lease: Duration) -> (EmbeddedQueue, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("q.db").display());
        let db = crate::db::connect(&url.into(), 4).await.unwrap();
        crate::db::migrate(&db).await.unwrap();
        (
            EmbeddedQueue::new(
                db,
                QueueSettings {
                    lease,
                    max_deliveries: 3,
                },
            ),
            dir,
        )
    }

    #[tokio::test]
    async fn embedded_fifo_ack_and_depth() {
        let (q, _dir) = queue(Duration::from_secs(30)).await;
        super::super::conformance::fifo_ack_and_depth(&q).await;
    }

    #[tokio::test]
    async fn embedded_leases_reclaim_and_dead_letters() {
        let lease = Duration::from_millis(500);
        let (q, _dir) = queue(lease).await;
        super::super::conformance::leases_reclaim_and_dead_letters(&q, lease).await;
    }
}
