//! The evaluator: statements and expressions over [`Value`]s, with steps handed to a
//! [`Host`] (the worker runs them on the build agent; tests and the fuzz target use their
//! own). Every evaluation has a budget of evaluation steps and of bytes allocated, and a
//! depth limit for nesting and recursion, so no script can hang or exhaust a worker.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use indexmap::IndexMap;

use super::ast::*;
use super::methods;
use super::value::{Closure, Obj, Value, compare, equals, range_len};
use crate::pipeline::Pos;

/// Evaluation steps one evaluation (a `script` block, an expression) may take.
pub const STEP_BUDGET: i64 = 10_000_000;
/// Bytes one evaluation may allocate for strings, lists and maps, in all.
pub const BYTE_BUDGET: i64 = 256 << 20;
/// How deeply evaluation may nest, expressions and closure calls together.
pub const MAX_DEPTH: u32 = 200;

/// Variables: a block's own, then its parents', then the script binding.
#[derive(Debug, Default)]
pub struct Frame {
    vars: Mutex<HashMap<String, Value>>,
    parent: Option<Arc<Frame>>,
}

impl Frame {
    pub fn child(parent: &Arc<Frame>) -> Arc<Frame> {
        Arc::new(Frame {
            vars: Mutex::default(),
            parent: Some(parent.clone()),
        })
    }

    fn vars(&self) -> std::sync::MutexGuard<'_, HashMap<String, Value>> {
        self.vars.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, name: &str) -> Option<Value> {
        let mut frame = self;
        loop {
            if let Some(v) = frame.vars().get(name) {
                return Some(v.clone());
            }
            frame = frame.parent.as_deref()?;
        }
    }

    /// Sets `name` where it is defined; false when no frame defines it.
    fn set_existing(&self, name: &str, value: &Value) -> bool {
        let mut frame = self;
        loop {
            if let Some(slot) = frame.vars().get_mut(name) {
                *slot = value.clone();
                return true;
            }
            match frame.parent.as_deref() {
                Some(p) => frame = p,
                None => return false,
            }
        }
    }

    pub fn define(&self, name: &str, value: Value) {
        self.vars().insert(name.to_owned(), value);
    }
}

/// Why an evaluation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailKind {
    /// An exception: a failing step, `error`, a runtime error. `try`/`catch` catches it.
    Error,
    /// The run was cancelled or a gate rejected: never caught.
    Aborted,
    /// The evaluation ran out of steps, memory or depth: never caught.
    Budget,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: FailKind,
    /// The exception's class, as `catch (hudson.AbortException e)` names it.
    pub class: String,
    pub message: String,
    pub pos: Option<Pos>,
}

impl Failure {
    pub fn error(class: &str, message: impl Into<String>) -> Failure {
        Failure {
            kind: FailKind::Error,
            class: class.to_owned(),
            message: message.into(),
            pos: None,
        }
    }

    /// A failing step, as Jenkins' `hudson.AbortException`.
    pub fn step(message: impl Into<String>) -> Failure {
        Failure::error("hudson.AbortException", message)
    }

    pub fn aborted(message: impl Into<String>) -> Failure {
        Failure {
            kind: FailKind::Aborted,
            class: "org.jenkinsci.plugins.workflow.steps.FlowInterruptedException".into(),
            message: message.into(),
            pos: None,
        }
    }

    fn budget(message: impl Into<String>, pos: Pos) -> Failure {
        Failure {
            kind: FailKind::Budget,
            class: "sluice.BudgetExceeded".into(),
            message: message.into(),
            pos: Some(pos),
        }
    }

    fn at(mut self, pos: Pos) -> Failure {
        self.pos.get_or_insert(pos);
        self
    }

    /// `line L:C: message` (the position only when the failure has one).
    pub fn describe(&self) -> String {
        match self.pos {
            Some(p) => format!("line {}:{}: {}", p.line, p.col, self.message),
            None => self.message.clone(),
        }
    }
}

/// How control leaves a statement early.
#[derive(Debug)]
pub enum Signal {
    Return(Value),
    Break,
    Continue,
    Fail(Failure),
}

impl From<Failure> for Signal {
    fn from(f: Failure) -> Signal {
        Signal::Fail(f)
    }
}

type R<T> = Result<T, Signal>;

fn err<T>(pos: Pos, class: &str, message: impl Into<String>) -> R<T> {
    Err(Signal::Fail(Failure::error(class, message).at(pos)))
}

/// A step called from Groovy, its arguments evaluated.
#[derive(Debug)]
pub struct StepCall {
    pub name: String,
    pub args: Vec<(Option<String>, Value)>,
    /// The closure of a block step: `dir('x') { … }`.
    pub body: Option<Arc<Closure>>,
    pub pos: Pos,
}

impl StepCall {
    pub fn named(&self, key: &str) -> Option<&Value> {
        self.args
            .iter()
            .find(|(k, _)| k.as_deref() == Some(key))
            .map(|(_, v)| v)
    }

    /// The first positional argument, or the named `key`.
    pub fn main(&self, key: &str) -> Option<&Value> {
        self.args
            .iter()
            .find(|(k, _)| k.is_none())
            .map(|(_, v)| v)
            .or_else(|| self.named(key))
    }
}

/// What the evaluator needs from where it runs.
pub trait Host: Send + Sync + Sized {
    /// Where steps run (the worker's directory, environment, cancellation…).
    type Scope: Clone + Send + Sync;

    /// Whether `name` is a step this host runs.
    fn is_step(&self, name: &str) -> bool;
    /// Runs a step; a block step runs its body with [`Cx::call`].
    fn step<'a>(
        &'a self,
        cx: &'a Cx<'a, Self>,
        call: StepCall,
    ) -> BoxFuture<'a, Result<Value, Failure>>;
    fn env(&self, scope: &Self::Scope, name: &str) -> Option<String>;
    fn env_all(&self, scope: &Self::Scope) -> Vec<(String, String)>;
    fn set_env(&self, scope: &Self::Scope, name: &str, value: Option<String>);
    fn param(&self, name: &str) -> Option<Value>;
    fn params(&self) -> Vec<(String, Value)>;
    /// `currentBuild.<prop>`; `None` for a property there is not.
    fn build(&self, prop: &str) -> Option<Value>;
    fn set_build(&self, prop: &str, value: &Value) -> Result<(), String>;
    /// Whether the run was cancelled (checked every few thousand evaluation steps).
    fn cancelled(&self, _scope: &Self::Scope) -> bool {
        false
    }
}

/// One run's interpreter: the host, and the script binding that `script` blocks share
/// (Jenkins keeps variables assigned without `def` across blocks).
pub struct Interp<H: Host> {
    pub host: H,
    binding: Arc<Frame>,
    steps: i64,
    bytes: i64,
}

struct Budget {
    steps: AtomicI64,
    bytes: AtomicI64,
}

/// An evaluation in progress: the interpreter, the host's scope and the budget left.
pub struct Cx<'a, H: Host> {
    pub interp: &'a Interp<H>,
    pub scope: H::Scope,
    budget: Arc<Budget>,
    depth: u32,
}

impl<H: Host> Interp<H> {
    pub fn new(host: H) -> Interp<H> {
        Interp {
            host,
            binding: Arc::new(Frame::default()),
            steps: STEP_BUDGET,
            bytes: BYTE_BUDGET,
        }
    }

    /// An interpreter sharing `binding` with others (one per run, whatever the host).
    pub fn with_binding(host: H, binding: Arc<Frame>) -> Interp<H> {
        Interp {
            binding,
            ..Interp::new(host)
        }
    }

    /// Other budgets (tests, benchmarks, string interpolation).
    pub fn with_budget(mut self, steps: i64, bytes: i64) -> Interp<H> {
        self.steps = steps;
        self.bytes = bytes;
        self
    }

    fn cx(&self, scope: H::Scope) -> Cx<'_, H> {
        Cx {
            interp: self,
            scope,
            budget: Arc::new(Budget {
                steps: AtomicI64::new(self.steps),
                bytes: AtomicI64::new(self.bytes),
            }),
            depth: 0,
        }
    }

    /// Runs statements (a `script` block) with a fresh budget; the value is the last
    /// statement's, or what `return` gave.
    pub async fn run(&self, body: &[Stmt], scope: H::Scope) -> Result<Value, Failure> {
        let cx = self.cx(scope);
        let frame = Frame::child(&self.binding);
        match cx.block(body, &frame, 0).await {
            Ok(v) | Err(Signal::Return(v)) => Ok(v),
            Err(Signal::Break | Signal::Continue) => Err(Failure::error(
                "groovy.lang.GroovyRuntimeException",
                "`break` or `continue` outside a loop",
            )),
            Err(Signal::Fail(f)) => Err(f),
        }
    }

    /// Evaluates one expression (an environment value) with a fresh budget.
    pub async fn eval(&self, expr: &Expr, scope: H::Scope) -> Result<Value, Failure> {
        let cx = self.cx(scope);
        let frame = Frame::child(&self.binding);
        match cx.eval(expr, &frame, 0).await {
            Ok(v) | Err(Signal::Return(v)) => Ok(v),
            Err(Signal::Fail(f)) => Err(f),
            Err(_) => Err(Failure::error(
                "groovy.lang.GroovyRuntimeException",
                "`break` or `continue` outside a loop",
            )),
        }
    }

    /// A variable of the script binding (tests).
    pub fn global(&self, name: &str) -> Option<Value> {
        self.binding.get(name)
    }
}

/// The names `new` may create: exceptions, for `throw new Exception('…')`.
const EXCEPTIONS: &[&str] = &[
    "Exception",
    "RuntimeException",
    "IllegalArgumentException",
    "IllegalStateException",
    "UnsupportedOperationException",
    "Error",
    "AbortException",
    "hudson.AbortException",
    "java.lang.Exception",
    "java.lang.RuntimeException",
    "java.lang.IllegalArgumentException",
    "java.lang.IllegalStateException",
];

/// Calls that build a value a step consumes, rather than run anything.
pub const DESCRIPTORS: &[&str] = &[
    "string",
    "usernamePassword",
    "usernameColonPassword",
    "file",
    "sshUserPrivateKey",
    "booleanParam",
    "choice",
    "text",
    "password",
    "lastSuccessful",
    "specific",
    "lastCompleted",
];

/// Functions the interpreter itself provides.
pub const BUILTINS: &[&str] = &["println", "print", "isUnix"];

impl<'a, H: Host> Cx<'a, H> {
    /// The same evaluation with another scope (a block step's body: `dir('x') { … }`).
    pub fn with_scope(&self, scope: H::Scope) -> Cx<'a, H> {
        Cx {
            interp: self.interp,
            scope,
            budget: self.budget.clone(),
            depth: self.depth,
        }
    }

    fn host(&self) -> &'a H {
        &self.interp.host
    }

    /// Counts one evaluation step; fails when the budget is spent or the run was cancelled.
    async fn tick(&self, pos: Pos) -> R<()> {
        let left = self.budget.steps.fetch_sub(1, Ordering::Relaxed);
        if left <= 0 {
            return Err(Failure::budget(
                format!(
                    "the script ran more than {} evaluation steps (an endless loop?)",
                    self.interp.steps
                ),
                pos,
            )
            .into());
        }
        if left % 4096 == 0 {
            if self.host().cancelled(&self.scope) {
                return Err(Failure::aborted("cancelled").into());
            }
            tokio::task::yield_now().await;
        }
        Ok(())
    }

    /// Charges `bytes` to the memory budget.
    fn charge(&self, bytes: u64, pos: Pos) -> R<()> {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        let left = self.budget.bytes.fetch_sub(bytes, Ordering::Relaxed);
        if left < bytes {
            return Err(Failure::budget(
                format!(
                    "the script allocated more than {} MB of strings, lists and maps",
                    self.interp.bytes >> 20
                ),
                pos,
            )
            .into());
        }
        Ok(())
    }

    fn deeper(&self, d: u32, pos: Pos) -> R<u32> {
        if d + self.depth >= MAX_DEPTH {
            return Err(Failure::budget(
                format!("the script nested more than {MAX_DEPTH} levels deep (endless recursion?)"),
                pos,
            )
            .into());
        }
        Ok(d + 1)
    }

    /// Calls a closure with `args` (a block step's body, a method's closure).
    pub fn call<'b>(
        &'b self,
        closure: &'b Closure,
        args: Vec<Value>,
    ) -> BoxFuture<'b, Result<Value, Failure>> {
        Box::pin(async move {
            match self.call_closure(closure, args, 0, closure.def.pos).await {
                Ok(v) => Ok(v),
                Err(Signal::Fail(f)) => Err(f),
                Err(_) => Err(Failure::error(
                    "groovy.lang.GroovyRuntimeException",
                    "`break` or `continue` outside a loop",
                )),
            }
        })
    }

    fn call_closure<'b>(
        &'b self,
        closure: &'b Closure,
        args: Vec<Value>,
        d: u32,
        pos: Pos,
    ) -> BoxFuture<'b, R<Value>> {
        Box::pin(async move {
            let d = self.deeper(d, pos)?;
            let frame = Frame::child(&closure.frame);
            let def = &closure.def;
            if def.params.is_empty() {
                frame.define("it", args.into_iter().next().unwrap_or(Value::Null));
            } else if def.params.len() > 1 && args.len() == 1 {
                // One list for several parameters spreads, as Groovy does for entries too.
                let spread = match &args[0] {
                    Value::Obj(o) => match &**o {
                        Obj::Entry { key, value } => {
                            vec![Value::str(key.as_str()), (**value).clone()]
                        }
                        _ => args.clone(),
                    },
                    Value::List(l) => l.lock().clone(),
                    _ => args.clone(),
                };
                for (i, p) in def.params.iter().enumerate() {
                    frame.define(p, spread.get(i).cloned().unwrap_or(Value::Null));
                }
            } else {
                for (i, p) in def.params.iter().enumerate() {
                    frame.define(p, args.get(i).cloned().unwrap_or(Value::Null));
                }
            }
            match self.block(&def.body, &frame, d).await {
                Ok(v) | Err(Signal::Return(v)) => Ok(v),
                Err(other) => Err(other),
            }
        })
    }

    // ---- statements ----

    fn block<'b>(
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

    fn stmt<'b>(
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

    async fn switch(
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
    async fn is_case(&self, label: &Value, v: &Value, pos: Pos, d: u32) -> R<bool> {
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
            _ => equals(label, v),
        })
    }

    /// The items a `for` or a closure method walks; a range is checked against the budget
    /// before it is made.
    fn iterate(&self, v: &Value, pos: Pos) -> R<Vec<Value>> {
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

    // ---- expressions ----

    fn eval<'b>(&'b self, e: &'b Expr, frame: &'b Arc<Frame>, d: u32) -> BoxFuture<'b, R<Value>> {
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
                    let v = match target {
                        None => self.call_function(name, args, frame, d, pos).await?,
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

    fn var(&self, name: &str, frame: &Arc<Frame>, pos: Pos) -> R<Value> {
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

    fn property(&self, o: &Value, name: &str, safe: bool, pos: Pos) -> R<Value> {
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

    async fn args(
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

    async fn assign(&self, target: &Expr, v: Value, frame: &Arc<Frame>, d: u32) -> R<()> {
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

    fn binary(&self, op: BinOp, l: &Value, r: &Value, pos: Pos) -> R<Value> {
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

    async fn call_function(
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

    /// A method call on a value: the closure methods here, the rest in [`methods`].
    async fn method(
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
                // Keys first (a one-parameter closure), then a stable sort by them.
                if c.def.params.len() == 2 {
                    return err(
                        pos,
                        "groovy.lang.MissingMethodException",
                        format!(
                            "{name} with a two-parameter comparator is not supported: use a closure returning the key, e.g. {name} {{ it.size() }}"
                        ),
                    );
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

fn fail(pos: Pos, message: (&'static str, String)) -> Signal {
    Signal::Fail(Failure::error(message.0, message.1).at(pos))
}

fn overflow(pos: Pos) -> Signal {
    fail(
        pos,
        ("java.lang.ArithmeticException", "integer overflow".into()),
    )
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
