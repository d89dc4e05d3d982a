//! The evaluator: statements and expressions over [`Value`]s, with steps handed to a
//! [`Host`] (the worker runs them on the build agent; tests and the fuzz target use their
//! own). Every evaluation has a budget of evaluation steps and of bytes allocated, and a
//! depth limit for nesting and recursion, so no script can hang or exhaust a worker.
//! Statements are in `exec`, expressions in `expr`, methods taking closures in `closures`.

mod closures;
mod exec;
mod expr;

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;

use super::ast::*;
use super::value::{Closure, Obj, Value};
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

pub(super) type R<T> = Result<T, Signal>;

pub(super) fn err<T>(pos: Pos, class: &str, message: impl Into<String>) -> R<T> {
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
pub(super) const EXCEPTIONS: &[&str] = &[
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

    pub(super) fn host(&self) -> &'a H {
        &self.interp.host
    }

    /// Counts one evaluation step; fails when the budget is spent or the run was cancelled.
    pub(super) async fn tick(&self, pos: Pos) -> R<()> {
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
    pub(super) fn charge(&self, bytes: u64, pos: Pos) -> R<()> {
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

    pub(super) fn deeper(&self, d: u32, pos: Pos) -> R<u32> {
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

    pub(super) fn call_closure<'b>(
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
}

pub(super) fn fail(pos: Pos, message: (&'static str, String)) -> Signal {
    Signal::Fail(Failure::error(message.0, message.1).at(pos))
}

pub(super) fn overflow(pos: Pos) -> Signal {
    fail(
        pos,
        ("java.lang.ArithmeticException", "integer overflow".into()),
    )
}
