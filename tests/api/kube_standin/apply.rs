//! Server-side apply and merge patches on the STAND-IN's JSON objects: what a field manager
//! no longer applies is pruned, maps merge key by key, and without `force` a manager may not
//! change a value another manager set.

use serde_json::Value;

/// Removes from `object` what `old` had and `new` no longer has (a manager's dropped fields).
pub fn prune(object: &mut Value, old: &Value, new: &Value) {
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
pub fn merge(object: &mut Value, applied: &Value) {
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

/// A JSON merge patch (RFC 7386): maps merge, `null` removes, everything else replaced.
pub fn merge_patch(object: &mut Value, patch: &Value) {
    let Some(patch) = patch.as_object() else {
        *object = patch.clone();
        return;
    };
    if !object.is_object() {
        *object = Value::Object(serde_json::Map::new());
    }
    if let Some(object) = object.as_object_mut() {
        for (key, value) in patch {
            if value.is_null() {
                object.remove(key);
            } else {
                merge_patch(object.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// The scalar leaves of `applied` that `object` holds with another value.
pub fn conflicts(object: &Value, applied: &Value, at: &str, out: &mut Vec<String>) {
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
