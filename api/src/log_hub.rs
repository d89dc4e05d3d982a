//! Live log fan-out. However many people follow a run, this process runs one tail for it:
//! the tail reads the run's chunk index from the database when the worker flushes (at once
//! for a worker in this process, within a second for one elsewhere) and publishes it on a
//! `watch` channel. Followers read the chunks themselves through a small shared cache and
//! send the stored JSON lines as they are (no parsing), so a hundred followers cost about one
//! follower's database and storage reads, and never touch the build.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use object_store::{GetOptions, ObjectStore};
use sea_orm::{DatabaseConnection, EntityTrait};
use sluice_core::entities::run;
use sluice_core::logs::{self, LogLine};
use sluice_core::objects::Objects;
use tokio::sync::watch;

/// A chunk of the log: lines `first_line .. first_line + lines`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkMeta {
    pub seq: i32,
    pub first_line: i64,
    pub lines: i32,
}

/// What a follower sees of a run's log.
#[derive(Debug, Clone, Default)]
pub struct Tail {
    pub chunks: Arc<Vec<ChunkMeta>>,
    /// Set once the run has ended and every chunk is listed: the closing line and status.
    pub end: Option<(LogLine, String)>,
}

/// Chunks kept in memory for followers (64 KiB each at most).
const CACHE_CHUNKS: usize = 256;

pub struct LogHub {
    db: DatabaseConnection,
    objects: Objects,
    tails: Mutex<HashMap<i64, watch::Receiver<Tail>>>,
    cache: Mutex<ChunkCache>,
}

/// Chunks by (run, seq), and their insertion order for eviction. A chunk is read once however
/// many followers ask for it at the same moment: they wait on the same cell.
type ChunkCache = (
    HashMap<(i64, i32), Arc<tokio::sync::OnceCell<Bytes>>>,
    VecDeque<(i64, i32)>,
);

pub fn ended(r: &run::Model) -> bool {
    matches!(
        r.status.as_str(),
        "succeeded" | "unstable" | "failed" | "cancelled"
    )
}

/// Jenkins' closing line: `Finished: SUCCESS`, or the result and why.
pub fn finished_line(r: &run::Model, n: i64) -> LogLine {
    let word = match r.status.as_str() {
        "succeeded" => "SUCCESS",
        "unstable" => "UNSTABLE",
        "failed" => "FAILURE",
        _ => "ABORTED",
    };
    let text = match r.reason.as_deref().filter(|r| !r.is_empty()) {
        Some(reason) if r.status != "succeeded" => {
            format!(
                "Finished: {word} ({})",
                reason.lines().next().unwrap_or_default()
            )
        }
        _ => format!("Finished: {word}"),
    };
    // Retention deleted the lines before it: say so rather than show an empty log.
    let text = match r.discarded_at {
        Some(at) => format!(
            "{text} (the log was discarded by the retention policy on {})",
            at.format("%Y-%m-%d")
        ),
        None => text,
    };
    LogLine {
        n,
        at: r.finished_at.unwrap_or_else(chrono::Utc::now),
        stage: None,
        step: None,
        error: r.status == "failed",
        text,
    }
}

impl LogHub {
    pub fn new(db: DatabaseConnection, objects: Objects) -> LogHub {
        LogHub {
            db,
            objects,
            tails: Mutex::new(HashMap::new()),
            cache: Mutex::new((HashMap::new(), VecDeque::new())),
        }
    }

    /// The run's tail, started if nobody follows it yet.
    pub fn follow(self: &Arc<Self>, run_id: i64) -> watch::Receiver<Tail> {
        let Ok(mut tails) = self.tails.lock() else {
            return watch::channel(Tail::default()).1;
        };
        if let Some(rx) = tails.get(&run_id)
            && rx.has_changed().is_ok()
        {
            return rx.clone();
        }
        let (tx, rx) = watch::channel(Tail::default());
        tails.insert(run_id, rx.clone());
        let hub = self.clone();
        tokio::spawn(async move {
            hub.tail(run_id, tx).await;
            if let Ok(mut tails) = hub.tails.lock()
                && tails
                    .get(&run_id)
                    .is_some_and(|rx| rx.has_changed().is_err())
            {
                tails.remove(&run_id);
            }
        });
        rx
    }

    async fn tail(&self, run_id: i64, tx: watch::Sender<Tail>) {
        let mut flushed = logs::subscribe();
        let mut next = 0i64;
        let mut idle_rounds = 0u32;
        loop {
            // Only the hub's own receiver is left: nobody follows any more.
            if tx.receiver_count() <= 1 {
                idle_rounds += 1;
                if idle_rounds > 2 {
                    return;
                }
            } else {
                idle_rounds = 0;
            }
            let chunks = match logs::chunks_from(&self.db, run_id, next).await {
                Ok(chunks) => chunks,
                Err(err) => {
                    tracing::warn!(run = run_id, error = %err, "reading the log index failed");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if !chunks.is_empty() {
                let metas: Vec<ChunkMeta> = chunks
                    .iter()
                    .map(|c| ChunkMeta {
                        seq: c.seq,
                        first_line: c.first_line,
                        lines: c.lines,
                    })
                    .collect();
                if let Some(last) = metas.last() {
                    next = last.first_line + i64::from(last.lines);
                }
                tx.send_modify(|t| {
                    let mut all = t.chunks.as_ref().clone();
                    all.extend(metas);
                    t.chunks = Arc::new(all);
                });
                continue;
            }
            match run::Entity::find_by_id(run_id).one(&self.db).await {
                Ok(Some(r)) if ended(&r) => {
                    // The worker writes its last chunk before it records the end, but a chunk
                    // may have landed between the two reads: look once more.
                    let more = logs::chunks_from(&self.db, run_id, next)
                        .await
                        .unwrap_or_default();
                    if more.is_empty() {
                        let last = finished_line(&r, r.log_lines.max(next));
                        tx.send_modify(|t| t.end = Some((last, r.status.clone())));
                        return;
                    }
                    continue;
                }
                Ok(None) => return,
                _ => {}
            }
            let wait = async {
                loop {
                    match flushed.recv().await {
                        Ok(id) if id == run_id => return,
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                        Err(_) => std::future::pending::<()>().await,
                    }
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(1), wait).await;
        }
    }

    /// A chunk's bytes (NDJSON, one line per log line), from the cache or storage.
    pub async fn chunk(&self, run_id: i64, seq: i32) -> sluice_core::Result<Bytes> {
        let key = (run_id, seq);
        let cell = match self.cache.lock() {
            Ok(mut cache) => {
                let (map, order) = &mut *cache;
                let cell = map
                    .entry(key)
                    .or_insert_with(|| {
                        order.push_back(key);
                        Arc::new(tokio::sync::OnceCell::new())
                    })
                    .clone();
                while order.len() > CACHE_CHUNKS {
                    if let Some(old) = order.pop_front() {
                        map.remove(&old);
                    }
                }
                cell
            }
            Err(_) => Arc::new(tokio::sync::OnceCell::new()),
        };
        let bytes = cell
            .get_or_try_init(|| async {
                let got = self
                    .objects
                    .get_opts(&logs::chunk_path(run_id, seq), GetOptions::default())
                    .await?
                    .bytes()
                    .await?;
                Ok::<_, sluice_core::Error>(got)
            })
            .await?;
        Ok(bytes.clone())
    }
}
