//! The STAND-IN's object store: objects by API path, one resourceVersion counter bumped by
//! every write, and a bounded history of the changes so watches can resume from a
//! resourceVersion (or be told it expired, as an API server past its watch cache does).
//! Also what a path names (`Resource`) and label and field selectors.

use std::collections::{BTreeMap, VecDeque};

use serde_json::{Value, json};
use tokio::sync::watch;

/// How many changes the store remembers for watches.
pub const HISTORY: usize = 1000;

/// One write, as watches replay it: the object before and after (`None`: absent).
pub struct Change {
    pub version: u64,
    pub path: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// A watch asked for changes the store no longer remembers.
pub struct Expired {
    pub oldest: u64,
}

pub struct Store {
    /// Objects by their API path (`/api/v1/namespaces/x`, `/apis/…/namespaces/x/kind/name`).
    pub objects: BTreeMap<String, Value>,
    /// The last configuration each field manager applied, by path.
    pub applied: BTreeMap<String, BTreeMap<String, Value>>,
    version: u64,
    history: VecDeque<Change>,
    /// The newest version the history dropped: a watch from before it has expired.
    forgotten: u64,
    /// The current version, for watchers (and the kubelet) to wait on.
    changes: watch::Sender<u64>,
}

impl Store {
    pub fn new() -> Store {
        Store {
            objects: BTreeMap::new(),
            applied: BTreeMap::new(),
            version: 0,
            history: VecDeque::new(),
            forgotten: 0,
            changes: watch::channel(0).0,
        }
    }

    /// The resourceVersion of the last write.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Wakes on every write.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// Stores `object` at `path`, new or replacing, as the next resourceVersion; a new object
    /// without them gets a uid and a creation time. Returns the object as stored.
    pub fn put(&mut self, path: &str, mut object: Value) -> Value {
        let before = self.objects.get(path).cloned();
        if before.is_none() {
            let metadata = &mut object["metadata"];
            if metadata["uid"].is_null() {
                metadata["uid"] = json!(uuid::Uuid::new_v4().to_string());
            }
            if metadata["creationTimestamp"].is_null() {
                metadata["creationTimestamp"] = json!(now());
            }
        }
        self.version += 1;
        object["metadata"]["resourceVersion"] = json!(self.version.to_string());
        self.objects.insert(path.to_owned(), object.clone());
        self.record(path, before, Some(object.clone()));
        object
    }

    /// Changes the object at `path` in place, as a new resourceVersion; false when it is
    /// absent.
    pub fn update(&mut self, path: &str, change: impl FnOnce(&mut Value)) -> bool {
        let Some(mut object) = self.objects.get(path).cloned() else {
            return false;
        };
        change(&mut object);
        self.put(path, object);
        true
    }

    /// Deletes the object at `path` (a namespace takes its objects with it); returns it.
    pub fn delete(&mut self, path: &str) -> Option<Value> {
        let mut object = self.objects.remove(path)?;
        self.applied.remove(path);
        self.version += 1;
        object["metadata"]["resourceVersion"] = json!(self.version.to_string());
        self.record(path, Some(object.clone()), None);
        if let Some(Resource {
            plural,
            name: Some(namespace),
            namespace: None,
            ..
        }) = Resource::parse(path)
            && plural == "namespaces"
        {
            let inside: Vec<String> = self
                .objects
                .keys()
                .filter(|k| {
                    Resource::parse(k).is_some_and(|r| r.namespace.as_deref() == Some(&namespace))
                })
                .cloned()
                .collect();
            for path in inside {
                self.delete(&path);
            }
        }
        Some(object)
    }

    /// The changes after `version`, oldest first.
    pub fn changes_since(&self, version: u64) -> Result<impl Iterator<Item = &Change>, Expired> {
        if version < self.forgotten {
            return Err(Expired {
                oldest: self.forgotten + 1,
            });
        }
        Ok(self.history.iter().filter(move |c| c.version > version))
    }

    fn record(&mut self, path: &str, before: Option<Value>, after: Option<Value>) {
        if self.history.len() == HISTORY
            && let Some(dropped) = self.history.pop_front()
        {
            self.forgotten = dropped.version;
        }
        self.history.push_back(Change {
            version: self.version,
            path: path.to_owned(),
            before,
            after,
        });
        self.changes.send_replace(self.version);
    }
}

/// Now, as the API server writes times.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// What an API path names: a collection (`name` is `None`), an object, or an object's
/// subresource. `namespace` is `None` for cluster-scoped kinds and for a namespaced kind
/// listed across namespaces (`/api/v1/pods`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// `/api/v1` or `/apis/GROUP/VERSION`.
    pub api: String,
    pub namespace: Option<String>,
    pub plural: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
}

impl Resource {
    pub fn parse(path: &str) -> Option<Resource> {
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let (api, rest) = match segments.as_slice() {
            ["api", "v1", rest @ ..] => ("/api/v1".to_owned(), rest),
            ["apis", group, version, rest @ ..] => (format!("/apis/{group}/{version}"), rest),
            _ => return None,
        };
        let owned = |s: &&str| Some((*s).to_owned());
        let (namespace, plural, name, subresource) = match rest {
            [plural] => (None, *plural, None, None),
            [plural, name] => (None, *plural, owned(name), None),
            ["namespaces", ns, sub @ ("status" | "finalize")] => {
                (None, "namespaces", owned(ns), owned(sub))
            }
            ["namespaces", ns, plural] => (owned(ns), *plural, None, None),
            [plural, name, sub] => (None, *plural, owned(name), owned(sub)),
            ["namespaces", ns, plural, name] => (owned(ns), *plural, owned(name), None),
            ["namespaces", ns, plural, name, sub] => (owned(ns), *plural, owned(name), owned(sub)),
            _ => return None,
        };
        Some(Resource {
            api,
            namespace,
            plural: plural.to_owned(),
            name,
            subresource,
        })
    }

    /// The collection this resource is in (or is).
    pub fn collection_path(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{}/namespaces/{ns}/{}", self.api, self.plural),
            None => format!("{}/{}", self.api, self.plural),
        }
    }

    /// The path of the object `name` in this collection.
    pub fn object_path(&self, name: &str) -> String {
        format!("{}/{name}", self.collection_path())
    }

    /// Whether the object at `path` is in this collection.
    pub fn holds(&self, path: &str) -> bool {
        Resource::parse(path).is_some_and(|object| {
            object.name.is_some()
                && object.subresource.is_none()
                && object.api == self.api
                && object.plural == self.plural
                && (self.namespace.is_none() || object.namespace == self.namespace)
        })
    }

    /// The apiVersion of objects here (`v1`, `networking.k8s.io/v1`).
    pub fn api_version(&self) -> &str {
        self.api
            .strip_prefix("/apis/")
            .unwrap_or_else(|| self.api.trim_start_matches("/api/"))
    }

    /// The kind of objects here, for lists and bookmarks.
    pub fn kind(&self) -> String {
        let known = [
            ("pods", "Pod"),
            ("events", "Event"),
            ("namespaces", "Namespace"),
            ("configmaps", "ConfigMap"),
            ("secrets", "Secret"),
            ("serviceaccounts", "ServiceAccount"),
            ("resourcequotas", "ResourceQuota"),
            ("limitranges", "LimitRange"),
            ("networkpolicies", "NetworkPolicy"),
            ("endpointslices", "EndpointSlice"),
        ];
        match known.iter().find(|(plural, _)| *plural == self.plural) {
            Some((_, kind)) => (*kind).to_owned(),
            None => {
                let singular = self.plural.trim_end_matches('s');
                let mut chars = singular.chars();
                chars
                    .next()
                    .map(|c| c.to_uppercase().chain(chars).collect())
                    .unwrap_or_default()
            }
        }
    }
}

/// The `labelSelector` and `fieldSelector` of a list or watch.
#[derive(Debug, Clone, Default)]
pub struct Selectors {
    labels: Option<String>,
    fields: Option<String>,
}

impl Selectors {
    pub fn from_query(query: &BTreeMap<String, String>) -> Selectors {
        Selectors {
            labels: query.get("labelSelector").cloned(),
            fields: query.get("fieldSelector").cloned(),
        }
    }

    pub fn matches(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        let label = |key: &str| labels[key.trim()].as_str().map(str::to_owned);
        // A field is a dotted path into the object: `metadata.name`, `involvedObject.name`.
        let field = |key: &str| {
            let value = key
                .trim()
                .split('.')
                .fold(object, |value, part| &value[part]);
            match value {
                Value::String(s) => s.clone(),
                // An absent field selects like an empty one, as the API server's do.
                Value::Null => String::new(),
                other => other.to_string(),
            }
        };
        terms_match(self.labels.as_deref(), label)
            && terms_match(self.fields.as_deref(), |key| Some(field(key)))
    }
}

/// `k=v`, `k==v`, `k!=v`, `k` and `!k`, comma-combined (all must hold).
fn terms_match(selector: Option<&str>, value_of: impl Fn(&str) -> Option<String>) -> bool {
    let Some(selector) = selector.filter(|s| !s.trim().is_empty()) else {
        return true;
    };
    selector.split(',').all(|term| {
        if let Some((key, wanted)) = term.split_once("!=") {
            value_of(key).as_deref() != Some(wanted.trim())
        } else if let Some((key, wanted)) = term.split_once('=') {
            let wanted = wanted.trim_start_matches('=').trim();
            value_of(key).as_deref() == Some(wanted)
        } else if let Some(key) = term.trim().strip_prefix('!') {
            value_of(key).is_none()
        } else {
            value_of(term).is_some()
        }
    })
}
