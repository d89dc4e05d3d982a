//! Watches on the STAND-IN, as kube-rs's `Api::watch` and `runtime::watcher` use them: a GET
//! on a collection with `watch=true` streams newline-separated JSON events for the changes
//! after `resourceVersion` (after ADDED events for the current objects when it is absent or
//! `0`, or with `sendInitialEvents`), filtered by label and field selectors, until
//! `timeoutSeconds`. An object that starts or stops matching the selectors is ADDED or
//! DELETED, as on a real API server. A resourceVersion older than the store's history gets one
//! ERROR event, 410 Gone with reason `Expired`, and the end of the stream, so the client
//! lists again.

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use actix_web::HttpResponse;
use actix_web::web::Bytes;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::store::{Change, Resource, Selectors};
use super::{Cluster, flag, status, status_object};

/// A watch's length when the client does not say.
const DEFAULT_TIMEOUT_SECS: u64 = 290;

struct Watch {
    cluster: Arc<Cluster>,
    collection: Resource,
    selectors: Selectors,
    bookmarks: bool,
    /// The last resourceVersion sent (or caught up with).
    cursor: u64,
    pending: VecDeque<Bytes>,
    deadline: Instant,
    changes: tokio::sync::watch::Receiver<u64>,
    done: bool,
}

pub fn serve(
    cluster: Arc<Cluster>,
    collection: Resource,
    query: &BTreeMap<String, String>,
) -> HttpResponse {
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|t| t.parse().ok())
        .unwrap_or(DEFAULT_TIMEOUT_SECS);
    let from = query
        .get("resourceVersion")
        .filter(|v| !v.is_empty() && *v != "0");
    let initial_events = flag(query, "sendInitialEvents");
    let cursor = match from {
        Some(version) if !initial_events => match version.parse::<u64>() {
            Ok(version) => Some(version),
            Err(_) => {
                return status(
                    400,
                    "BadRequest",
                    format!("invalid resource version: {version}"),
                );
            }
        },
        _ => None,
    };
    let changes = cluster.store().subscribe();
    let mut watch = Watch {
        cluster,
        collection,
        selectors: Selectors::from_query(query),
        bookmarks: flag(query, "allowWatchBookmarks"),
        cursor: cursor.unwrap_or_default(),
        pending: VecDeque::new(),
        deadline: Instant::now() + Duration::from_secs(timeout),
        changes,
        done: false,
    };
    if cursor.is_none() {
        watch.start_with_current_objects(initial_events);
    }
    let stream = futures_util::stream::unfold(watch, |mut watch| async move {
        let line = watch.next().await?;
        Some((Ok::<_, Infallible>(line), watch))
    });
    HttpResponse::Ok()
        .content_type("application/json")
        .streaming(stream)
}

/// One watch event as a line.
fn line(kind: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

impl Watch {
    /// ADDED for every object the collection holds now; with `initial_events` (a streaming
    /// list), then a bookmark marking their end.
    fn start_with_current_objects(&mut self, initial_events: bool) {
        let store = self.cluster.store();
        for (path, object) in &store.objects {
            if self.collection.holds(path) && self.selectors.matches(object) {
                self.pending.push_back(line("ADDED", object));
            }
        }
        self.cursor = store.version();
        self.changes.borrow_and_update();
        drop(store);
        if initial_events {
            let bookmark = self.bookmark(json!({"k8s.io/initial-events-end": "true"}));
            self.pending.push_back(bookmark);
        }
    }

    /// The next line to send; `None` ends the stream.
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(line) = self.pending.pop_front() {
                return Some(line);
            }
            if self.done {
                return None;
            }
            self.catch_up();
            if !self.pending.is_empty() || self.done {
                continue;
            }
            tokio::select! {
                changed = self.changes.changed() => {
                    if changed.is_err() {
                        self.done = true;
                    }
                }
                () = tokio::time::sleep_until(self.deadline) => {
                    // The client resumes from here, not from its last event.
                    if self.bookmarks {
                        let bookmark = self.bookmark(json!({}));
                        self.pending.push_back(bookmark);
                    }
                    self.done = true;
                }
            }
        }
    }

    /// Queues the events for the changes after the cursor, or the 410 if they are forgotten.
    fn catch_up(&mut self) {
        let store = self.cluster.store();
        // Seen under the store's lock: a later write marks the channel changed again.
        self.changes.borrow_and_update();
        match store.changes_since(self.cursor) {
            Err(expired) => {
                let message = format!(
                    "too old resource version: {} ({})",
                    self.cursor,
                    expired.oldest - 1
                );
                self.pending
                    .push_back(line("ERROR", &status_object(410, "Expired", &message)));
                self.done = true;
            }
            Ok(changes) => {
                for change in changes {
                    if let Some(event) = self.event(change) {
                        self.pending.push_back(event);
                    }
                }
                self.cursor = store.version();
            }
        }
    }

    /// What this watch sees of `change`, if anything.
    fn event(&self, change: &Change) -> Option<Bytes> {
        if !self.collection.holds(&change.path) {
            return None;
        }
        let matching = |object: &Option<Value>| {
            object
                .as_ref()
                .filter(|o| self.selectors.matches(o))
                .is_some()
        };
        match (
            matching(&change.before),
            matching(&change.after),
            &change.after,
        ) {
            (false, true, Some(after)) => Some(line("ADDED", after)),
            (true, true, Some(after)) => Some(line("MODIFIED", after)),
            // Stopped matching: gone from this watch's view, as it is now.
            (true, false, Some(after)) => Some(line("DELETED", after)),
            (true, false, None) => change.before.as_ref().map(|b| line("DELETED", b)),
            _ => None,
        }
    }

    fn bookmark(&self, annotations: Value) -> Bytes {
        line(
            "BOOKMARK",
            &json!({
                "kind": self.collection.kind(), "apiVersion": self.collection.api_version(),
                "metadata": {"resourceVersion": self.cursor.to_string(), "annotations": annotations},
            }),
        )
    }
}
