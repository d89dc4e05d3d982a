//! The Redis backend: one stream, one consumer group. Claims read new entries
//! (`XREADGROUP`), and now and then first take over entries whose consumer went quiet past the
//! lease (`XAUTOCLAIM`); heartbeats reset an entry's idle time (`XCLAIM … JUSTID`);
//! acknowledged entries are deleted; entries delivered too often move to a dead-letter stream.
//!
//! Redis's own CPU bounds the queue's throughput, so a job costs as few commands as its
//! semantics allow: `XADD` to publish, `XREADGROUP` to claim, one script (`XACK` and `XDEL`,
//! atomically) to acknowledge. Looking for abandoned entries is not done on every claim but
//! at most every quarter lease (and at most every second) per process, and at once after
//! this process handed an entry back; an entry whose worker died is still taken over within
//! its lease and that interval.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{Value, cmd};

use super::{Claimed, Job, Queue, QueueError, QueueResult, QueueSettings};

const GROUP: &str = "workers";

pub struct RedisQueue {
    client: redis::Client,
    /// For everything but blocking reads.
    conn: MultiplexedConnection,
    /// Idle connections for blocking reads: a `BLOCK`ing XREADGROUP holds its connection for
    /// the whole wait, so each claimer borrows its own instead of stalling the shared one.
    blocking: std::sync::Mutex<Vec<MultiplexedConnection>>,
    stream: String,
    dead: String,
    settings: QueueSettings,
    /// When a claim next looks for abandoned or handed-back entries.
    reclaim_at: Mutex<Instant>,
    ack_script: redis::Script,
}

/// Acknowledges and deletes an entry in one step: `KEYS[1]` the stream, `ARGV` the group and
/// the entry's id.
const ACK: &str = "redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) \
return redis.call('XDEL', KEYS[1], ARGV[2])";

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::Int(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `[id, [field, value, …]]` → (id, job).
fn entry(v: &Value) -> QueueResult<(String, Job)> {
    let Value::Array(parts) = v else {
        return Err(QueueError::Malformed(format!("{v:?}")));
    };
    let id = parts
        .first()
        .and_then(text)
        .ok_or_else(|| QueueError::Malformed("entry without id".into()))?;
    let Some(Value::Array(fields)) = parts.get(1) else {
        return Err(QueueError::Malformed(format!("entry {id} without fields")));
    };
    let mut job = Job {
        run_id: 0,
        org_id: 0,
    };
    for pair in fields.chunks(2) {
        let (Some(k), Some(val)) = (pair.first().and_then(text), pair.get(1).and_then(text)) else {
            continue;
        };
        let n: i64 = val
            .parse()
            .map_err(|_| QueueError::Malformed(format!("{k}={val}")))?;
        match k.as_str() {
            "run_id" => job.run_id = n,
            "org_id" => job.org_id = n,
            _ => {}
        }
    }
    Ok((id, job))
}

impl RedisQueue {
    /// Connects and makes sure the stream and its consumer group exist. `prefix` names the
    /// keys (`{prefix}:jobs`, `{prefix}:dead`), so tests and tenants of one Redis stay apart.
    pub async fn connect(
        url: &str,
        prefix: &str,
        settings: QueueSettings,
    ) -> QueueResult<RedisQueue> {
        let client = redis::Client::open(url)?;
        let conn = client.get_multiplexed_async_connection().await?;
        let queue = RedisQueue {
            client,
            conn,
            blocking: std::sync::Mutex::new(Vec::new()),
            dead: format!("{prefix}:dead"),
            stream: format!("{prefix}:jobs"),
            settings,
            reclaim_at: Mutex::new(Instant::now()),
            ack_script: redis::Script::new(ACK),
        };
        queue.ensure_group().await?;
        Ok(queue)
    }

    /// How often the entry has been delivered (from the pending list).
    async fn deliveries(&self, id: &str) -> QueueResult<u32> {
        let mut conn = self.conn.clone();
        let pending: Value = cmd("XPENDING")
            .arg(&self.stream)
            .arg(GROUP)
            .arg(id)
            .arg(id)
            .arg(1)
            .query_async(&mut conn)
            .await?;
        if let Value::Array(rows) = pending
            && let Some(Value::Array(row)) = rows.first()
            && let Some(Value::Int(n)) = row.get(3)
        {
            return Ok(*n as u32);
        }
        Ok(1)
    }

    async fn bury(&self, id: &str, job: Job) -> QueueResult<()> {
        let mut conn = self.conn.clone();
        let _: () = redis::pipe()
            .atomic()
            .cmd("XADD")
            .arg(&self.dead)
            .arg("*")
            .arg("run_id")
            .arg(job.run_id)
            .arg("org_id")
            .arg(job.org_id)
            .arg("id")
            .arg(id)
            .ignore()
            .cmd("XACK")
            .arg(&self.stream)
            .arg(GROUP)
            .arg(id)
            .ignore()
            .cmd("XDEL")
            .arg(&self.stream)
            .arg(id)
            .ignore()
            .query_async(&mut conn)
            .await?;
        tracing::warn!(
            entry = id,
            run = job.run_id,
            "job dead-lettered after too many deliveries"
        );
        Ok(())
    }

    /// Takes over one entry idle past the lease, if any.
    async fn reclaim(&self, consumer: &str) -> QueueResult<Option<(String, Job)>> {
        let mut conn = self.conn.clone();
        let reply: Value = cmd("XAUTOCLAIM")
            .arg(&self.stream)
            .arg(GROUP)
            .arg(consumer)
            .arg(self.settings.lease.as_millis() as u64)
            .arg("0-0")
            .arg("COUNT")
            .arg(1)
            .query_async(&mut conn)
            .await?;
        let Value::Array(parts) = reply else {
            return Ok(None);
        };
        match parts.get(1) {
            Some(Value::Array(entries)) => entries
                .iter()
                .find(|e| matches!(e, Value::Array(_)))
                .map(entry)
                .transpose(),
            _ => Ok(None),
        }
    }

    async fn read_new(&self, consumer: &str, wait: Duration) -> QueueResult<Option<(String, Job)>> {
        let idle = self.blocking.lock().ok().and_then(|mut pool| pool.pop());
        let mut conn = match idle {
            Some(conn) => conn,
            None => self.client.get_multiplexed_async_connection().await?,
        };
        let reply: Value = cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(wait.as_millis().max(1) as u64)
            .arg("STREAMS")
            .arg(&self.stream)
            .arg(">")
            .query_async(&mut conn)
            .await?;
        if let Ok(mut pool) = self.blocking.lock() {
            pool.push(conn);
        }
        // [[stream, [[id, fields]]]] (RESP2) or a map (RESP3); nil on timeout.
        let streams = match reply {
            Value::Array(streams) => streams
                .into_iter()
                .filter_map(|s| {
                    if let Value::Array(p) = s {
                        p.into_iter().nth(1)
                    } else {
                        None
                    }
                })
                .collect(),
            Value::Map(pairs) => pairs.into_iter().map(|(_, v)| v).collect(),
            _ => Vec::new(),
        };
        for entries in streams {
            if let Value::Array(entries) = entries
                && let Some(first) = entries.first()
            {
                return entry(first).map(Some);
            }
        }
        Ok(None)
    }
}

impl RedisQueue {
    async fn ensure_group(&self) -> QueueResult<()> {
        let mut conn = self.conn.clone();
        let created: redis::RedisResult<()> = cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.stream)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut conn)
            .await;
        match created {
            Err(err) if err.code() != Some("BUSYGROUP") => Err(err.into()),
            _ => Ok(()),
        }
    }

    /// Whether a claim should look for abandoned entries now.
    fn reclaim_due(&self) -> bool {
        self.reclaim_at
            .lock()
            .map_or(true, |at| Instant::now() >= *at)
    }

    /// Looks for abandoned entries again after `after`.
    fn reclaim_after(&self, after: Duration) {
        if let Ok(mut at) = self.reclaim_at.lock() {
            *at = Instant::now() + after;
        }
    }

    /// How often a process looks for entries whose lease ran out.
    fn reclaim_every(&self) -> Duration {
        (self.settings.lease / 4).min(Duration::from_secs(1))
    }

    async fn claim_once(&self, consumer: &str, wait: Duration) -> QueueResult<Option<Claimed>> {
        loop {
            let reclaimed = if self.reclaim_due() {
                let found = self.reclaim(consumer).await?;
                // While there are abandoned entries, look again at the next claim.
                if found.is_none() {
                    self.reclaim_after(self.reclaim_every());
                }
                found
            } else {
                None
            };
            let (found, fresh) = match reclaimed {
                Some(found) => (Some(found), false),
                None => (self.read_new(consumer, wait).await?, true),
            };
            let Some((id, job)) = found else {
                return Ok(None);
            };
            // A new entry read with `>` is on its first delivery; only a reclaimed one asks.
            let deliveries = if fresh {
                1
            } else {
                self.deliveries(&id).await?
            };
            if deliveries > self.settings.max_deliveries {
                self.bury(&id, job).await?;
                continue;
            }
            return Ok(Some(Claimed {
                job,
                handle: id,
                deliveries,
            }));
        }
    }
}

#[async_trait::async_trait]
impl Queue for RedisQueue {
    async fn publish(&self, job: Job) -> QueueResult<()> {
        let mut conn = self.conn.clone();
        let _: String = cmd("XADD")
            .arg(&self.stream)
            .arg("*")
            .arg("run_id")
            .arg(job.run_id)
            .arg("org_id")
            .arg(job.org_id)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    async fn claim(&self, consumer: &str, wait: Duration) -> QueueResult<Option<Claimed>> {
        match self.claim_once(consumer, wait).await {
            // The stream and its group vanished (Redis flushed): recreate, then go on.
            Err(QueueError::Redis(err)) if err.code() == Some("NOGROUP") => {
                self.ensure_group().await?;
                self.claim_once(consumer, wait).await
            }
            other => other,
        }
    }

    async fn ack(&self, claimed: &Claimed) -> QueueResult<()> {
        let mut conn = self.conn.clone();
        let _: Value = self
            .ack_script
            .key(&self.stream)
            .arg(GROUP)
            .arg(&claimed.handle)
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    async fn heartbeat(&self, claimed: &Claimed) -> QueueResult<()> {
        let mut conn = self.conn.clone();
        // Re-claiming for the same consumer with JUSTID resets the idle time without counting
        // a delivery.
        let owner: Value = cmd("XPENDING")
            .arg(&self.stream)
            .arg(GROUP)
            .arg(&claimed.handle)
            .arg(&claimed.handle)
            .arg(1)
            .query_async(&mut conn)
            .await?;
        let consumer = match owner {
            Value::Array(rows) => rows.first().and_then(|r| {
                if let Value::Array(r) = r {
                    r.get(1).and_then(text)
                } else {
                    None
                }
            }),
            _ => None,
        };
        if let Some(consumer) = consumer {
            let _: Value = cmd("XCLAIM")
                .arg(&self.stream)
                .arg(GROUP)
                .arg(consumer)
                .arg(0)
                .arg(&claimed.handle)
                .arg("JUSTID")
                .query_async(&mut conn)
                .await?;
        }
        Ok(())
    }

    async fn release(&self, claimed: &Claimed) -> QueueResult<()> {
        // Marked idle for a whole lease, so the next claim's XAUTOCLAIM takes it (in stream
        // order), with the delivery count set back to what it was before this claim.
        let mut conn = self.conn.clone();
        let _: Value = cmd("XCLAIM")
            .arg(&self.stream)
            .arg(GROUP)
            .arg("released")
            .arg(0)
            .arg(&claimed.handle)
            .arg("IDLE")
            .arg(self.settings.lease.as_millis() as u64)
            .arg("RETRYCOUNT")
            .arg(claimed.deliveries.saturating_sub(1))
            .arg("JUSTID")
            .query_async(&mut conn)
            .await?;
        // This process's next claim takes it back (others within their reclaim interval).
        self.reclaim_after(Duration::ZERO);
        Ok(())
    }

    async fn depth(&self) -> QueueResult<u64> {
        let mut conn = self.conn.clone();
        Ok(cmd("XLEN").arg(&self.stream).query_async(&mut conn).await?)
    }

    async fn dead_letters(&self) -> QueueResult<u64> {
        let mut conn = self.conn.clone();
        Ok(cmd("XLEN").arg(&self.dead).query_async(&mut conn).await?)
    }

    async fn run_ids(&self) -> QueueResult<std::collections::HashSet<i64>> {
        let mut conn = self.conn.clone();
        let entries: Value = cmd("XRANGE")
            .arg(&self.stream)
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await?;
        let Value::Array(entries) = entries else {
            return Ok(Default::default());
        };
        Ok(entries
            .iter()
            .filter_map(|e| entry(e).ok())
            .map(|(_, job)| job.run_id)
            .collect())
    }
}
