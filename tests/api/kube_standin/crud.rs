//! The STAND-IN's REST verbs on objects: get, list (or watch), create, patch (server-side
//! apply or merge) and delete. New objects in a namespace need the namespace to exist, and
//! new pods pass Pod Security admission, whether created or applied.

use std::collections::BTreeMap;
use std::sync::Arc;

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::apply::{conflicts, merge, merge_patch, prune};
use super::store::{Resource, Selectors, Store};
use super::{Cluster, Refusal, admission, flag, query_map, status, watch};

pub async fn handle(
    req: HttpRequest,
    body: web::Bytes,
    cluster: web::Data<Arc<Cluster>>,
) -> HttpResponse {
    let path = req.path().trim_end_matches('/');
    let query = query_map(req.query_string());
    let Some(resource) = Resource::parse(path) else {
        return status(
            404,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
        );
    };
    let subresource = resource.subresource.as_deref();
    if subresource.is_some_and(|s| s != "status") {
        return status(
            404,
            "NotFound",
            format!("the stand-in does not serve {path}"),
        );
    }
    match (req.method().as_str(), resource.name.as_deref()) {
        ("GET", None) if flag(&query, "watch") => {
            watch::serve(cluster.get_ref().clone(), resource, &query)
        }
        ("GET", None) => list(&cluster, &resource, &query),
        ("GET", Some(name)) => match cluster.store().objects.get(&resource.object_path(name)) {
            Some(object) => HttpResponse::Ok().json(object),
            None => not_found(&resource, name),
        },
        ("POST", None) => create(&cluster, &resource, &body),
        ("PATCH", Some(name)) => {
            let content_type = req
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            match content_type {
                "application/apply-patch+yaml" => apply(&cluster, &resource, name, &query, &body),
                // Strategic merge is taken as a JSON merge patch (lists are replaced whole).
                "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                    patch(&cluster, &resource, name, &body)
                }
                other => status(
                    415,
                    "UnsupportedMediaType",
                    format!("the stand-in takes apply and merge patches, not {other}"),
                ),
            }
        }
        ("DELETE", Some(name)) if subresource.is_none() => delete(&cluster, &resource, name),
        (method, _) => status(
            405,
            "MethodNotAllowed",
            format!("{method} is not served on {path}"),
        ),
    }
}

/// `pods` for core kinds, `networkpolicies.networking.k8s.io` for others, as messages say.
fn qualified(resource: &Resource) -> String {
    match resource.api.strip_prefix("/apis/") {
        Some(group) => format!(
            "{}.{}",
            resource.plural,
            group.split('/').next().unwrap_or_default()
        ),
        None => resource.plural.clone(),
    }
}

fn not_found(resource: &Resource, name: &str) -> HttpResponse {
    status(
        404,
        "NotFound",
        format!("{} \"{name}\" not found", qualified(resource)),
    )
}

fn parse_body(body: &[u8]) -> Result<Value, Refusal> {
    // Apply bodies may be YAML; kube-rs sends JSON, which YAML reads too.
    serde_json::from_slice(body)
        .or_else(|_| serde_yaml_ng::from_slice(body))
        .map_err(|err| Refusal::new(400, "BadRequest", err.to_string()))
}

fn list(cluster: &Cluster, resource: &Resource, query: &BTreeMap<String, String>) -> HttpResponse {
    let selectors = Selectors::from_query(query);
    let store = cluster.store();
    let items: Vec<&Value> = store
        .objects
        .iter()
        .filter(|(path, object)| resource.holds(path) && selectors.matches(object))
        .map(|(_, object)| object)
        .collect();
    HttpResponse::Ok().json(json!({
        "apiVersion": resource.api_version(), "kind": format!("{}List", resource.kind()),
        "metadata": {"resourceVersion": store.version().to_string()},
        "items": items,
    }))
}

/// What a new object must pass: its namespace exists, and a pod is admitted by the
/// namespace's Pod Security level.
fn admit(store: &Store, resource: &Resource, name: &str, object: &Value) -> Result<(), Refusal> {
    let Some(ns) = &resource.namespace else {
        return Ok(());
    };
    let Some(namespace) = store.objects.get(&format!("/api/v1/namespaces/{ns}")) else {
        return Err(Refusal::new(
            404,
            "NotFound",
            format!("namespaces \"{ns}\" not found"),
        ));
    };
    if resource.api == "/api/v1" && resource.plural == "pods" {
        admission::check(namespace, name, object)
            .map_err(|message| Refusal::new(403, "Forbidden", message))?;
    }
    Ok(())
}

/// Fills in what a new object gets from where it is created.
fn place(resource: &Resource, object: &mut Value) -> Result<(), Refusal> {
    if let Some(ns) = &resource.namespace {
        match object["metadata"]["namespace"].as_str() {
            Some(given) if given != ns => {
                return Err(Refusal::new(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            _ => object["metadata"]["namespace"] = json!(ns),
        }
    }
    if object["apiVersion"].is_null() {
        object["apiVersion"] = json!(resource.api_version());
    }
    if object["kind"].is_null() {
        object["kind"] = json!(resource.kind());
    }
    Ok(())
}

fn create(cluster: &Cluster, resource: &Resource, body: &[u8]) -> HttpResponse {
    let mut object = match parse_body(body) {
        Ok(object) => object,
        Err(refusal) => return refusal.into(),
    };
    let name = match (
        object["metadata"]["name"].as_str(),
        object["metadata"]["generateName"].as_str(),
    ) {
        (Some(name), _) => name.to_owned(),
        (None, Some(prefix)) => format!(
            "{prefix}{}",
            &uuid::Uuid::new_v4().simple().to_string()[..5]
        ),
        (None, None) => {
            return status(
                422,
                "Invalid",
                "metadata.name: Required value: name or generateName is required",
            );
        }
    };
    object["metadata"]["name"] = json!(name);
    // What the server sets is not taken from the client.
    if let Some(metadata) = object["metadata"].as_object_mut() {
        for key in [
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "managedFields",
        ] {
            metadata.remove(key);
        }
    }
    if let Err(refusal) = place(resource, &mut object) {
        return refusal.into();
    }
    let path = resource.object_path(&name);
    let mut store = cluster.store();
    if store.objects.contains_key(&path) {
        return status(
            409,
            "AlreadyExists",
            format!("{} \"{name}\" already exists", qualified(resource)),
        );
    }
    if let Err(refusal) = admit(&store, resource, &name, &object) {
        return refusal.into();
    }
    HttpResponse::Created().json(store.put(&path, object))
}

/// Server-side apply as field manager `fieldManager`.
fn apply(
    cluster: &Cluster,
    resource: &Resource,
    name: &str,
    query: &BTreeMap<String, String>,
    body: &[u8],
) -> HttpResponse {
    let Some(manager) = query.get("fieldManager").cloned() else {
        return status(400, "BadRequest", "fieldManager is required for apply");
    };
    let force = flag(query, "force");
    let applied = match parse_body(body) {
        Ok(applied) => applied,
        Err(refusal) => return refusal.into(),
    };
    let path = resource.object_path(name);
    let mut store = cluster.store();
    let previous = store
        .applied
        .get(&path)
        .and_then(|m| m.get(&manager))
        .cloned();
    let others_applied = store
        .applied
        .get(&path)
        .is_some_and(|m| m.keys().any(|k| k != &manager));
    let existing = store.objects.get(&path).cloned();
    let created = existing.is_none();
    let mut object = match existing {
        Some(mut object) => {
            if !force && others_applied {
                let mut found = Vec::new();
                conflicts(&object, &applied, "", &mut found);
                found.retain(|f| !f.starts_with(".metadata.resourceVersion"));
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
            if let Err(refusal) = place(resource, &mut object) {
                return refusal.into();
            }
            if let Err(refusal) = admit(&store, resource, name, &object) {
                return refusal.into();
            }
            object
        }
    };
    let managers = store.applied.entry(path.clone()).or_default();
    managers.insert(manager, applied);
    object["metadata"]["managedFields"] = json!(
        managers
            .keys()
            .map(|m| json!({"manager": m, "operation": "Apply"}))
            .collect::<Vec<_>>()
    );
    let stored = store.put(&path, object);
    if created {
        HttpResponse::Created().json(stored)
    } else {
        HttpResponse::Ok().json(stored)
    }
}

/// A merge patch on an existing object.
fn patch(cluster: &Cluster, resource: &Resource, name: &str, body: &[u8]) -> HttpResponse {
    let change = match parse_body(body) {
        Ok(change) => change,
        Err(refusal) => return refusal.into(),
    };
    let path = resource.object_path(name);
    let mut store = cluster.store();
    if !store.update(&path, |object| merge_patch(object, &change)) {
        return not_found(resource, name);
    }
    HttpResponse::Ok().json(&store.objects[&path])
}

fn delete(cluster: &Cluster, resource: &Resource, name: &str) -> HttpResponse {
    if resource.api == "/api/v1" && resource.plural == "pods" && cluster.kubelet.fail_this_delete()
    {
        return status(
            500,
            "InternalError",
            "Internal error occurred: the stand-in fails this delete on purpose",
        );
    }
    match cluster.store().delete(&resource.object_path(name)) {
        Some(object) => HttpResponse::Ok().json(object),
        None => not_found(resource, name),
    }
}
