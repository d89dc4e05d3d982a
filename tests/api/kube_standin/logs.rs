//! pods/log on the STAND-IN: the container log the kubelet keeps for a started pod (its own
//! lines, and what a test appends as the container's output), as text; with `follow=true`,
//! streamed as it grows until the pod ends or is deleted.

use std::sync::Arc;

use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};
use std::convert::Infallible;

use super::kubelet::LogState;
use super::{Cluster, container_of, flag, pod_path, query_map, status};

pub async fn serve(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    cluster: web::Data<Arc<Cluster>>,
) -> HttpResponse {
    let (namespace, name) = path.into_inner();
    let query = query_map(req.query_string());
    let at = pod_path(&namespace, &name);
    let Some(pod) = cluster.store().objects.get(&at).cloned() else {
        return status(404, "NotFound", format!("pods \"{name}\" not found"));
    };
    let container = match container_of(&pod, &name, query.get("container").map(String::as_str)) {
        Ok(container) => container,
        Err(refusal) => return refusal.into(),
    };
    let text = match cluster.kubelet.read_log(&at, 0) {
        LogState::Log { text, ended } if ended || !flag(&query, "follow") => text,
        LogState::Log { .. } => return follow(cluster.get_ref().clone(), at),
        LogState::Gone | LogState::Waiting => {
            let reason = pod["status"]["containerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|s| s["name"] == container.as_str())
                .and_then(|s| s["state"]["waiting"]["reason"].as_str())
                .unwrap_or("ContainerCreating")
                .to_owned();
            return status(
                400,
                "BadRequest",
                format!(
                    "container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"
                ),
            );
        }
    };
    HttpResponse::Ok().content_type("text/plain").body(text)
}

/// Streams the log of the pod at `path` as it grows.
fn follow(cluster: Arc<Cluster>, path: String) -> HttpResponse {
    let changes = cluster.kubelet.subscribe();
    let state = (cluster, path, 0usize, changes);
    let stream =
        futures_util::stream::unfold(state, |(cluster, path, from, mut changes)| async move {
            loop {
                // Seen before reading: a later line marks the channel changed again.
                changes.borrow_and_update();
                match cluster.kubelet.read_log(&path, from) {
                    LogState::Gone => return None,
                    LogState::Log { text, .. } if !text.is_empty() => {
                        let from = from + text.len();
                        let line = Ok::<_, Infallible>(Bytes::from(text));
                        return Some((line, (cluster, path, from, changes)));
                    }
                    LogState::Log { ended: true, .. } => return None,
                    LogState::Log { .. } | LogState::Waiting => {}
                }
                changes.changed().await.ok()?;
            }
        });
    HttpResponse::Ok()
        .content_type("text/plain")
        .streaming(stream)
}
