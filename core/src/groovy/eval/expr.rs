//! Expressions: literals, variables, properties, calls, operators, assignment.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use indexmap::IndexMap;

use super::super::ast::*;
use super::super::methods;
use super::super::value::{Closure, Obj, Value, compare, equals};
use super::{Cx, DESCRIPTORS, EXCEPTIONS, Frame, Host, R, Signal, StepCall, err, fail, overflow};
use crate::pipeline::Pos;

impl<'a, H: Host> Cx<'a, H> {
    // ---- expressions ----

    pub(super) fn eval<'b>(
        &'b self,
        e: &'b Expr,
        frame: &'b Arc<Frame>,
        d: u32,
    ) -> BoxFuture<'b, R<Value>> {
        Box::pin(async move {
            self.tick(e.pos).await?;
            let d = self.deeper(d, e.pos)?;
            let pos = e.pos;
            let v = match &e.kind {
                ExprKind::Null => Value::Null,
                ExprKind::Bool(b) => Value::Bool(*b),
                ExprKind::Int(n) => Value::Int(*n),
                ExprKind::Float(f) => Value::Float(*f),
                ExprKind::Str(s) => Value::str(s.as_str()),
                ExprKind::GStr(parts) => {
                    let mut out = String::new();
                    for part in parts {
                        match part {
                            GPart::Text(t) => out.push_str(t),
                            GPart::Expr(x) => out.push_str(&self.eval(x, frame, d).await?.show()),
                        }
                    }
                    self.charge(out.len() as u64, pos)?;
                    Value::str(out)
                }
                ExprKind::List(items) => {
                    let mut out = Vec::with_capacity(items.len());
                    for item in items {
                        out.push(self.eval(item, frame, d).await?);
                    }
                    self.charge(out.len() as u64 * 32, pos)?;
                    Value::list(out)
                }
                ExprKind::Map(entries) => {
                    let mut out = IndexMap::new();
                    for (k, v) in entries {
                        let key = self.eval(k, frame, d).await?.show();
                        let value = self.eval(v, frame, d).await?;
                        self.charge(key.len() as u64 + 48, pos)?;
                        out.insert(key, value);
                    }
                    Value::map(out)
                }
                ExprKind::Range {
                    from,
                    to,
                    exclusive,
                } => {
                    let a = self.eval(from, frame, d).await?;
                    let b = self.eval(to, frame, d).await?;
                    let (Value::Int(a), Value::Int(b)) = (&a, &b) else {
                        return err(
                            pos,
                            "java.lang.IllegalArgumentException",
                            format!(
                                "a range needs integers, not {} and {}",
                                a.type_name(),
                                b.type_name()
                            ),
                        );
                    };
                    let (a, b) = (*a, *b);
                    if *exclusive {
                        if a == b {
                            Value::list(Vec::new())
                        } else if a < b {
                            Value::Range { from: a, to: b - 1 }
                        } else {
                            Value::Range { from: a, to: b + 1 }
                        }
                    } else {
                        Value::Range { from: a, to: b }
                    }
                }
                ExprKind::Var(name) => self.var(name, frame, pos)?,
                ExprKind::Prop {
                    obj,
                    name,
                    safe,
                    spread,
                } => {
                    let o = self.eval(obj, frame, d).await?;
                    if *spread {
                        let mut out = Vec::new();
                        for item in self.iterate(&o, pos)? {
                            out.push(self.property(&item, name, true, pos)?);
                        }
                        Value::list(out)
                    } else {
                        self.property(&o, name, *safe, pos)?
                    }
                }
                ExprKind::Index { obj, index } => {
                    let o = self.eval(obj, frame, d).await?;
                    let i = self.eval(index, frame, d).await?;
                    methods::index(&o, &i, self.host(), &self.scope).map_err(|m| fail(pos, m))?
                }
                ExprKind::Call {
                    target,
                    name,
                    args,
                    safe,
                    spread,
                } => {
                    let static_class = match target.as_deref() {
                        Some(Expr {
                            kind: ExprKind::Var(class),
                            ..
                        }) if methods::statics::CLASSES.contains(&class.as_str())
                            && frame.get(class).is_none() =>
                        {
                            Some(class.as_str())
                        }
                        _ => None,
                    };
                    let v = match target {
                        None => self.call_function(name, args, frame, d, pos).await?,
                        Some(_) if static_class.is_some() => {
                            let class = static_class.unwrap_or_default();
                            let values: Vec<Value> = self
                                .args(args, frame, d)
                                .await?
                                .into_iter()
                                .map(|(_, v)| v)
                                .collect();
                            match methods::statics::call(class, name, &values) {
                                Some(result) => result.map_err(|m| fail(pos, m))?,
                                None => {
                                    return err(
                                        pos,
                                        "groovy.lang.MissingMethodException",
                                        format!(
                                            "No signature of method: {class}.{name}() (the subset knows String.format/valueOf/join, Integer.parseInt/valueOf, Long.parseLong, Double.parseDouble, Boolean.parseBoolean and Math.max/min/abs/ceil/floor/round/pow)"
                                        ),
                                    );
                                }
                            }
                        }
                        Some(t) => {
                            let recv = self.eval(t, frame, d).await?;
                            let args = self.args(args, frame, d).await?;
                            if *spread {
                                let mut out = Vec::new();
                                for item in self.iterate(&recv, pos)? {
                                    out.push(self.method(item, name, args.clone(), d, pos).await?);
                                }
                                Value::list(out)
                            } else if *safe && matches!(recv, Value::Null) {
                                Value::Null
                            } else {
                                self.method(recv, name, args, d, pos).await?
                            }
                        }
                    };
                    self.charge(v.size(), pos)?;
                    v
                }
                ExprKind::CallValue { callee, args } => {
                    let c = self.eval(callee, frame, d).await?;
                    let args = self.args(args, frame, d).await?;
                    match c {
                        Value::Closure(c) => {
                            let positional = args.into_iter().map(|(_, v)| v).collect();
                            self.call_closure(&c, positional, d, pos).await?
                        }
                        other => {
                            return err(
                                pos,
                                "groovy.lang.MissingMethodException",
                                format!("a {} cannot be called", other.type_name()),
                            );
                        }
                    }
                }
                ExprKind::Closure(def) => Value::Closure(Arc::new(Closure {
                    def: def.clone(),
                    frame: frame.clone(),
                })),
                ExprKind::Not(x) => Value::Bool(!self.eval(x, frame, d).await?.truthy()),
                ExprKind::Pattern(x) => {
                    let text = self.eval(x, frame, d).await?.show();
                    methods::regex(&text).map_err(|m| fail(pos, m))?;
                    Value::obj(Obj::Pattern(text))
                }
                ExprKind::Neg(x) => match self.eval(x, frame, d).await? {
                    Value::Int(n) => Value::Int(n.checked_neg().ok_or_else(|| overflow(pos))?),
                    Value::Float(f) => Value::Float(-f),
                    other => {
                        return err(
                            pos,
                            "groovy.lang.MissingMethodException",
                            format!("cannot negate a {}", other.type_name()),
                        );
                    }
                },
                ExprKind::Binary { op, left, right } => match op {
                    BinOp::And => Value::Bool(
                        self.eval(left, frame, d).await?.truthy()
                            && self.eval(right, frame, d).await?.truthy(),
                    ),
                    BinOp::Or => Value::Bool(
                        self.eval(left, frame, d).await?.truthy()
                            || self.eval(right, frame, d).await?.truthy(),
                    ),
                    _ => {
                        let l = self.eval(left, frame, d).await?;
                        let r = self.eval(right, frame, d).await?;
                        self.binary(*op, &l, &r, pos)?
                    }
                },
                ExprKind::Ternary { cond, then, other } => {
                    if self.eval(cond, frame, d).await?.truthy() {
                        self.eval(then, frame, d).await?
                    } else {
                        self.eval(other, frame, d).await?
                    }
                }
                ExprKind::Elvis { value, other } => {
                    let v = self.eval(value, frame, d).await?;
                    if v.truthy() {
                        v
                    } else {
                        self.eval(other, frame, d).await?
                    }
                }
                ExprKind::Assign { target, op, value } => {
                    let mut v = self.eval(value, frame, d).await?;
                    if let Some(op) = op {
                        let current = self.eval(target, frame, d).await?;
                        v = self.binary(*op, &current, &v, pos)?;
                    }
                    self.assign(target, v.clone(), frame, d).await?;
                    v
                }
                ExprKind::Step {
                    target,
                    delta,
                    prefix,
                } => {
                    let current = self.eval(target, frame, d).await?;
                    let next = self.binary(BinOp::Add, &current, &Value::Int(*delta), pos)?;
                    self.assign(target, next.clone(), frame, d).await?;
                    if *prefix { next } else { current }
                }
                ExprKind::Cast { expr, ty } => {
                    let v = self.eval(expr, frame, d).await?;
                    methods::cast(&v, ty).map_err(|m| fail(pos, m))?
                }
                ExprKind::InstanceOf { expr, ty } => {
                    let v = self.eval(expr, frame, d).await?;
                    Value::Bool(methods::instance_of(&v, ty))
                }
                ExprKind::New { ty, args } => {
                    if !EXCEPTIONS.contains(&ty.as_str()) {
                        return err(
                            pos,
                            "java.lang.SecurityException",
                            format!(
                                "`new {ty}(…)` is not part of the Groovy subset (only exceptions can be created)"
                            ),
                        );
                    }
                    let args = self.args(args, frame, d).await?;
                    let message = args.first().map(|(_, v)| v.show()).unwrap_or_default();
                    let class = match ty.rsplit('.').next().unwrap_or(ty) {
                        "AbortException" => "hudson.AbortException".to_owned(),
                        simple => format!("java.lang.{simple}"),
                    };
                    Value::obj(Obj::Exception { class, message })
                }
            };
            Ok(v)
        })
    }

    pub(super) fn var(&self, name: &str, frame: &Arc<Frame>, pos: Pos) -> R<Value> {
        if let Some(v) = frame.get(name) {
            return Ok(v);
        }
        Ok(match name {
            "env" => Value::obj(Obj::Env),
            "params" => Value::obj(Obj::Params),
            "currentBuild" => Value::obj(Obj::CurrentBuild),
            "scm" => Value::obj(Obj::Scm),
            _ => match self.host().env(&self.scope, name) {
                Some(v) => Value::str(v),
                None => {
                    return err(
                        pos,
                        "groovy.lang.MissingPropertyException",
                        format!("No such property: {name}"),
                    );
                }
            },
        })
    }

    pub(super) fn property(&self, o: &Value, name: &str, safe: bool, pos: Pos) -> R<Value> {
        if matches!(o, Value::Null) {
            return if safe {
                Ok(Value::Null)
            } else {
                err(
                    pos,
                    "java.lang.NullPointerException",
                    format!("Cannot get property '{name}' on null object"),
                )
            };
        }
        if let Value::Obj(obj) = o
            && matches!(**obj, Obj::CurrentBuild)
        {
            return match self.host().build(name) {
                Some(v) => Ok(v),
                None => err(
                    pos,
                    "groovy.lang.MissingPropertyException",
                    format!("currentBuild has no property `{name}` here"),
                ),
            };
        }
        methods::property(o, name, self.host(), &self.scope).map_err(|m| fail(pos, m))
    }

    pub(super) async fn args(
        &self,
        args: &[Arg],
        frame: &Arc<Frame>,
        d: u32,
    ) -> R<Vec<(Option<String>, Value)>> {
        let mut out = Vec::with_capacity(args.len());
        for a in args {
            out.push((a.name.clone(), self.eval(&a.value, frame, d).await?));
        }
        Ok(out)
    }

    pub(super) async fn assign(
        &self,
        target: &Expr,
        v: Value,
        frame: &Arc<Frame>,
        d: u32,
    ) -> R<()> {
        let pos = target.pos;
        match &target.kind {
            ExprKind::Var(name) => {
                if !frame.set_existing(name, &v) {
                    // Jenkins: a variable assigned without `def` lives in the script binding.
                    self.interp.binding.define(name, v);
                }
                Ok(())
            }
            ExprKind::Prop { obj, name, .. } => {
                let o = self.eval(obj, frame, d).await?;
                match &o {
                    Value::Obj(obj) => match **obj {
                        Obj::Env => {
                            let value = (!matches!(v, Value::Null)).then(|| v.show());
                            self.host().set_env(&self.scope, name, value);
                            Ok(())
                        }
                        Obj::CurrentBuild => self
                            .host()
                            .set_build(name, &v)
                            .map_err(|m| fail(pos, ("groovy.lang.ReadOnlyPropertyException", m))),
                        _ => err(
                            pos,
                            "groovy.lang.ReadOnlyPropertyException",
                            format!("cannot set `{name}` on {}", o.type_name()),
                        ),
                    },
                    Value::Map(m) => {
                        self.charge(name.len() as u64 + 48, pos)?;
                        m.lock().insert(name.clone(), v);
                        Ok(())
                    }
                    other => err(
                        pos,
                        "groovy.lang.ReadOnlyPropertyException",
                        format!("cannot set `{name}` on a {}", other.type_name()),
                    ),
                }
            }
            ExprKind::Index { obj, index } => {
                let o = self.eval(obj, frame, d).await?;
                let i = self.eval(index, frame, d).await?;
                match (&o, &i) {
                    (Value::List(l), Value::Int(n)) => {
                        let mut l = l.lock();
                        let len = l.len() as i64;
                        let at = if *n < 0 { len + n } else { *n };
                        if at < 0 {
                            return err(
                                pos,
                                "java.lang.IndexOutOfBoundsException",
                                format!("index {n} is before the list's start"),
                            );
                        }
                        let at = at as usize;
                        if at >= l.len() {
                            self.charge((at + 1 - l.len()) as u64 * 32, pos)?;
                            l.resize(at + 1, Value::Null);
                        }
                        l[at] = v;
                        Ok(())
                    }
                    (Value::Map(m), key) => {
                        let key = key.show();
                        self.charge(key.len() as u64 + 48, pos)?;
                        m.lock().insert(key, v);
                        Ok(())
                    }
                    (Value::Obj(obj), key) if matches!(**obj, Obj::Env) => {
                        let value = (!matches!(v, Value::Null)).then(|| v.show());
                        self.host().set_env(&self.scope, &key.show(), value);
                        Ok(())
                    }
                    _ => err(
                        pos,
                        "groovy.lang.MissingMethodException",
                        format!(
                            "cannot set an element of a {} by {}",
                            o.type_name(),
                            i.type_name()
                        ),
                    ),
                }
            }
            _ => err(
                pos,
                "groovy.lang.GroovyRuntimeException",
                "cannot assign to this",
            ),
        }
    }

    pub(super) fn binary(&self, op: BinOp, l: &Value, r: &Value, pos: Pos) -> R<Value> {
        if let (BinOp::Mul, Value::Str(s), Value::Int(n)) = (op, l, r) {
            self.charge((s.len() as u64).saturating_mul((*n).max(0) as u64), pos)?;
        }
        if let (BinOp::Mul, Value::List(list), Value::Int(n)) = (op, l, r) {
            let len = list.lock().len() as u64;
            self.charge(
                len.saturating_mul((*n).max(0) as u64).saturating_mul(32),
                pos,
            )?;
        }
        let v = match op {
            BinOp::Eq => Value::Bool(equals(l, r)),
            BinOp::Ne => Value::Bool(!equals(l, r)),
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge | BinOp::Cmp => {
                let Some(ord) = compare(l, r) else {
                    return err(
                        pos,
                        "java.lang.IllegalArgumentException",
                        format!(
                            "cannot compare a {} with a {}",
                            l.type_name(),
                            r.type_name()
                        ),
                    );
                };
                use std::cmp::Ordering::*;
                match op {
                    BinOp::Lt => Value::Bool(ord == Less),
                    BinOp::Le => Value::Bool(ord != Greater),
                    BinOp::Gt => Value::Bool(ord == Greater),
                    BinOp::Ge => Value::Bool(ord != Less),
                    _ => Value::Int(match ord {
                        Less => -1,
                        Equal => 0,
                        Greater => 1,
                    }),
                }
            }
            BinOp::In | BinOp::NotIn => {
                let found = match r {
                    Value::Map(m) => {
                        let key = l.show();
                        m.lock().contains_key(&key)
                    }
                    Value::List(_) | Value::Range { .. } => {
                        r.items().unwrap_or_default().iter().any(|x| equals(x, l))
                    }
                    other => equals(other, l),
                };
                Value::Bool(found == (op == BinOp::In))
            }
            BinOp::Find => methods::find(l, r).map_err(|m| fail(pos, m))?,
            BinOp::Match => methods::whole_match(l, r).map_err(|m| fail(pos, m))?,
            _ => methods::arithmetic(op, l, r).map_err(|m| fail(pos, m))?,
        };
        self.charge(v.size(), pos)?;
        Ok(v)
    }

    pub(super) async fn call_function(
        &self,
        name: &str,
        args: &[Arg],
        frame: &Arc<Frame>,
        d: u32,
        pos: Pos,
    ) -> R<Value> {
        if let Some(Value::Closure(c)) = frame.get(name) {
            let args = self.args(args, frame, d).await?;
            let positional = args.into_iter().map(|(_, v)| v).collect();
            return self.call_closure(&c, positional, d, pos).await;
        }
        let mut evaluated = self.args(args, frame, d).await?;
        if DESCRIPTORS.contains(&name) && !self.host().is_step(name) {
            return Ok(Value::obj(Obj::Descriptor {
                name: name.to_owned(),
                args: evaluated,
            }));
        }
        match name {
            "println" | "print" => {
                let text = evaluated.first().map(|(_, v)| v.show()).unwrap_or_default();
                let call = StepCall {
                    name: "echo".into(),
                    args: vec![(None, Value::str(text))],
                    body: None,
                    pos,
                };
                return self
                    .host()
                    .step(self, call)
                    .await
                    .map_err(|f| Signal::Fail(f.at(pos)));
            }
            "isUnix" => return Ok(Value::Bool(true)),
            _ => {}
        }
        if !self.host().is_step(name) {
            return err(
                pos,
                "java.lang.NoSuchMethodError",
                format!(
                    "No such DSL method `{name}` (not a step Sluice runs, nor a closure in scope)"
                ),
            );
        }
        let body = match evaluated.last() {
            Some((None, Value::Closure(_))) => match evaluated.pop() {
                Some((_, Value::Closure(c))) => Some(c),
                _ => None,
            },
            _ => None,
        };
        let call = StepCall {
            name: name.to_owned(),
            args: evaluated,
            body,
            pos,
        };
        self.host()
            .step(self, call)
            .await
            .map_err(|f| Signal::Fail(f.at(pos)))
    }
}
