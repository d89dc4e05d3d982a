//! What a run leaves: its log (`GET .../runs/{number}/log`, text or a live SSE stream) and
//! its artifacts (`GET .../artifacts`, `GET .../artifacts/{path}`).
//!
//! A follower reads the log's chunks from storage, never the worker, so any number of them
//! can follow without slowing the build; a flush in this process wakes them at once, and they
//! hear of flushes elsewhere through the bus (or poll every second). A live follower's stream
//! is pulled by its connection, a piece of at most 16 KiB at a time, so it holds next to
//! nothing of its own; the text log holds at most a few batches.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use futures_util::StreamExt;
use object_store::{GetOptions, ObjectStore};
use sea_orm::{DatabaseConnection, EntityTrait};
use serde::{Deserialize, Serialize};
use sluice_core::entities::run;
use sluice_core::logs::{self, LogLine};
use sluice_core::objects::Objects;
use sluice_core::store::artifacts;
use sluice_core::store::runs;
use tokio::sync::mpsc;

use crate::auth::Authn;
use crate::error::ApiError;
use crate::state::AppState;

/// Lines per item sent to a follower.
const BATCH: usize = 256;

enum Item {
    Lines(Vec<LogLine>),
    /// The run has ended and every line was sent; the last line says how it ended.
    End(LogLine),
}

use crate::log_hub::{ended, finished_line};

/// Feeds `tx` with the run's lines so far from `from` (and the closing line if it ended).
async fn produce(
    db: DatabaseConnection,
    objects: Objects,
    run_id: i64,
    mut next: i64,
    tx: mpsc::Sender<Item>,
) {
    loop {
        let chunks = match logs::chunks_from(&db, run_id, next).await {
            Ok(chunks) => chunks,
            Err(err) => {
                tracing::warn!(run = run_id, error = %err, "reading the log index failed");
                return;
            }
        };
        if !chunks.is_empty() {
            for chunk in chunks {
                let lines = match logs::read_chunk(&objects, run_id, chunk.seq).await {
                    Ok(lines) => lines,
                    Err(err) => {
                        tracing::warn!(run = run_id, error = %err, "reading a log chunk failed");
                        return;
                    }
                };
                let fresh: Vec<LogLine> = lines.into_iter().filter(|l| l.n >= next).collect();
                next = chunk.first_line + i64::from(chunk.lines);
                for batch in fresh.chunks(BATCH) {
                    if tx.send(Item::Lines(batch.to_vec())).await.is_err() {
                        return;
                    }
                }
            }
            continue;
        }
        let Ok(Some(r)) = run::Entity::find_by_id(run_id).one(&db).await else {
            return;
        };
        if ended(&r) {
            // The worker writes its last chunk before it records the end, but a chunk may
            // have landed between the two reads above: look once more.
            if !logs::chunks_from(&db, run_id, next)
                .await
                .unwrap_or_default()
                .is_empty()
            {
                continue;
            }
            let last = finished_line(&r, r.log_lines.max(next));
            let _ = tx.send(Item::End(last)).await;
            return;
        }
        return;
    }
}

fn plain(line: &LogLine, out: &mut String) {
    use std::fmt::Write;
    let _ = write!(out, "{} ", line.at.format("%Y-%m-%dT%H:%M:%S%.3fZ"));
    if let Some(stage) = &line.stage {
        let _ = write!(out, "[{stage}] ");
    }
    out.push_str(&line.text);
    out.push('\n');
}

fn sse(line: &LogLine, out: &mut String) {
    use std::fmt::Write;
    let json = serde_json::to_string(line).unwrap_or_default();
    let _ = write!(out, "id: {}\ndata: {json}\n\n", line.n);
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct LogQuery {
    /// Start at this line number (an SSE client resumes with `Last-Event-ID` instead).
    pub from: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct EndEvent {
    status: String,
}

/// `GET .../runs/{number}/log`: the log as text (`time [stage] line`); with `Accept:
/// text/event-stream`, a live stream: each line an event whose id is its number and whose
/// data is JSON `{n, at, stage?, step?, text, error?}`; `Last-Event-ID` resumes after that
/// line (an id past the end replays nothing); an `end` event closes it once the run has ended.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/projects/{project}/runs/{number}/log", tag = "runs", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("project" = String, Path, description = "Project slug", example = "web"), ("number" = i64, Path, description = "Run number"), LogQuery), responses((status = 200, description = "The log so far (text/plain) or a live stream (text/event-stream)", content_type = "text/plain", body = String), (status = 400, description = "Bad input", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody)))]
pub async fn log(
    state: web::Data<AppState>,
    authn: Authn,
    req: HttpRequest,
    path: web::Path<(String, String, i64)>,
    query: web::Query<LogQuery>,
) -> Result<HttpResponse, ApiError> {
    let (org, project, number) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    let found = runs::get(&state.db, &scope, &project, number).await?;
    let live = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    let resume = match req.headers().get("Last-Event-ID") {
        // An id that is not even text is malformed: "?" gets it the same 400.
        Some(id) => resume_after(id.to_str().unwrap_or("?"))?,
        None => None,
    };
    let from = resume.or(query.from).unwrap_or(0).max(0);
    if live {
        Ok(stream_live(&state, found.id, from))
    } else {
        Ok(stream_log(&state, found.id, from))
    }
}

/// The line to resume at after the event id an SSE client last saw: the next one. Ids are
/// line numbers; one past any line there can be (`i64::MAX`, or more digits than fit) resumes
/// past the end, replaying nothing. An empty id is no id; anything else is a 400.
fn resume_after(last_event_id: &str) -> Result<Option<i64>, ApiError> {
    let id = last_event_id.trim();
    if id.is_empty() {
        return Ok(None);
    }
    let digits = id.strip_prefix('-').unwrap_or(id);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::BadRequest {
            message: "Last-Event-ID must be the id of an event this stream sent (a line number)"
                .into(),
            details: Some(serde_json::json!({ "field": "Last-Event-ID" })),
        });
    }
    Ok(Some(match id.parse::<i64>() {
        Ok(n) => n.saturating_add(1),
        Err(_) if id.starts_with('-') => 0,
        Err(_) => i64::MAX,
    }))
}

/// Bytes of SSE text a follower's stream makes at a time. The stream is pulled: the next piece
/// is made only when the connection has taken the last one, so a follower holds about this
/// much (and the shared chunk it reads from), however fast the log grows or slow the reader.
const PIECE: usize = 16 * 1024;

/// One live follower: where it is in the run's tail.
struct Follower {
    hub: std::sync::Arc<crate::log_hub::LogHub>,
    tail: tokio::sync::watch::Receiver<crate::log_hub::Tail>,
    run_id: i64,
    /// The first line to send.
    from: i64,
    /// Chunks of the tail taken so far.
    taken: usize,
    /// The chunk being sent: its bytes (shared with the hub's cache), the offset of the next
    /// line in it, and that line's number.
    current: Option<(Bytes, usize, i64)>,
    done: bool,
}

impl Follower {
    /// The next piece of the stream; None once the end event went out or the run is gone.
    async fn next_piece(&mut self) -> Option<Bytes> {
        use std::io::Write;
        loop {
            if self.done {
                return None;
            }
            if let Some((bytes, offset, n)) = &mut self.current {
                let mut out = Vec::with_capacity(PIECE + 512);
                while *offset < bytes.len() && out.len() < PIECE {
                    let rest = &bytes[*offset..];
                    let len = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
                    let line = &rest[..len];
                    *offset += len + 1;
                    if line.is_empty() {
                        continue;
                    }
                    *n += 1;
                    if *n - 1 < self.from {
                        continue;
                    }
                    let _ = write!(out, "id: {}\ndata: ", *n - 1);
                    out.extend_from_slice(line);
                    out.extend_from_slice(b"\n\n");
                }
                if *offset >= bytes.len() {
                    self.current = None;
                }
                if !out.is_empty() {
                    return Some(Bytes::from(out));
                }
                continue;
            }
            let snapshot = self.tail.borrow_and_update().clone();
            if let Some(meta) = snapshot.chunks.get(self.taken).copied() {
                self.taken += 1;
                if meta.first_line + i64::from(meta.lines) <= self.from {
                    continue;
                }
                match self.hub.chunk(self.run_id, meta.seq).await {
                    Ok(bytes) => self.current = Some((bytes, 0, meta.first_line)),
                    Err(err) => {
                        tracing::warn!(run = self.run_id, error = %err, "reading a log chunk failed");
                        self.done = true;
                    }
                }
                continue;
            }
            if let Some((last, status)) = &snapshot.end {
                let mut out = String::new();
                if last.n >= self.from {
                    sse(last, &mut out);
                }
                let end = serde_json::to_string(&EndEvent {
                    status: status.clone(),
                })
                .unwrap_or_default();
                out.push_str(&format!("event: end\ndata: {end}\n\n"));
                self.done = true;
                return Some(Bytes::from(out));
            }
            tokio::select! {
                changed = self.tail.changed() => {
                    if changed.is_err() {
                        let tail = self.tail.borrow();
                        if tail.end.is_none() && tail.chunks.len() == self.taken {
                            self.done = true;
                        }
                    }
                }
                _ = tokio::time::sleep(Duration::from_secs(15)) => {
                    return Some(Bytes::from_static(b": waiting for output\n\n"));
                }
            }
        }
    }
}

/// A live SSE stream through the process's log hub.
fn stream_live(state: &AppState, run_id: i64, from: i64) -> HttpResponse {
    let follower = Follower {
        hub: state.logs.clone(),
        tail: state.logs.follow(run_id),
        run_id,
        from,
        taken: 0,
        current: None,
        done: false,
    };
    let body = futures_util::stream::unfold(follower, |mut follower| async move {
        let piece = follower.next_piece().await?;
        Some((Ok::<_, actix_web::Error>(piece), follower))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body)
}

/// The log so far as text (also the Jenkins `consoleText`): `time [stage] line`.
pub(crate) fn stream_log(state: &AppState, run_id: i64, from: i64) -> HttpResponse {
    let (tx, rx) = mpsc::channel(2);
    actix_web::rt::spawn(produce(
        state.db.clone(),
        state.objects.clone(),
        run_id,
        from,
        tx,
    ));
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        let mut out = String::new();
        match item {
            Item::Lines(lines) => lines.iter().for_each(|l| plain(l, &mut out)),
            Item::End(last) => plain(&last, &mut out),
        }
        Some((Ok::<_, actix_web::Error>(Bytes::from(out)), rx))
    });
    HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .streaming(body)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ArtifactView {
    pub path: String,
    pub size: i64,
    pub sha256: String,
}

/// `GET .../runs/{number}/artifacts`: what the run archived.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/projects/{project}/runs/{number}/artifacts", tag = "runs", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("project" = String, Path, description = "Project slug", example = "web"), ("number" = i64, Path, description = "Run number")), responses((status = 200, description = "Artifacts, by path", body = Vec<ArtifactView>), (status = 400, description = "Bad input", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, or another org's", body = crate::openapi::ErrorBody)))]
pub async fn artifact_index(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<(String, String, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (org, project, number) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    let found = runs::get(&state.db, &scope, &project, number).await?;
    let items: Vec<ArtifactView> = artifacts::list(&state.db, found.id)
        .await?
        .into_iter()
        .map(|a| ArtifactView {
            path: a.path,
            size: a.size,
            sha256: a.sha256,
        })
        .collect();
    Ok(HttpResponse::Ok().json(items))
}

/// `GET .../runs/{number}/artifacts/{path}`: the bytes, streamed, with `X-Checksum-Sha256`.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/projects/{project}/runs/{number}/artifacts/{path}", tag = "runs", security(("bearer" = []), ("session" = [])), params(("org" = String, Path, description = "Org slug", example = "acme"), ("project" = String, Path, description = "Project slug", example = "web"), ("number" = i64, Path, description = "Run number"), ("path" = String, Path, description = "The artifact's path, as listed")), responses((status = 200, description = "The file", content_type = "application/octet-stream", body = Vec<u8>), (status = 400, description = "A path that leaves the workspace", body = crate::openapi::ErrorBody), (status = 401, description = "No or bad credentials", body = crate::openapi::ErrorBody), (status = 404, description = "Absent, discarded, or another org's", body = crate::openapi::ErrorBody)))]
pub async fn artifact_download(
    state: web::Data<AppState>,
    authn: Authn,
    path: web::Path<(String, String, i64, String)>,
) -> Result<HttpResponse, ApiError> {
    let (org, project, number, file) = path.into_inner();
    let scope = authn.scope(&state, &org).await?;
    let found = runs::get(&state.db, &scope, &project, number).await?;
    let row = artifacts::get(&state.db, found.id, &file).await?;
    let got = state
        .objects
        .get_opts(
            &artifacts::object_path(found.id, &row.path),
            GetOptions::default(),
        )
        .await
        .map_err(|e| match e {
            object_store::Error::NotFound { .. } => sluice_core::Error::NotFound,
            other => sluice_core::Error::Storage(other),
        })?;
    let name = row
        .path
        .rsplit('/')
        .next()
        .unwrap_or("artifact")
        .replace('"', "");
    let stream = got
        .into_stream()
        .map(|chunk| chunk.map_err(actix_web::error::ErrorInternalServerError));
    Ok(HttpResponse::Ok()
        .content_type("application/octet-stream")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .insert_header(("X-Checksum-Sha256", row.sha256))
        .no_chunking(u64::try_from(row.size).unwrap_or(0))
        .streaming(stream))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn last_event_ids_resume_after_themselves_without_overflow() {
        assert_eq!(resume_after("").unwrap(), None);
        assert_eq!(resume_after(" 41 ").unwrap(), Some(42));
        assert_eq!(resume_after("-7").unwrap(), Some(-6));
        assert_eq!(resume_after("9223372036854775807").unwrap(), Some(i64::MAX));
        assert_eq!(
            resume_after("99999999999999999999999").unwrap(),
            Some(i64::MAX)
        );
        assert_eq!(resume_after("-99999999999999999999999").unwrap(), Some(0));
        for bad in ["abc", "12abc", "-", "1.5", "+3"] {
            assert!(resume_after(bad).is_err(), "{bad}");
        }
    }
}
