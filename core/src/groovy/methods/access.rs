//! Reading values: indexing (`list[-1]`, `text[0..2]`, `matcher[0][1]`), properties
//! (`map.key`, `env.X`, `err.message`), and the methods of `env`, `params`, exceptions,
//! matchers and map entries.

use super::super::eval::Host;
use super::super::value::{Obj, Value, range_len};
use super::{E, at, bad_arg, no_method, str_arg};

/// The span a range index selects, checked against `len`.
fn span(len: usize, from: i64, to: i64) -> Result<(usize, usize, bool), E> {
    let (a, b) = (at(len, from), at(len, to));
    match (a, b) {
        (Some(a), Some(b)) if a <= b => Ok((a, b + 1, false)),
        (Some(a), Some(b)) => Ok((b, a + 1, true)),
        _ => Err((
            "java.lang.IndexOutOfBoundsException",
            format!("range {from}..{to} is outside 0..{}", len as i64 - 1),
        )),
    }
}

pub fn index<H: Host>(o: &Value, i: &Value, host: &H, scope: &H::Scope) -> Result<Value, E> {
    Ok(match (o, i) {
        (Value::List(l), Value::Int(n)) => {
            let l = l.lock();
            at(l.len(), *n).map(|k| l[k].clone()).unwrap_or(Value::Null)
        }
        (Value::List(l), Value::Range { from, to }) => {
            let l = l.lock();
            let (a, b, rev) = span(l.len(), *from, *to)?;
            let mut part = l[a..b].to_vec();
            if rev {
                part.reverse();
            }
            Value::list(part)
        }
        (Value::Str(s), Value::Int(n)) => {
            let chars: Vec<char> = s.chars().collect();
            match at(chars.len(), *n) {
                Some(k) => Value::str(chars[k].to_string()),
                None => {
                    return Err((
                        "java.lang.StringIndexOutOfBoundsException",
                        format!(
                            "index {n} is outside a string of {} characters",
                            chars.len()
                        ),
                    ));
                }
            }
        }
        (Value::Str(s), Value::Range { from, to }) => {
            let chars: Vec<char> = s.chars().collect();
            let (a, b, rev) = span(chars.len(), *from, *to)?;
            let mut part: Vec<char> = chars[a..b].to_vec();
            if rev {
                part.reverse();
            }
            Value::str(part.into_iter().collect::<String>())
        }
        (Value::Range { from, to }, Value::Int(n)) => {
            let len = range_len(*from, *to);
            match at(len.min(usize::MAX as u64) as usize, *n) {
                Some(k) => Value::Int(if from <= to {
                    from + k as i64
                } else {
                    from - k as i64
                }),
                None => Value::Null,
            }
        }
        (Value::Map(m), key) => {
            let key = key.show();
            m.lock().get(&key).cloned().unwrap_or(Value::Null)
        }
        (Value::Obj(obj), key) => match &**obj {
            Obj::Matcher { matches } => {
                let Value::Int(n) = key else {
                    return Err(bad_arg("a matcher's index", "an integer"));
                };
                match at(matches.len(), *n) {
                    Some(k) => match_value(&matches[k]),
                    None => {
                        return Err((
                            "java.lang.IndexOutOfBoundsException",
                            format!("the pattern matched {} times, not {}", matches.len(), n + 1),
                        ));
                    }
                }
            }
            Obj::Env => host
                .env(scope, &key.show())
                .map(Value::str)
                .unwrap_or(Value::Null),
            Obj::Params => host.param(&key.show()).unwrap_or(Value::Null),
            _ => return Err(no_index(o, i)),
        },
        (Value::Null, _) => {
            return Err((
                "java.lang.NullPointerException",
                "Cannot get an element of a null object".into(),
            ));
        }
        _ => return Err(no_index(o, i)),
    })
}

fn no_index(o: &Value, i: &Value) -> E {
    (
        "groovy.lang.MissingMethodException",
        format!("cannot index a {} with a {}", o.type_name(), i.type_name()),
    )
}

/// One match as Groovy gives it: the text, or `[text, group1, …]` when there are groups.
fn match_value(groups: &[Option<String>]) -> Value {
    let show = |g: &Option<String>| g.as_deref().map(Value::str).unwrap_or(Value::Null);
    if groups.len() == 1 {
        show(&groups[0])
    } else {
        Value::list(groups.iter().map(show).collect())
    }
}

pub fn property<H: Host>(o: &Value, name: &str, host: &H, scope: &H::Scope) -> Result<Value, E> {
    let missing = || {
        (
            "groovy.lang.MissingPropertyException",
            format!("No such property: {name} for {}", o.type_name()),
        )
    };
    Ok(match o {
        Value::Map(m) => m.lock().get(name).cloned().unwrap_or(Value::Null),
        Value::List(l) => {
            // `list.name` collects the property from every element.
            let items = l.lock().clone();
            let mut out = Vec::with_capacity(items.len());
            for item in &items {
                out.push(property(item, name, host, scope)?);
            }
            Value::list(out)
        }
        Value::Obj(obj) => match &**obj {
            Obj::Env => host.env(scope, name).map(Value::str).unwrap_or(Value::Null),
            Obj::Params => host.param(name).unwrap_or(Value::Null),
            Obj::PreviousBuild { result } => match name {
                "result" | "currentResult" => {
                    result.as_deref().map(Value::str).unwrap_or(Value::Null)
                }
                _ => return Err(missing()),
            },
            Obj::Exception { message, class } => match name {
                "message" | "localizedMessage" => Value::str(message.as_str()),
                "cause" => Value::Null,
                "simpleName" => Value::str(class.rsplit('.').next().unwrap_or(class)),
                _ => return Err(missing()),
            },
            Obj::Entry { key, value } => match name {
                "key" => Value::str(key.as_str()),
                "value" => (**value).clone(),
                _ => return Err(missing()),
            },
            Obj::Descriptor { args, .. } => args
                .iter()
                .find(|(k, _)| k.as_deref() == Some(name))
                .map(|(_, v)| v.clone())
                .unwrap_or(Value::Null),
            Obj::Matcher { matches } if name == "count" => Value::Int(matches.len() as i64),
            _ => return Err(missing()),
        },
        Value::Range { from, to } => match name {
            "from" => Value::Int(*from.min(to)),
            "to" => Value::Int(*from.max(to)),
            _ => return Err(missing()),
        },
        _ => return Err(missing()),
    })
}

pub(super) fn obj_method<H: Host>(
    obj: &Obj,
    recv: &Value,
    name: &str,
    args: &[Value],
    host: &H,
    scope: &H::Scope,
) -> Result<Value, E> {
    match (obj, name) {
        (Obj::Env, "getProperty") | (Obj::Env, "get") => Ok(host
            .env(scope, &str_arg(args, 0, name)?)
            .map(Value::str)
            .unwrap_or(Value::Null)),
        (Obj::Env, "setProperty") | (Obj::Env, "put") => {
            let key = str_arg(args, 0, name)?;
            let value = args
                .get(1)
                .filter(|v| !matches!(v, Value::Null))
                .map(Value::show);
            host.set_env(scope, &key, value);
            Ok(Value::Null)
        }
        (Obj::Env, "getEnvironment") | (Obj::Env, "getOverriddenEnvironment") => Ok(Value::map(
            host.env_all(scope)
                .into_iter()
                .map(|(k, v)| (k, Value::str(v)))
                .collect(),
        )),
        (Obj::Params, "get" | "getProperty") => {
            let key = str_arg(args, 0, name)?;
            Ok(host
                .param(&key)
                .unwrap_or_else(|| args.get(1).cloned().unwrap_or(Value::Null)))
        }
        (Obj::Params, "containsKey") => {
            let key = str_arg(args, 0, name)?;
            Ok(Value::Bool(host.param(&key).is_some()))
        }
        (Obj::Params, "keySet") => Ok(Value::list(
            host.params()
                .into_iter()
                .map(|(k, _)| Value::str(k))
                .collect(),
        )),
        (Obj::Params, "size") => Ok(Value::Int(host.params().len() as i64)),
        (Obj::Exception { message, .. }, "getMessage" | "getLocalizedMessage") => {
            Ok(Value::str(message.as_str()))
        }
        (Obj::Exception { .. }, "getCause") => Ok(Value::Null),
        (Obj::Matcher { matches }, "find" | "matches") => Ok(Value::Bool(!matches.is_empty())),
        (Obj::Matcher { matches }, "getCount" | "size") => Ok(Value::Int(matches.len() as i64)),
        (Obj::Matcher { matches }, "group") => {
            let n = match args.first() {
                Some(Value::Int(n)) => *n,
                None => 0,
                Some(Value::Str(g)) => {
                    return Err(bad_arg(
                        "group",
                        &format!("a group number (`{g}`: named groups are not supported)"),
                    ));
                }
                _ => return Err(bad_arg("group", "a group number")),
            };
            let Some(first) = matches.first() else {
                return Err(("java.lang.IllegalStateException", "No match found".into()));
            };
            usize::try_from(n)
                .ok()
                .and_then(|k| first.get(k))
                .map(|g| g.as_deref().map(Value::str).unwrap_or(Value::Null))
                .ok_or_else(|| {
                    (
                        "java.lang.IndexOutOfBoundsException",
                        format!("No group {n}"),
                    )
                })
        }
        (Obj::Entry { key, .. }, "getKey") => Ok(Value::str(key.as_str())),
        (Obj::Entry { value, .. }, "getValue") => Ok((**value).clone()),
        (Obj::PreviousBuild { result }, "getResult") => {
            Ok(result.as_deref().map(Value::str).unwrap_or(Value::Null))
        }
        _ => Err(no_method(recv, name)),
    }
}
