//! List, range and map methods of Groovy's GDK.

use std::sync::Arc;

use indexmap::IndexMap;

use super::super::ast::BinOp;
use super::super::value::{Value, compare, equals, range_items, range_len};
use super::{E, MAX_ITEMS, arithmetic, at, bad_arg, int_arg, no_method, too_big, unique};

pub(super) fn list_method(recv: &Value, name: &str, args: &[Value]) -> Result<Value, E> {
    if let Value::Range { from, to } = recv {
        match name {
            "size" => return Ok(Value::Int(range_len(*from, *to) as i64)),
            "contains" => {
                return Ok(Value::Bool(
                    matches!(args.first(), Some(Value::Int(n)) if (*from.min(to)..=*from.max(to)).contains(n)),
                ));
            }
            "getFrom" => return Ok(Value::Int(*from.min(to))),
            "getTo" => return Ok(Value::Int(*from.max(to))),
            _ => {
                if range_len(*from, *to) > MAX_ITEMS {
                    return Err(too_big());
                }
                let list = Value::list(range_items(*from, *to).map(Value::Int).collect());
                return list_method(&list, name, args);
            }
        }
    }
    let Value::List(l) = recv else {
        return Err(no_method(recv, name));
    };
    let first = args.first().cloned().unwrap_or(Value::Null);
    let items = || l.lock().clone();
    Ok(match name {
        "size" => Value::Int(l.lock().len() as i64),
        "isEmpty" => Value::Bool(l.lock().is_empty()),
        "add" | "push" | "leftShift" if args.len() == 1 => {
            l.lock().push(first);
            Value::Bool(true)
        }
        "add" if args.len() == 2 => {
            let i = int_arg(args, 0, name)?;
            let mut l = l.lock();
            let k = usize::try_from(i)
                .ok()
                .filter(|k| *k <= l.len())
                .ok_or_else(|| {
                    (
                        "java.lang.IndexOutOfBoundsException",
                        format!("Index: {i}, Size: {}", l.len()),
                    )
                })?;
            l.insert(k, args[1].clone());
            Value::Null
        }
        "addAll" => {
            let more = first.items().ok_or_else(|| bad_arg(name, "a list"))?;
            l.lock().extend(more);
            Value::Bool(true)
        }
        "remove" | "removeAt" => match first {
            Value::Int(i) => {
                let mut l = l.lock();
                let k = at(l.len(), i).filter(|_| i >= 0).ok_or_else(|| {
                    (
                        "java.lang.IndexOutOfBoundsException",
                        format!("Index: {i}, Size: {}", l.len()),
                    )
                })?;
                l.remove(k)
            }
            other => {
                let found = items().iter().position(|x| equals(x, &other));
                let mut l = l.lock();
                match found.filter(|k| *k < l.len()) {
                    Some(k) => {
                        l.remove(k);
                        Value::Bool(true)
                    }
                    None => Value::Bool(false),
                }
            }
        },
        "pop" => l.lock().pop().ok_or_else(|| {
            (
                "java.util.NoSuchElementException",
                "Cannot pop() an empty List".into(),
            )
        })?,
        "clear" => {
            l.lock().clear();
            Value::Null
        }
        "get" | "getAt" => {
            let i = int_arg(args, 0, name)?;
            let l = l.lock();
            at(l.len(), i).map(|k| l[k].clone()).unwrap_or(Value::Null)
        }
        "contains" => Value::Bool(items().iter().any(|x| equals(x, &first))),
        "containsAll" => {
            let want = first.items().ok_or_else(|| bad_arg(name, "a list"))?;
            let have = items();
            Value::Bool(want.iter().all(|w| have.iter().any(|h| equals(h, w))))
        }
        "indexOf" => Value::Int(
            items()
                .iter()
                .position(|x| equals(x, &first))
                .map_or(-1, |k| k as i64),
        ),
        "join" => {
            let sep = args.first().map(Value::show).unwrap_or_default();
            Value::str(
                items()
                    .iter()
                    .map(Value::show)
                    .collect::<Vec<_>>()
                    .join(&sep),
            )
        }
        "first" | "head" => items().into_iter().next().ok_or_else(empty)?,
        "last" => items().pop().ok_or_else(empty)?,
        "tail" => Value::list(items().into_iter().skip(1).collect()),
        "init" => {
            let mut v = items();
            v.pop();
            Value::list(v)
        }
        "take" => Value::list(
            items()
                .into_iter()
                .take(int_arg(args, 0, name)?.max(0) as usize)
                .collect(),
        ),
        "drop" => Value::list(
            items()
                .into_iter()
                .skip(int_arg(args, 0, name)?.max(0) as usize)
                .collect(),
        ),
        "subList" => {
            let v = items();
            let (a, b) = (int_arg(args, 0, name)?, int_arg(args, 1, name)?);
            if a < 0 || b < a || b as usize > v.len() {
                return Err((
                    "java.lang.IndexOutOfBoundsException",
                    format!("subList({a}, {b}) of {}", v.len()),
                ));
            }
            Value::list(v[a as usize..b as usize].to_vec())
        }
        "reverse" => Value::list(items().into_iter().rev().collect()),
        "sort" | "toSorted" => {
            let mut v = items();
            sort(&mut v)?;
            if name == "sort" {
                *l.lock() = v.clone();
            }
            Value::list(v)
        }
        "unique" | "toUnique" | "toSet" => {
            let v = unique(items());
            if name == "unique" {
                *l.lock() = v.clone();
            }
            Value::list(v)
        }
        "flatten" => {
            fn flat(v: &[Value], out: &mut Vec<Value>, depth: usize) {
                for x in v {
                    match x {
                        Value::List(inner) if depth < 32 => {
                            flat(&inner.lock().clone(), out, depth + 1)
                        }
                        other => out.push(other.clone()),
                    }
                }
            }
            let mut out = Vec::new();
            flat(&items(), &mut out, 0);
            Value::list(out)
        }
        "sum" => {
            let mut total = match items().first() {
                Some(Value::Str(_)) => Value::str(""),
                _ => Value::Int(0),
            };
            for x in items() {
                total = arithmetic(BinOp::Add, &total, &x)?;
            }
            total
        }
        "max" | "min" => {
            let mut v = items();
            sort(&mut v)?;
            (if name == "max" {
                v.pop()
            } else {
                v.into_iter().next()
            })
            .unwrap_or(Value::Null)
        }
        "count" => Value::Int(items().iter().filter(|x| equals(x, &first)).count() as i64),
        "plus" => arithmetic(BinOp::Add, recv, &first)?,
        "minus" => arithmetic(BinOp::Sub, recv, &first)?,
        "intersect" => {
            let other = first.items().ok_or_else(|| bad_arg(name, "a list"))?;
            Value::list(
                items()
                    .into_iter()
                    .filter(|x| other.iter().any(|y| equals(x, y)))
                    .collect(),
            )
        }
        "toList" | "asList" | "collect" => Value::list(items()),
        "asImmutable" | "asUnmodifiable" => recv.clone(),
        _ => return Err(no_method(recv, name)),
    })
}

fn empty() -> E {
    (
        "java.util.NoSuchElementException",
        "the list is empty".into(),
    )
}

fn sort(v: &mut [Value]) -> Result<(), E> {
    for pair in v.windows(2) {
        if compare(&pair[0], &pair[1]).is_none() {
            return Err((
                "java.lang.ClassCastException",
                format!(
                    "cannot sort a {} with a {}",
                    pair[0].type_name(),
                    pair[1].type_name()
                ),
            ));
        }
    }
    v.sort_by(|a, b| compare(a, b).unwrap_or(std::cmp::Ordering::Equal));
    Ok(())
}

pub(super) fn map_method(
    m: &Arc<super::super::value::Shared<IndexMap<String, Value>>>,
    recv: &Value,
    name: &str,
    args: &[Value],
) -> Result<Value, E> {
    // The key is computed before the map is locked: it may be the map itself.
    let key = args.first().map(Value::show).unwrap_or_default();
    let key = || key.clone();
    Ok(match name {
        "size" => Value::Int(m.lock().len() as i64),
        "isEmpty" => Value::Bool(m.lock().is_empty()),
        "get" | "getAt" => m
            .lock()
            .get(&key())
            .cloned()
            .unwrap_or_else(|| args.get(1).cloned().unwrap_or(Value::Null)),
        "getOrDefault" => m
            .lock()
            .get(&key())
            .cloned()
            .unwrap_or_else(|| args.get(1).cloned().unwrap_or(Value::Null)),
        "containsKey" => Value::Bool(m.lock().contains_key(&key())),
        "containsValue" => {
            let want = args.first().cloned().unwrap_or(Value::Null);
            let values: Vec<Value> = m.lock().values().cloned().collect();
            Value::Bool(values.iter().any(|v| equals(v, &want)))
        }
        "put" => m
            .lock()
            .insert(key(), args.get(1).cloned().unwrap_or(Value::Null))
            .unwrap_or(Value::Null),
        "putAll" => {
            let Some(Value::Map(other)) = args.first() else {
                return Err(bad_arg(name, "a map"));
            };
            let other = other.lock().clone();
            m.lock().extend(other);
            Value::Null
        }
        "remove" => m.lock().shift_remove(&key()).unwrap_or(Value::Null),
        "keySet" | "keys" => Value::list(m.lock().keys().map(|k| Value::str(k.as_str())).collect()),
        "values" => Value::list(m.lock().values().cloned().collect()),
        "entrySet" => Value::list(recv.items().unwrap_or_default()),
        "plus" => arithmetic(BinOp::Add, recv, args.first().unwrap_or(&Value::Null))?,
        "clear" => {
            m.lock().clear();
            Value::Null
        }
        _ => return Err(no_method(recv, name)),
    })
}
