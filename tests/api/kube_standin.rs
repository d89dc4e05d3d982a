//! A STAND-IN for a Kubernetes API server (no cluster can run on these machines): a real HTTP
//! server on loopback that the unchanged kube-rs client talks to, holding objects in memory.
//! It serves what the tenant provisioner and the orphan collector use: get, list (in a
//! namespace or across all of them) with equality label selectors,
//! server-side apply (PATCH `application/apply-patch+yaml` with a field manager; fields a
//! manager applied before and no longer applies are removed; without `force`, changing a
//! field another manager set is a 409 conflict) and delete (a namespace takes its objects
//! with it). Objects carry `resourceVersion`, `uid` and `creationTimestamp`; errors are
//! `Status` objects. It is not a full API server: no watch, no field ownership per field.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::{Value, json};

#[derive(Default)]
pub struct Store {
    /// Objects by their API path (`/api/v1/namespaces/x`, `/apis/…/namespaces/x/kind/name`).
    pub objects: BTreeMap<String, Value>,
    /// The last configuration each field manager applied, by path.
    pub applied: BTreeMap<String, BTreeMap<String, Value>>,
    version: u64,
}

/// A running stand-in.
pub struct KubeStandIn {
    pub url: String,
    pub store: Arc<Mutex<Store>>,
    server: actix_web::dev::ServerHandle,
}

impl Drop for KubeStandIn {
    fn drop(&mut self) {
        let server = self.server.clone();
        tokio::spawn(async move { server.stop(false).await });
    }
}

impl KubeStandIn {
    pub fn start() -> KubeStandIn {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let store = Arc::new(Mutex::new(Store::default()));
        let data = web::Data::new(store.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(4 * 1024 * 1024))
                .default_service(web::to(handle))
        })
        .listen(listener)
        .unwrap()
        .workers(1)
        .disable_signals()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        KubeStandIn {
            url,
            store,
            server: handle,
        }
    }

    /// A kubeconfig file pointing at this stand-in.
    pub fn kubeconfig(&self, dir: &std::path::Path) -> std::path::PathBuf {
        let path = dir.join("kubeconfig");
        let config = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: standin\n  cluster:\n    server: {}\ncontexts:\n- name: standin\n  context:\n    cluster: standin\n    user: sluice\ncurrent-context: standin\nusers:\n- name: sluice\n  user:\n    token: standin-token\n",
            self.url
        );
        std::fs::write(&path, config).unwrap();
        path
    }

    pub fn get(&self, path: &str) -> Option<Value> {
        self.store.lock().unwrap().objects.get(path).cloned()
    }

    /// Changes an object behind Sluice's back (another manager, or a person with kubectl).
    pub fn tamper(&self, path: &str, change: impl FnOnce(&mut Value)) {
        let mut store = self.store.lock().unwrap();
        if let Some(object) = store.objects.get_mut(path) {
            change(object);
        }
    }

    pub fn remove(&self, path: &str) {
        self.store.lock().unwrap().objects.remove(path);
    }

    /// Creates an object directly, as something other than Sluice would.
    pub fn insert(&self, path: &str, object: Value) {
        let mut store = self.store.lock().unwrap();
        store.version += 1;
        let mut object = object;
        object["metadata"]["resourceVersion"] = json!(store.version.to_string());
        store.objects.insert(path.to_owned(), object);
    }
}

fn status(code: u16, reason: &str, message: String) -> HttpResponse {
    HttpResponse::build(actix_web::http::StatusCode::from_u16(code).unwrap()).json(json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    }))
}

/// `k=v,k2=v2` (equality only) against an object's labels.
fn selected(object: &Value, selector: Option<&str>) -> bool {
    let Some(selector) = selector.filter(|s| !s.is_empty()) else {
        return true;
    };
    selector.split(',').all(|term| match term.split_once('=') {
        Some((k, v)) => object["metadata"]["labels"][k.trim()] == v.trim(),
        None => object["metadata"]["labels"].get(term.trim()).is_some(),
    })
}

/// Removes from `object` what `old` had and `new` no longer has (a manager's dropped fields).
fn prune(object: &mut Value, old: &Value, new: &Value) {
    let (Some(object), Some(old)) = (object.as_object_mut(), old.as_object()) else {
        return;
    };
    for (key, old_value) in old {
        match new.get(key) {
            None => {
                object.remove(key);
            }
            Some(new_value) => {
                if let Some(child) = object.get_mut(key) {
                    prune(child, old_value, new_value);
                }
            }
        }
    }
}

/// Merges `applied` into `object`: maps key by key, everything else replaced.
fn merge(object: &mut Value, applied: &Value) {
    match (object.as_object_mut(), applied.as_object()) {
        (Some(object), Some(applied)) => {
            for (key, value) in applied {
                match object.get_mut(key) {
                    Some(existing) if existing.is_object() && value.is_object() => {
                        merge(existing, value)
                    }
                    _ => {
                        object.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        _ => *object = applied.clone(),
    }
}

/// The scalar leaves of `applied` that `object` holds with another value.
fn conflicts(object: &Value, applied: &Value, at: &str, out: &mut Vec<String>) {
    match (object.as_object(), applied.as_object()) {
        (Some(object), Some(applied)) => {
            for (key, value) in applied {
                if let Some(existing) = object.get(key) {
                    conflicts(existing, value, &format!("{at}.{key}"), out);
                }
            }
        }
        _ if object != applied => out.push(at.to_owned()),
        _ => {}
    }
}

async fn handle(
    req: HttpRequest,
    body: web::Bytes,
    store: web::Data<Arc<Mutex<Store>>>,
) -> HttpResponse {
    let path = req.path().trim_end_matches('/').to_owned();
    let query: BTreeMap<String, String> =
        url::form_urlencoded::parse(req.query_string().as_bytes())
            .into_owned()
            .collect();
    let mut store = store.lock().unwrap();
    match req.method().as_str() {
        "GET" => {
            if let Some(object) = store.objects.get(&path) {
                return HttpResponse::Ok().json(object);
            }
            // A collection: the objects directly below this path, or for a namespaced kind
            // listed cluster-wide (`/api/v1/pods`), that kind in every namespace.
            let prefix = format!("{path}/");
            let (api, plural) = path.rsplit_once('/').unwrap_or(("", ""));
            let across = plural != "namespaces" && (api == "/api/v1" || api.starts_with("/apis/"));
            let items: Vec<Value> = store
                .objects
                .iter()
                .filter(|(k, _)| {
                    let below = k
                        .strip_prefix(&prefix)
                        .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'));
                    let everywhere = across
                        && k.strip_prefix(&format!("{api}/namespaces/"))
                            .and_then(|rest| rest.split_once('/'))
                            .and_then(|(_, rest)| rest.split_once('/'))
                            .is_some_and(|(kind, name)| kind == plural && !name.contains('/'));
                    below || everywhere
                })
                .map(|(_, v)| v.clone())
                .filter(|v| selected(v, query.get("labelSelector").map(String::as_str)))
                .collect();
            let is_collection =
                path.ends_with("/namespaces") || path.split('/').rev().nth(1) == Some("namespaces");
            if items.is_empty() && !is_collection {
                return status(404, "NotFound", format!("{path} not found"));
            }
            let kind = items
                .first()
                .and_then(|i| i["kind"].as_str())
                .map_or("List".to_owned(), |k| format!("{k}List"));
            HttpResponse::Ok().json(json!({
                "apiVersion": "v1", "kind": kind,
                "metadata": {"resourceVersion": store.version.to_string()},
                "items": items,
            }))
        }
        "PATCH" => {
            let content_type = req
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if content_type != "application/apply-patch+yaml" {
                return status(
                    415,
                    "UnsupportedMediaType",
                    format!("the stand-in only takes server-side apply, not {content_type}"),
                );
            }
            let Some(manager) = query.get("fieldManager").cloned() else {
                return status(
                    400,
                    "BadRequest",
                    "fieldManager is required for apply".into(),
                );
            };
            let force = query.get("force").is_some_and(|f| f == "true");
            let applied: Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(err) => return status(400, "BadRequest", err.to_string()),
            };
            let previous = store
                .applied
                .get(&path)
                .and_then(|m| m.get(&manager))
                .cloned();
            let others_applied = store
                .applied
                .get(&path)
                .is_some_and(|m| m.keys().any(|k| k != &manager));
            store.version += 1;
            let version = store.version.to_string();
            let object = match store.objects.get(&path).cloned() {
                Some(mut object) => {
                    if !force && others_applied {
                        let mut found = Vec::new();
                        conflicts(&object, &applied, "", &mut found);
                        let found: Vec<String> = found
                            .into_iter()
                            .filter(|f| !f.starts_with(".metadata.resourceVersion"))
                            .collect();
                        if !found.is_empty() {
                            return status(
                                409,
                                "Conflict",
                                format!("Apply failed with conflicts: {}", found.join(", ")),
                            );
                        }
                    }
                    if let Some(previous) = &previous {
                        prune(&mut object, previous, &applied);
                    }
                    merge(&mut object, &applied);
                    object
                }
                None => {
                    let mut object = applied.clone();
                    object["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
                    object["metadata"]["creationTimestamp"] = json!("2026-12-01T00:00:00Z");
                    object
                }
            };
            let mut object = object;
            object["metadata"]["resourceVersion"] = json!(version);
            let managers: Vec<&String> = {
                let entry = store.applied.entry(path.clone()).or_default();
                entry.insert(manager.clone(), applied);
                entry.keys().collect::<Vec<_>>().into_iter().collect()
            };
            object["metadata"]["managedFields"] = json!(
                managers
                    .iter()
                    .map(|m| json!({"manager": m, "operation": "Apply"}))
                    .collect::<Vec<_>>()
            );
            store.objects.insert(path, object.clone());
            HttpResponse::Ok().json(object)
        }
        "DELETE" => {
            let Some(object) = store.objects.remove(&path) else {
                return status(404, "NotFound", format!("{path} not found"));
            };
            store.applied.remove(&path);
            // A namespace's objects go with it.
            if let Some(name) = path.strip_prefix("/api/v1/namespaces/")
                && !name.contains('/')
            {
                let inside = format!("/namespaces/{name}/");
                store.objects.retain(|k, _| !k.contains(&inside));
            }
            HttpResponse::Ok().json(object)
        }
        other => status(405, "MethodNotAllowed", format!("{other} is not served")),
    }
}
