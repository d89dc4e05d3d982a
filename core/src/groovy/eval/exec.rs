//! Statements: blocks, declarations, conditionals, loops, `switch`, `try`, `throw`.

use std::sync::Arc;

use futures_util::future::BoxFuture;

use super::super::ast::*;
use super::super::value::{Obj, Value, equals, range_len};
use super::{Cx, FailKind, Failure, Frame, Host, R, Signal, err};
use crate::pipeline::Pos;

impl<'a, H: Host> Cx<'a, H> {
    // ---- statements ----

    pub(super) fn block<'b>(
        &'b self,
        body: &'b [Stmt],
        frame: &'b Arc<Frame>,
        d: u32,
    ) -> BoxFuture<'b, R<Value>> {
        Box::pin(async move {
            let mut last = Value::Null;
            for stmt in body {
                last = self.stmt(stmt, frame, d).await?;
            }
            Ok(last)
        })
    }

    pub(super) fn stmt<'b>(
        &'b self,
        stmt: &'b Stmt,
        frame: &'b Arc<Frame>,
        d: u32,
    ) -> BoxFuture<'b, R<Value>> {
        Box::pin(async move {
            self.tick(stmt.pos).await?;
            let d = self.deeper(d, stmt.pos)?;
            match &stmt.kind {
                StmtKind::Expr(e) => self.eval(e, frame, d).await,
                StmtKind::Def { names, value } => {
                    let v = match value {
                        Some(e) => self.eval(e, frame, d).await?,
                        None => Value::Null,
                    };
                    if names.len() == 1 {
                        frame.define(&names[0], v);
                    } else {
                        let items = v.items().unwrap_or_default();
                        for (i, name) in names.iter().enumerate() {
                            frame.define(name, items.get(i).cloned().unwrap_or(Value::Null));
                        }
                    }
                    Ok(Value::Null)
                }
                StmtKind::If { cond, then, other } => {
                    if self.eval(cond, frame, d).await?.truthy() {
                        self.block(then, &Frame::child(frame), d).await
                    } else if let Some(other) = other {
                        self.block(other, &Frame::child(frame), d).await
                    } else {
                        Ok(Value::Null)
                    }
                }
                StmtKind::While { cond, body } => {
                    while self.eval(cond, frame, d).await?.truthy() {
                        match self.block(body, &Frame::child(frame), d).await {
                            Ok(_) | Err(Signal::Continue) => {}
                            Err(Signal::Break) => break,
                            Err(other) => return Err(other),
                        }
                    }
                    Ok(Value::Null)
                }
                StmtKind::ForIn { var, iter, body } => {
                    let collection = self.eval(iter, frame, d).await?;
                    let items = self.iterate(&collection, iter.pos)?;
                    for item in items {
                        self.tick(stmt.pos).await?;
                        let inner = Frame::child(frame);
                        inner.define(var, item);
                        match self.block(body, &inner, d).await {
                            Ok(_) | Err(Signal::Continue) => {}
                            Err(Signal::Break) => break,
                            Err(other) => return Err(other),
                        }
                    }
                    Ok(Value::Null)
                }
                StmtKind::For {
                    init,
                    cond,
                    update,
                    body,
                } => {
                    let outer = Frame::child(frame);
                    if let Some(init) = init {
                        self.stmt(init, &outer, d).await?;
                    }
                    loop {
                        if let Some(cond) = cond
                            && !self.eval(cond, &outer, d).await?.truthy()
                        {
                            break;
                        }
                        match self.block(body, &Frame::child(&outer), d).await {
                            Ok(_) | Err(Signal::Continue) => {}
                            Err(Signal::Break) => break,
                            Err(other) => return Err(other),
                        }
                        for u in update {
                            self.eval(u, &outer, d).await?;
                        }
                    }
                    Ok(Value::Null)
                }
                StmtKind::Switch { value, cases } => self.switch(value, cases, frame, d).await,
                StmtKind::Try {
                    body,
                    catches,
                    finally,
                } => {
                    let mut result = self.block(body, &Frame::child(frame), d).await;
                    if let Err(Signal::Fail(f)) = &result
                        && f.kind == FailKind::Error
                        && let Some(catch) = catches.iter().find(|c| catches_class(c, &f.class))
                    {
                        let inner = Frame::child(frame);
                        inner.define(
                            &catch.var,
                            Value::obj(Obj::Exception {
                                class: f.class.clone(),
                                message: f.message.clone(),
                            }),
                        );
                        result = self.block(&catch.body, &inner, d).await;
                    }
                    if let Some(finally) = finally {
                        self.block(finally, &Frame::child(frame), d).await?;
                    }
                    result
                }
                StmtKind::Return(e) => {
                    let v = match e {
                        Some(e) => self.eval(e, frame, d).await?,
                        None => Value::Null,
                    };
                    Err(Signal::Return(v))
                }
                StmtKind::Break => Err(Signal::Break),
                StmtKind::Continue => Err(Signal::Continue),
                StmtKind::Throw(e) => {
                    let v = self.eval(e, frame, d).await?;
                    match v {
                        Value::Obj(o) => match *o {
                            Obj::Exception { class, message } => Err(Failure {
                                kind: FailKind::Error,
                                class,
                                message,
                                pos: Some(stmt.pos),
                            }
                            .into()),
                            other => err(
                                stmt.pos,
                                "groovy.lang.GroovyRuntimeException",
                                format!("cannot throw {}", Value::obj(other).type_name()),
                            ),
                        },
                        other => err(
                            stmt.pos,
                            "groovy.lang.GroovyRuntimeException",
                            format!(
                                "cannot throw a {}: throw new Exception('…') or call error('…')",
                                other.type_name()
                            ),
                        ),
                    }
                }
                StmtKind::Assert(cond, message) => {
                    if self.eval(cond, frame, d).await?.truthy() {
                        return Ok(Value::Null);
                    }
                    let text = match message {
                        Some(m) => self.eval(m, frame, d).await?.show(),
                        None => "assertion failed".into(),
                    };
                    err(stmt.pos, "java.lang.AssertionError", text)
                }
                StmtKind::Block(body) => self.block(body, &Frame::child(frame), d).await,
            }
        })
    }

    pub(super) async fn switch(
        &self,
        value: &Expr,
        cases: &[(Vec<Expr>, Vec<Stmt>)],
        frame: &Arc<Frame>,
        d: u32,
    ) -> R<Value> {
        let v = self.eval(value, frame, d).await?;
        let mut start = None;
        'cases: for (i, (labels, _)) in cases.iter().enumerate() {
            for label in labels {
                let l = self.eval(label, frame, d).await?;
                if self.is_case(&l, &v, label.pos, d).await? {
                    start = Some(i);
                    break 'cases;
                }
            }
        }
        let start = start.or_else(|| cases.iter().position(|(labels, _)| labels.is_empty()));
        let Some(start) = start else {
            return Ok(Value::Null);
        };
        let inner = Frame::child(frame);
        // Groovy falls through to the next case until a `break`.
        for (_, body) in &cases[start..] {
            match self.block(body, &inner, d).await {
                Ok(_) => {}
                Err(Signal::Break) => break,
                Err(other) => return Err(other),
            }
        }
        Ok(Value::Null)
    }

    /// Groovy's `isCase`: membership for collections, a call for closures, else equality.
    pub(super) async fn is_case(&self, label: &Value, v: &Value, pos: Pos, d: u32) -> R<bool> {
        Ok(match label {
            Value::List(_) | Value::Range { .. } => label
                .items()
                .unwrap_or_default()
                .iter()
                .any(|x| equals(x, v)),
            Value::Closure(c) => self
                .call_closure(c, vec![v.clone()], d, pos)
                .await?
                .truthy(),
            Value::Obj(o) if matches!(**o, Obj::Pattern(_)) => {
                super::super::methods::whole_match(v, label)
                    .map_err(|m| super::fail(pos, m))?
                    .truthy()
            }
            _ => equals(label, v),
        })
    }

    /// The items a `for` or a closure method walks; a range is checked against the budget
    /// before it is made.
    pub(super) fn iterate(&self, v: &Value, pos: Pos) -> R<Vec<Value>> {
        if let Value::Range { from, to } = v {
            self.charge(range_len(*from, *to).saturating_mul(16), pos)?;
        }
        match v.items() {
            Some(items) => Ok(items),
            None => err(
                pos,
                "groovy.lang.MissingMethodException",
                format!("cannot iterate over a {}", v.type_name()),
            ),
        }
    }
}

/// Whether `catch (Type e)` catches an exception of `class` (`Exception` catches all but
/// errors such as a failed `assert`; `Throwable` catches everything).
fn catches_class(catch: &Catch, class: &str) -> bool {
    if catch.types.is_empty() {
        return true;
    }
    let simple = |c: &str| c.rsplit('.').next().unwrap_or(c).to_owned();
    let caught = simple(class);
    catch.types.iter().any(|t| {
        let t = simple(t);
        t == caught
            || t == "Throwable"
            || (t == "Exception" && !caught.ends_with("Error"))
            || (t == "Error" && caught.ends_with("Error"))
    })
}
