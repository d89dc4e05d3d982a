//! Run logs. A worker writes each line, timestamped and attributed to its stage and step,
//! through a [`LogSink`]: secret values (and their base64 forms) are masked first, a per-run
//! cap drops lines past a marker, and lines are flushed in chunks (NDJSON objects under
//! `logs/{run}/`, indexed in `run_log_chunks`) several times a second. Followers read chunks,
//! never the sink, so however many follow, the build is never slowed; a flush wakes followers
//! in this process at once, others poll.

use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine;
use chrono::{DateTime, Utc};
use object_store::ObjectStoreExt;
use object_store::path::Path;
use object_store::{GetOptions, PutOptions, PutPayload};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, broadcast};

use crate::entities::{run, run_log_chunk};
use crate::objects::Objects;
use crate::{Error, Result};

/// One line of a run's log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LogLine {
    /// Its number in the run, from 0.
    pub n: i64,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    pub text: String,
    /// Sluice's own line saying why a step or the run failed (the page jumps to the first).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub error: bool,
}

/// Where a line comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    pub stage: Option<String>,
    pub step: Option<String>,
}

/// A chunk is flushed when it holds this much, or every [`FLUSH_EVERY`].
const CHUNK_BYTES: usize = 64 * 1024;
const FLUSH_EVERY: Duration = Duration::from_millis(150);
/// Longer lines are split (a build printing without newlines still streams).
pub const MAX_LINE_BYTES: usize = 16 * 1024;

pub fn chunk_path(run_id: i64, seq: i32) -> Path {
    Path::from(format!("logs/{run_id}/{seq:08}.ndjson"))
}

/// Replaces secret values, and their base64 forms, with `****`: one pass of a multi-pattern
/// matcher over the text, the longest secret winning where two start at the same place.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    matcher: Option<Arc<AhoCorasick>>,
    /// The secrets it was made from, to make a wider one.
    secrets: Arc<Vec<String>>,
}

impl Masker {
    /// A masker for these secrets and `more`.
    pub fn with(&self, more: impl IntoIterator<Item = String>) -> Masker {
        Masker::new(self.secrets.iter().cloned().chain(more))
    }

    pub fn new<I: IntoIterator<Item = String>>(secrets: I) -> Masker {
        let secrets: Vec<String> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        let mut needles = Vec::new();
        for secret in secrets.iter().cloned() {
            if secret.is_empty() {
                continue;
            }
            let engines = [
                base64::engine::general_purpose::STANDARD.encode(&secret),
                base64::engine::general_purpose::STANDARD_NO_PAD.encode(&secret),
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&secret),
            ];
            needles.extend(engines);
            // `user:password` credentials: the password alone is secret too.
            if let Some((_, password)) = secret.split_once(':')
                && password.len() >= 3
            {
                needles.push(password.to_owned());
            }
            // A multi-line secret arrives one line at a time.
            if secret.contains('\n') {
                needles.extend(
                    secret
                        .lines()
                        .map(str::trim)
                        .filter(|l| l.len() >= 4)
                        .map(str::to_owned),
                );
            }
            needles.push(secret);
        }
        needles.sort();
        needles.dedup();
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&needles)
            .ok()
            .filter(|_| !needles.is_empty())
            .map(Arc::new);
        Masker {
            matcher,
            secrets: Arc::new(secrets),
        }
    }

    pub fn mask(&self, text: &str) -> String {
        match &self.matcher {
            Some(matcher) => {
                let mut out = String::with_capacity(text.len());
                matcher.replace_all_with(text, &mut out, |_, _, out| {
                    out.push_str("****");
                    true
                });
                out
            }
            None => text.to_owned(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }
}

/// Flushes anywhere, by run id: in this process, or announced by another over the bus
/// ([`flushed_elsewhere`]). Followers here wake at once.
static FLUSHED: LazyLock<broadcast::Sender<i64>> = LazyLock::new(|| broadcast::channel(1024).0);

/// Flushes in this process only: what the bus tells the other processes.
static FLUSHED_HERE: LazyLock<broadcast::Sender<i64>> =
    LazyLock::new(|| broadcast::channel(1024).0);

/// Every flush of a run's log, in this process or another on the bus.
pub fn subscribe() -> broadcast::Receiver<i64> {
    FLUSHED.subscribe()
}

/// Flushes made by this process (for the bus to announce).
pub fn subscribe_here() -> broadcast::Receiver<i64> {
    FLUSHED_HERE.subscribe()
}

/// Another process flushed `run_id`'s log: followers here read it now.
pub fn flushed_elsewhere(run_id: i64) {
    let _ = FLUSHED.send(run_id);
}

struct Pending {
    buf: Vec<u8>,
    lines: i32,
    first_line: i64,
    next_line: i64,
    next_seq: i32,
    bytes: u64,
    truncated: bool,
}

/// Writes one run's log. Cheap to clone; `close` flushes what is left.
#[derive(Clone)]
pub struct LogSink {
    inner: Arc<SinkInner>,
}

struct SinkInner {
    db: DatabaseConnection,
    objects: Objects,
    run_id: i64,
    /// Widened when the run learns more secrets (password parameters).
    masker: std::sync::RwLock<Masker>,
    max_bytes: u64,
    pending: Mutex<Pending>,
    flush_lock: tokio::sync::Mutex<()>,
    wake: Notify,
    stop: tokio_util::sync::CancellationToken,
}

impl LogSink {
    /// Opens the run's log for appending after what earlier attempts wrote, and starts the
    /// flusher.
    pub async fn open(
        db: DatabaseConnection,
        objects: Objects,
        run_id: i64,
        masker: Masker,
        max_bytes: u64,
    ) -> Result<LogSink> {
        let last = run_log_chunk::Entity::find()
            .filter(run_log_chunk::Column::RunId.eq(run_id))
            .order_by_desc(run_log_chunk::Column::Seq)
            .one(&db)
            .await?;
        let bytes = run::Entity::find_by_id(run_id)
            .one(&db)
            .await?
            .map_or(0, |r| u64::try_from(r.log_bytes).unwrap_or(0));
        let (next_seq, next_line) =
            last.map_or((0, 0), |c| (c.seq + 1, c.first_line + i64::from(c.lines)));
        let sink = LogSink {
            inner: Arc::new(SinkInner {
                db,
                objects,
                run_id,
                masker: std::sync::RwLock::new(masker),
                max_bytes,
                pending: Mutex::new(Pending {
                    buf: Vec::new(),
                    lines: 0,
                    first_line: next_line,
                    next_line,
                    next_seq,
                    bytes,
                    truncated: false,
                }),
                flush_lock: tokio::sync::Mutex::new(()),
                wake: Notify::new(),
                stop: tokio_util::sync::CancellationToken::new(),
            }),
        };
        let flusher = sink.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = flusher.inner.stop.cancelled() => return,
                    _ = flusher.inner.wake.notified() => {}
                    _ = tokio::time::sleep(FLUSH_EVERY) => {}
                }
                if let Err(err) = flusher.flush().await {
                    tracing::warn!(run = flusher.inner.run_id, error = %err, "flushing the log failed; retrying");
                }
            }
        });
        Ok(sink)
    }

    /// The masker as it stands (cheap: it shares its matcher).
    pub fn masker(&self) -> Masker {
        self.inner
            .masker
            .read()
            .map_or_else(|poisoned| poisoned.into_inner().clone(), |m| m.clone())
    }

    /// Masks `more` secrets from now on.
    pub fn also_mask(&self, more: Vec<String>) {
        if more.iter().all(String::is_empty) {
            return;
        }
        let mut masker = self
            .inner
            .masker
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *masker = masker.with(more);
    }

    /// Appends a line (masked, split when long); never waits on storage.
    pub fn line(&self, origin: &Origin, text: &str) {
        self.push(origin, text, false);
    }

    /// Appends a line that says why something failed.
    pub fn error_line(&self, origin: &Origin, text: &str) {
        self.push(origin, text, true);
    }

    fn push(&self, origin: &Origin, text: &str, error: bool) {
        let masked = self.masker().mask(text);
        let masked = masked.trim_end_matches(['\r', '\n']);
        let mut full = false;
        {
            let Ok(mut p) = self.inner.pending.lock() else {
                return;
            };
            for piece in split_long(masked) {
                if p.truncated {
                    break;
                }
                let mut origin = origin.clone();
                let mut text = piece.to_owned();
                if p.bytes + text.len() as u64 > self.inner.max_bytes {
                    p.truncated = true;
                    origin = Origin::default();
                    text = format!(
                        "[sluice] log truncated: this run printed more than {} bytes; \
                         further output is dropped (the build goes on)",
                        self.inner.max_bytes
                    );
                }
                let line = LogLine {
                    n: p.next_line,
                    at: Utc::now(),
                    stage: origin.stage,
                    step: origin.step,
                    text,
                    error,
                };
                p.bytes += line.text.len() as u64;
                p.next_line += 1;
                p.lines += 1;
                if serde_json::to_writer(&mut p.buf, &line).is_ok() {
                    p.buf.push(b'\n');
                }
            }
            full = full || p.buf.len() >= CHUNK_BYTES;
        }
        if full {
            self.inner.wake.notify_one();
        }
    }

    /// Writes what is pending as the next chunk.
    pub async fn flush(&self) -> Result<()> {
        let _one_at_a_time = self.inner.flush_lock.lock().await;
        let (buf, seq, first_line, lines, total) = {
            let mut p = self
                .inner
                .pending
                .lock()
                .map_err(|_| Error::Conflict("log sink poisoned".into()))?;
            if p.lines == 0 {
                return Ok(());
            }
            let buf = std::mem::take(&mut p.buf);
            let out = (buf, p.next_seq, p.first_line, p.lines, p.bytes);
            p.next_seq += 1;
            p.first_line = p.next_line;
            p.lines = 0;
            out
        };
        let size = buf.len();
        let path = chunk_path(self.inner.run_id, seq);
        let mut tries = 0;
        loop {
            let put = self
                .inner
                .objects
                .put_opts(&path, PutPayload::from(buf.clone()), PutOptions::default())
                .await;
            match put {
                Ok(_) => break,
                Err(err) if tries < 5 => {
                    tries += 1;
                    tracing::warn!(run = self.inner.run_id, error = %err, "writing a log chunk failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                }
                Err(err) => return Err(err.into()),
            }
        }
        run_log_chunk::ActiveModel {
            run_id: Set(self.inner.run_id),
            seq: Set(seq),
            first_line: Set(first_line),
            lines: Set(lines),
            bytes: Set(i32::try_from(size).unwrap_or(i32::MAX)),
            ..Default::default()
        }
        .insert(&self.inner.db)
        .await?;
        run::Entity::update_many()
            .col_expr(
                run::Column::LogLines,
                Expr::value(first_line + i64::from(lines)),
            )
            .col_expr(
                run::Column::LogBytes,
                Expr::value(i64::try_from(total).unwrap_or(i64::MAX)),
            )
            .filter(run::Column::Id.eq(self.inner.run_id))
            .exec(&self.inner.db)
            .await?;
        let _ = FLUSHED.send(self.inner.run_id);
        let _ = FLUSHED_HERE.send(self.inner.run_id);
        Ok(())
    }

    /// Stops the flusher and writes the rest.
    pub async fn close(&self) -> Result<()> {
        self.inner.stop.cancel();
        self.flush().await
    }
}

fn split_long(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while rest.len() > MAX_LINE_BYTES {
        let mut cut = MAX_LINE_BYTES;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        pieces.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    pieces.push(rest);
    pieces
}

/// The chunks holding lines from `from` on, in order.
pub async fn chunks_from(
    db: &impl ConnectionTrait,
    run_id: i64,
    from: i64,
) -> Result<Vec<run_log_chunk::Model>> {
    Ok(run_log_chunk::Entity::find()
        .filter(run_log_chunk::Column::RunId.eq(run_id))
        .filter(
            Expr::col(run_log_chunk::Column::FirstLine)
                .add(Expr::col(run_log_chunk::Column::Lines))
                .gt(from),
        )
        .order_by_asc(run_log_chunk::Column::Seq)
        .limit(64)
        .all(db)
        .await?)
}

/// The lines of one chunk.
pub async fn read_chunk(objects: &Objects, run_id: i64, seq: i32) -> Result<Vec<LogLine>> {
    let got = objects
        .get_opts(&chunk_path(run_id, seq), GetOptions::default())
        .await?;
    let bytes = got.bytes().await?;
    Ok(bytes
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect())
}

/// Deletes a run's log objects (its rows go with the run).
pub async fn delete(objects: &Objects, db: &impl ConnectionTrait, run_id: i64) -> Result<()> {
    let chunks = run_log_chunk::Entity::find()
        .filter(run_log_chunk::Column::RunId.eq(run_id))
        .all(db)
        .await?;
    for c in chunks {
        let _ = objects.delete(&chunk_path(run_id, c.seq)).await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_values_and_their_base64_forms() {
        let masker = Masker::new(["hunter2-secret".to_owned()]);
        let b64 = base64::engine::general_purpose::STANDARD.encode("hunter2-secret");
        assert_eq!(
            masker.mask(&format!("pw=hunter2-secret b64={b64}")),
            "pw=**** b64=****"
        );
        assert_eq!(masker.mask("nothing here"), "nothing here");
    }

    #[test]
    fn the_password_of_user_password_credentials_is_masked_alone() {
        let masker = Masker::new(["robot:pa55word".to_owned()]);
        assert_eq!(
            masker.mask("user=robot password=pa55word"),
            "user=robot password=****"
        );
    }

    #[test]
    fn multi_line_secrets_are_masked_line_by_line() {
        let masker = Masker::new(["-----BEGIN KEY-----\nabcdefgh\n-----END KEY-----".to_owned()]);
        assert_eq!(masker.mask("abcdefgh"), "****");
    }

    #[test]
    fn long_lines_split_on_char_boundaries() {
        let text = "é".repeat(MAX_LINE_BYTES);
        let pieces = split_long(&text);
        assert_eq!(pieces.concat(), text);
        assert!(pieces.iter().all(|p| p.len() <= MAX_LINE_BYTES));
    }
}
