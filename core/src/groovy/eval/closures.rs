//! Methods taking a closure (`each`, `collect`, `findAll`…): here rather than in `methods`,
//! since a closure may run steps.

use indexmap::IndexMap;

use super::super::ast::*;
use super::super::methods;
use super::super::value::{Obj, Value, compare};
use super::{Cx, Host, R, err, fail};
use crate::pipeline::Pos;

impl<'a, H: Host> Cx<'a, H> {
    /// A method call on a value: the closure methods here, the rest in [`methods`].
    pub(super) async fn method(
        &self,
        recv: Value,
        name: &str,
        args: Vec<(Option<String>, Value)>,
        d: u32,
        pos: Pos,
    ) -> R<Value> {
        let mut args: Vec<Value> = args.into_iter().map(|(_, v)| v).collect();
        if let Value::Closure(c) = &recv
            && name == "call"
        {
            return self.call_closure(c, args, d, pos).await;
        }
        let closure = match args.last() {
            Some(Value::Closure(_)) => match args.pop() {
                Some(Value::Closure(c)) => Some(c),
                _ => None,
            },
            _ => None,
        };
        let Some(c) = closure else {
            return methods::call(&recv, name, &args, self.host(), &self.scope)
                .map_err(|m| fail(pos, m));
        };
        // Methods with a closure: evaluated here, since the closure may run steps.
        if let (Value::Int(n), "times") = (&recv, name) {
            self.charge((*n).max(0) as u64, pos)?;
            for i in 0..*n {
                self.tick(pos).await?;
                self.call_closure(&c, vec![Value::Int(i)], d, pos).await?;
            }
            return Ok(Value::Null);
        }
        let is_map = matches!(recv, Value::Map(_));
        let items = self.iterate(&recv, pos)?;
        let call = async |item: Value, index: Option<usize>| -> R<Value> {
            self.tick(pos).await?;
            let mut args = vec![item];
            if let Some(i) = index {
                args.push(Value::Int(i as i64));
            }
            self.call_closure(&c, args, d, pos).await
        };
        let entry_parts = |item: &Value| match item {
            Value::Obj(o) => match &**o {
                Obj::Entry { key, value } => Some((key.clone(), (**value).clone())),
                _ => None,
            },
            _ => None,
        };
        Ok(match name {
            "each" => {
                for item in items {
                    call(item, None).await?;
                }
                recv
            }
            "eachWithIndex" => {
                for (i, item) in items.into_iter().enumerate() {
                    call(item, Some(i)).await?;
                }
                recv
            }
            "collect" => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    out.push(call(item, None).await?);
                }
                Value::list(out)
            }
            "findAll" | "grep" => {
                if is_map {
                    let mut out = IndexMap::new();
                    for item in items {
                        if call(item.clone(), None).await?.truthy()
                            && let Some((k, v)) = entry_parts(&item)
                        {
                            out.insert(k, v);
                        }
                    }
                    Value::map(out)
                } else {
                    let mut out = Vec::new();
                    for item in items {
                        if call(item.clone(), None).await?.truthy() {
                            out.push(item);
                        }
                    }
                    Value::list(out)
                }
            }
            "find" => {
                let mut found = Value::Null;
                for item in items {
                    if call(item.clone(), None).await?.truthy() {
                        found = item;
                        break;
                    }
                }
                found
            }
            "findIndexOf" => {
                let mut found = -1;
                for (i, item) in items.into_iter().enumerate() {
                    if call(item, None).await?.truthy() {
                        found = i as i64;
                        break;
                    }
                }
                Value::Int(found)
            }
            "findResult" => {
                let mut found = Value::Null;
                for item in items {
                    let v = call(item, None).await?;
                    if !matches!(v, Value::Null) {
                        found = v;
                        break;
                    }
                }
                found
            }
            "any" => {
                let mut any = false;
                for item in items {
                    if call(item, None).await?.truthy() {
                        any = true;
                        break;
                    }
                }
                Value::Bool(any)
            }
            "every" => {
                let mut every = true;
                for item in items {
                    if !call(item, None).await?.truthy() {
                        every = false;
                        break;
                    }
                }
                Value::Bool(every)
            }
            "count" => {
                let mut n = 0;
                for item in items {
                    if call(item, None).await?.truthy() {
                        n += 1;
                    }
                }
                Value::Int(n)
            }
            "collectEntries" => {
                let mut out = IndexMap::new();
                for item in items {
                    match call(item, None).await? {
                        Value::List(pair) => {
                            let pair = pair.lock().clone();
                            if let [k, v] = pair.as_slice() {
                                out.insert(k.show(), v.clone());
                            }
                        }
                        Value::Map(m) => {
                            for (k, v) in m.lock().iter() {
                                out.insert(k.clone(), v.clone());
                            }
                        }
                        other => {
                            return err(
                                pos,
                                "groovy.lang.GroovyRuntimeException",
                                format!(
                                    "collectEntries needs [key, value] or a map from its closure, not a {}",
                                    other.type_name()
                                ),
                            );
                        }
                    }
                }
                Value::map(out)
            }
            "groupBy" => {
                let mut out: IndexMap<String, Value> = IndexMap::new();
                for item in items {
                    let key = call(item.clone(), None).await?.show();
                    match out.get(&key) {
                        Some(Value::List(l)) => l.lock().push(item),
                        _ => {
                            out.insert(key, Value::list(vec![item]));
                        }
                    }
                }
                Value::map(out)
            }
            "sum" => {
                let mut total = Value::Int(0);
                for item in items {
                    let v = call(item, None).await?;
                    total =
                        methods::arithmetic(BinOp::Add, &total, &v).map_err(|m| fail(pos, m))?;
                }
                total
            }
            "inject" => {
                let mut acc = args.into_iter().next().unwrap_or(Value::Null);
                for item in items {
                    self.tick(pos).await?;
                    acc = self.call_closure(&c, vec![acc, item], d, pos).await?;
                }
                acc
            }
            "sort" | "max" | "min" | "toSorted" => {
                // A two-parameter closure is a comparator: a merge sort asking it (stable,
                // n log n calls, each counted against the budget).
                if c.def.params.len() == 2 {
                    let mut sorted: Vec<Value> = items;
                    let mut width = 1;
                    while width < sorted.len() {
                        let mut merged = Vec::with_capacity(sorted.len());
                        for chunk in sorted.chunks(2 * width) {
                            let (left, right) = chunk.split_at(width.min(chunk.len()));
                            let (mut i, mut j) = (0, 0);
                            while i < left.len() && j < right.len() {
                                self.tick(pos).await?;
                                let order = self
                                    .call_closure(
                                        &c,
                                        vec![left[i].clone(), right[j].clone()],
                                        d,
                                        pos,
                                    )
                                    .await?;
                                let right_first = match order {
                                    Value::Int(n) => n > 0,
                                    Value::Float(f) => f > 0.0,
                                    Value::Bool(b) => b,
                                    _ => false,
                                };
                                if right_first {
                                    merged.push(right[j].clone());
                                    j += 1;
                                } else {
                                    merged.push(left[i].clone());
                                    i += 1;
                                }
                            }
                            merged.extend_from_slice(&left[i..]);
                            merged.extend_from_slice(&right[j..]);
                        }
                        sorted = merged;
                        width *= 2;
                    }
                    return Ok(match name {
                        "max" => sorted.pop().unwrap_or(Value::Null),
                        "min" => sorted.into_iter().next().unwrap_or(Value::Null),
                        _ => {
                            if let (Value::List(l), "sort") = (&recv, name) {
                                *l.lock() = sorted.clone();
                            }
                            Value::list(sorted)
                        }
                    });
                }
                let mut keyed = Vec::with_capacity(items.len());
                for item in items {
                    keyed.push((call(item.clone(), None).await?, item));
                }
                keyed.sort_by(|a, b| compare(&a.0, &b.0).unwrap_or(std::cmp::Ordering::Equal));
                match name {
                    "max" => keyed.pop().map(|(_, v)| v).unwrap_or(Value::Null),
                    "min" => keyed
                        .into_iter()
                        .next()
                        .map(|(_, v)| v)
                        .unwrap_or(Value::Null),
                    _ => {
                        let sorted: Vec<Value> = keyed.into_iter().map(|(_, v)| v).collect();
                        if let (Value::List(l), "sort") = (&recv, name) {
                            *l.lock() = sorted.clone();
                        }
                        Value::list(sorted)
                    }
                }
            }
            "withIndex" | "eachLine" => {
                for (i, item) in items.into_iter().enumerate() {
                    call(item, (name == "withIndex").then_some(i)).await?;
                }
                recv
            }
            _ => {
                return err(
                    pos,
                    "groovy.lang.MissingMethodException",
                    format!(
                        "No signature of method: {}.{name}() taking a closure",
                        recv.type_name()
                    ),
                );
            }
        })
    }
}
