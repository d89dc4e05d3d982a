//! Groovy in a run: `script { }` steps, `when { expression { } }` and computed environment
//! values, interpreted by `sluice_core::groovy` with this run as its host. Steps called from
//! Groovy run exactly as declarative ones do (same agent, logs, metrics, secrets); those
//! that return something (`sh(returnStdout:)`, `readFile`, `fileExists`, `input`) return it.

use std::sync::Arc;

use futures_util::future::{BoxFuture, join_all};
use sluice_core::groovy::{Cx, FailKind, Failure, Host, Interp, Obj, StepCall, Value};
use sluice_core::logs::Origin;
use sluice_core::pipeline::model::{Input, Parameter, Script, Step};
use sluice_core::pipeline::syntax::{Args, Value as Arg};
use sluice_core::pipeline::{Pos, groovy_step};
use tokio_util::sync::CancellationToken;

use super::walk::{Body, RunBody};
use super::{Env, Flow, Res, Runner, Scope, Stop, steps::nul_free};
use crate::agent::{Exit, tar_stream};

/// Most bytes `sh(returnStdout: true)` or `readFile` hand to a script.
const MAX_CAPTURE: u64 = 16 << 20;

/// A run as the Groovy interpreter's host.
pub(crate) struct RunHost<'r> {
    pub runner: &'r Runner<'r>,
}

pub(crate) fn stop_of(f: Failure) -> Stop {
    match f.kind {
        FailKind::Aborted => Stop::aborted(f.message),
        FailKind::Error | FailKind::Budget => Stop::failure(f.describe()),
    }
}

fn failure_of(stop: Stop) -> Failure {
    match stop.res {
        Res::Aborted => Failure::aborted(stop.reason),
        _ => Failure::step(stop.reason),
    }
}

/// A Groovy value as a declarative step argument.
fn arg_of(v: &Value) -> Arg {
    let pos = Pos { line: 0, col: 0 };
    match v {
        Value::Null => Arg::Str(String::new(), pos),
        Value::Bool(b) => Arg::Bool(*b, pos),
        Value::Int(n) => Arg::Num(*n as f64, pos),
        Value::Float(f) => Arg::Num(*f, pos),
        Value::List(_) | Value::Range { .. } => Arg::List(
            v.items().unwrap_or_default().iter().map(arg_of).collect(),
            pos,
        ),
        Value::Map(m) => Arg::Map(
            m.lock()
                .iter()
                .map(|(k, v)| (k.clone(), arg_of(v)))
                .collect(),
            pos,
        ),
        Value::Obj(o) => match &**o {
            Obj::Descriptor { name, args } => Arg::Call {
                name: name.clone(),
                args: args_of(args),
                pos,
            },
            _ => Arg::Str(v.show(), pos),
        },
        other => Arg::Str(other.show(), pos),
    }
}

fn args_of(args: &[(Option<String>, Value)]) -> Args {
    let mut out = Args::default();
    for (k, v) in args {
        match k {
            Some(k) => out.named.push((k.clone(), arg_of(v))),
            None => out.positional.push(arg_of(v)),
        }
    }
    out
}

/// `'…'` for a shell, whatever the text holds.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "'\\''"))
}

impl Runner<'_> {
    fn interp(&self) -> Interp<RunHost<'_>> {
        Interp::with_binding(RunHost { runner: self }, self.params.binding.clone())
    }

    /// `script { … }`.
    pub(crate) async fn script(&self, step: &Step, scope: &Scope) -> Flow {
        let Some(Script(body)) = &step.script else {
            return Ok(());
        };
        self.interp()
            .run(body, scope.clone())
            .await
            .map(|_| ())
            .map_err(stop_of)
    }

    /// The Groovy outside `pipeline { }`: defines its methods and variables in the binding
    /// the `script` blocks share.
    pub(crate) async fn prelude(&self, script: &Script, scope: &Scope) -> Flow {
        self.interp()
            .run(&script.0, scope.clone())
            .await
            .map(|_| ())
            .map_err(stop_of)
    }

    /// `when { expression { … } }`: Groovy truth of its value.
    pub(crate) async fn expression(&self, script: &Script, scope: &Scope) -> Result<bool, Stop> {
        self.interp()
            .run(&script.0, scope.clone())
            .await
            .map(|v| v.truthy())
            .map_err(stop_of)
    }

    /// A computed environment value.
    pub(crate) async fn computed(
        &self,
        expr: &sluice_core::groovy::ast::Expr,
        scope: &Scope,
    ) -> Result<String, Stop> {
        self.interp()
            .eval(expr, scope.clone())
            .await
            .map(|v| v.show())
            .map_err(stop_of)
    }

    /// Runs `script` on the agent with its standard output going to a file, returned (the
    /// standard error goes to the log as usual).
    async fn capture(&self, script: &str, scope: &Scope, line: u32) -> Result<(i64, String), Stop> {
        let n = self
            .scratch_seq
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = format!("tmp/capture-{n}");
        self.agent
            .put(&dir, tar_stream::empty())
            .await
            .map_err(|e| Stop::failure(format!("line {line}: {e}")))?;
        let out = self.agent.path_of(&format!("{dir}/out"));
        let wrapped = if script.starts_with("#!") {
            format!("{script}\n")
        } else {
            format!("{{\n{script}\n}} > {}\n", quoted(&out))
        };
        let origin = Origin {
            step: Some("sh".into()),
            ..scope.origin.clone()
        };
        // A script with its own interpreter (`#!/usr/bin/env python3`) cannot be wrapped in
        // a redirection: its output is collected from the stream instead (both streams).
        let shebang = script.starts_with("#!");
        let collected = std::sync::Mutex::new(String::new());
        let log = |l: &str| {
            if !shebang {
                self.events.log(&origin, l);
            } else if let Ok(mut c) = collected.lock()
                && (c.len() as u64) < MAX_CAPTURE
            {
                c.push_str(l);
                c.push('\n');
            }
        };
        let exit = self
            .agent
            .run(&wrapped, &scope.env, &scope.dir, &log, &scope.cancel)
            .await
            .map_err(|e| Stop::failure(format!("line {line}: sh: {e}")));
        let code = match exit? {
            Exit::Code(c) => i64::from(c),
            Exit::Stopped => return Err(Stop::aborted("stopped while a script was running")),
        };
        if shebang {
            let _ = self.agent.remove(&dir).await;
            return Ok((code, collected.into_inner().unwrap_or_default()));
        }
        let picked = self.scratch("capture").await;
        let text = async {
            let tree = self.agent.get(&dir).await.map_err(|e| e.to_string())?;
            tar_stream::select(tree, "out", None, picked.clone())
                .await
                .map_err(|e| e.to_string())?;
            let path = picked.join("out");
            match tokio::fs::metadata(&path).await {
                Ok(m) if m.len() > MAX_CAPTURE => {
                    return Err(format!("the output is over {} MB", MAX_CAPTURE >> 20));
                }
                Ok(_) => {}
                Err(_) => return Ok(String::new()),
            }
            let bytes = tokio::fs::read(&path).await.map_err(|e| e.to_string())?;
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        }
        .await;
        let _ = tokio::fs::remove_dir_all(&picked).await;
        let _ = self.agent.remove(&dir).await;
        text.map(|t| (code, t))
            .map_err(|e| Stop::failure(format!("line {line}: {e}")))
    }

    /// A workspace file's path on the agent, checked to stay inside the workspace.
    fn agent_path(&self, scope: &Scope, file: &str, line: u32, step: &str) -> Result<String, Stop> {
        let rel = crate::agent::join(&scope.dir, file).map_err(|_| {
            Stop::failure(format!(
                "line {line}: {step}('{file}') must stay inside the workspace"
            ))
        })?;
        Ok(self.agent.path_of(&rel))
    }

    async fn groovy_sh(&self, call: &StepCall, scope: &Scope) -> Result<Value, Stop> {
        let line = call.pos.line;
        let script = call.main("script").map(Value::show).unwrap_or_default();
        nul_free(line, &script, &scope.env)?;
        let stdout = call.named("returnStdout").is_some_and(Value::truthy);
        let status = call.named("returnStatus").is_some_and(Value::truthy);
        let origin = Origin {
            step: Some("sh".into()),
            ..scope.origin.clone()
        };
        self.events
            .log(&origin, &format!("[sluice] sh (Jenkinsfile line {line})"));
        let (code, out) = if stdout {
            self.capture(&script, scope, line).await?
        } else {
            let log = |l: &str| self.events.log(&origin, l);
            match self
                .agent
                .run(&script, &scope.env, &scope.dir, &log, &scope.cancel)
                .await
            {
                Ok(Exit::Code(c)) => (i64::from(c), String::new()),
                Ok(Exit::Stopped) => {
                    return Err(Stop::aborted("stopped while a script was running"));
                }
                Err(e) => return Err(Stop::failure(format!("line {line}: sh: {e}"))),
            }
        };
        if status {
            return Ok(Value::Int(code));
        }
        if code != 0 {
            return Err(Stop::failure(format!(
                "line {line}: script returned exit code {code}"
            )));
        }
        Ok(if stdout { Value::str(out) } else { Value::Null })
    }

    async fn groovy_input(&self, call: &StepCall, scope: &Scope) -> Result<Value, Stop> {
        let text = |k: &str| call.named(k).map(Value::show);
        let mut parameters = Vec::new();
        let defs = call
            .named("parameters")
            .and_then(Value::items)
            .unwrap_or_default();
        for d in &defs {
            if let Some(p) = parameter_of(d) {
                parameters.push(p);
            }
        }
        let input = Input {
            message: call.main("message").map(Value::show).unwrap_or_default(),
            ok: text("ok"),
            submitter: text("submitter"),
            parameters: parameters.clone(),
        };
        let origin = Origin {
            step: Some("input".into()),
            ..scope.origin.clone()
        };
        let scope = Scope {
            origin,
            ..scope.clone()
        };
        let values = self
            .gate(&input, scope.origin.stage.as_deref(), &scope)
            .await?;
        let typed = |p: &Parameter| {
            let v = values.get(p.name()).cloned().unwrap_or_default();
            match p {
                Parameter::Boolean { .. } => Value::Bool(v == "true"),
                _ => Value::str(v),
            }
        };
        Ok(match parameters.as_slice() {
            [] => Value::Null,
            [one] => typed(one),
            many => Value::map(
                many.iter()
                    .map(|p| (p.name().to_owned(), typed(p)))
                    .collect(),
            ),
        })
    }

    /// `parallel(a: { … }, b: { … }, failFast: true)` or `parallel(map)`.
    async fn groovy_parallel<'a, 'r>(
        &'a self,
        cx: &'a Cx<'a, RunHost<'r>>,
        call: &StepCall,
    ) -> Result<Value, Failure> {
        let mut entries: Vec<(String, Value)> = Vec::new();
        for (k, v) in &call.args {
            match (k, v) {
                (None, Value::Map(m)) => entries.extend(m.lock().clone()),
                (Some(k), v) => entries.push((k.clone(), v.clone())),
                _ => {}
            }
        }
        let fail_fast = entries.iter().any(|(k, v)| k == "failFast" && v.truthy());
        let branches: Vec<(String, Arc<sluice_core::groovy::value::Closure>)> = entries
            .into_iter()
            .filter_map(|(k, v)| match v {
                Value::Closure(c) => Some((k, c)),
                _ => None,
            })
            .collect();
        if branches.is_empty() {
            return Err(Failure::step(format!(
                "line {}: parallel needs branches: parallel(first: {{ … }}, second: {{ … }})",
                call.pos.line
            )));
        }
        let parent = cx.scope.cancel.clone();
        let stop_all = CancellationToken::new();
        let runs = branches.iter().map(|(name, body)| {
            let cancel = parent.child_token();
            let stop_all = stop_all.clone();
            let stage = match &cx.scope.origin.stage {
                Some(s) => format!("{s} / {name}"),
                None => name.clone(),
            };
            let scope = Scope {
                origin: Origin {
                    stage: Some(stage),
                    step: None,
                },
                cancel: cancel.clone(),
                ..cx.scope.clone()
            };
            async move {
                let inner = cx.with_scope(scope);
                let run = inner.call(body, Vec::new());
                tokio::pin!(run);
                let result = tokio::select! {
                    r = &mut run => r,
                    _ = stop_all.cancelled() => {
                        cancel.cancel();
                        run.await
                    }
                };
                if result.is_err() && fail_fast {
                    stop_all.cancel();
                }
                result
            }
        });
        let results = join_all(runs).await;
        // The first real failure, not the aborts failFast caused.
        let mut worst: Option<Failure> = None;
        for r in results {
            if let Err(f) = r {
                let replace = match &worst {
                    None => true,
                    Some(w) => w.kind == FailKind::Aborted && f.kind != FailKind::Aborted,
                };
                if replace {
                    worst = Some(f);
                }
            }
        }
        match worst {
            Some(f) => Err(f),
            None => Ok(Value::Null),
        }
    }
}

/// A Groovy closure as a block step's body.
struct GroovyBody<'a, 'r> {
    cx: &'a Cx<'a, RunHost<'r>>,
    closure: Arc<sluice_core::groovy::value::Closure>,
}

impl RunBody for GroovyBody<'_, '_> {
    fn run(&self, scope: Scope) -> BoxFuture<'_, Flow> {
        Box::pin(async move {
            let inner = self.cx.with_scope(scope);
            inner
                .call(&self.closure, Vec::new())
                .await
                .map(|_| ())
                .map_err(stop_of)
        })
    }
}

/// A parameter definition in `input(parameters: [...])`.
fn parameter_of(v: &Value) -> Option<Parameter> {
    let Value::Obj(o) = v else { return None };
    let Obj::Descriptor { name, args } = &**o else {
        return None;
    };
    let get = |k: &str| {
        args.iter()
            .find(|(n, _)| n.as_deref() == Some(k))
            .map(|(_, v)| v.clone())
    };
    let text = |k: &str| get(k).map(|v| v.show()).unwrap_or_default();
    let pname = text("name");
    Some(match name.as_str() {
        "string" | "password" => Parameter::String {
            name: pname,
            default: text("defaultValue"),
            description: text("description"),
        },
        "text" => Parameter::Text {
            name: pname,
            default: text("defaultValue"),
            description: text("description"),
        },
        "booleanParam" => Parameter::Boolean {
            name: pname,
            default: get("defaultValue").is_some_and(|v| v.truthy()),
            description: text("description"),
        },
        "choice" => Parameter::Choice {
            name: pname,
            choices: match get("choices") {
                Some(Value::Str(s)) => s.lines().map(str::to_owned).collect(),
                Some(list) => list
                    .items()
                    .unwrap_or_default()
                    .iter()
                    .map(Value::show)
                    .collect(),
                None => Vec::new(),
            },
            description: text("description"),
        },
        _ => return None,
    })
}

impl<'r> Host for RunHost<'r> {
    type Scope = Scope;

    fn is_step(&self, name: &str) -> bool {
        groovy_step(name)
    }

    fn step<'a>(
        &'a self,
        cx: &'a Cx<'a, Self>,
        call: StepCall,
    ) -> BoxFuture<'a, Result<Value, Failure>> {
        Box::pin(async move {
            let runner = self.runner;
            let scope = &cx.scope;
            let line = call.pos.line;
            match call.name.as_str() {
                "sh" => return runner.groovy_sh(&call, scope).await.map_err(failure_of),
                "input" => return runner.groovy_input(&call, scope).await.map_err(failure_of),
                "parallel" => return runner.groovy_parallel(cx, &call).await,
                "readFile" => {
                    let file = call.main("file").map(Value::show).unwrap_or_default();
                    let path = runner
                        .agent_path(scope, &file, line, "readFile")
                        .map_err(failure_of)?;
                    let (code, text) = runner
                        .capture(&format!("cat -- {}", quoted(&path)), scope, line)
                        .await
                        .map_err(failure_of)?;
                    if code != 0 {
                        return Err(Failure::step(format!(
                            "line {line}: readFile: cannot read `{file}`"
                        )));
                    }
                    return Ok(Value::str(text));
                }
                "fileExists" => {
                    let file = call.main("file").map(Value::show).unwrap_or_default();
                    let path = runner
                        .agent_path(scope, &file, line, "fileExists")
                        .map_err(failure_of)?;
                    let quiet = |_: &str| {};
                    let exit = runner
                        .agent
                        .run(
                            &format!("test -e {}", quoted(&path)),
                            &scope.env,
                            &scope.dir,
                            &quiet,
                            &scope.cancel,
                        )
                        .await
                        .map_err(|e| Failure::step(format!("line {line}: fileExists: {e}")))?;
                    return match exit {
                        Exit::Code(c) => Ok(Value::Bool(c == 0)),
                        Exit::Stopped => Err(Failure::aborted("cancelled")),
                    };
                }
                _ => {}
            }
            let step = Step {
                name: call.name.clone(),
                pos: call.pos,
                args: args_of(&call.args),
                steps: Vec::new(),
                script: None,
            };
            let closure = call.body.clone().map(|closure| GroovyBody { cx, closure });
            let body = match &closure {
                Some(run) => Body::Closure(run),
                None => Body::Steps(&[]),
            };
            runner
                .measured(&step, body, scope)
                .await
                .map(|_| Value::Null)
                .map_err(failure_of)
        })
    }

    fn env(&self, scope: &Scope, name: &str) -> Option<String> {
        let exported = self
            .runner
            .exports
            .lock()
            .ok()
            .and_then(|e| e.get(name).cloned());
        exported.or_else(|| scope.env.get(name).cloned())
    }

    fn env_all(&self, scope: &Scope) -> Vec<(String, String)> {
        let mut all: Env = scope.env.clone();
        if let Ok(e) = self.runner.exports.lock() {
            all.extend(e.clone());
        }
        all.into_iter().collect()
    }

    fn set_env(&self, _scope: &Scope, name: &str, value: Option<String>) {
        if let Ok(mut e) = self.runner.exports.lock() {
            match value {
                Some(v) => e.insert(name.to_owned(), v),
                None => e.remove(name),
            };
        }
    }

    fn param(&self, name: &str) -> Option<Value> {
        let v = self.runner.params.get(name)?;
        Some(if self.runner.booleans.contains(name) {
            Value::Bool(v == "true")
        } else {
            Value::str(v.as_str())
        })
    }

    fn params(&self) -> Vec<(String, Value)> {
        self.runner
            .params
            .keys()
            .filter_map(|k| Some((k.clone(), self.param(k)?)))
            .collect()
    }

    fn build(&self, prop: &str) -> Option<Value> {
        let r = self.runner;
        let word = |res: Res| match res {
            Res::Success => "SUCCESS",
            Res::Unstable => "UNSTABLE",
            Res::Failure => "FAILURE",
            Res::Aborted => "ABORTED",
        };
        let shown = r.shown.lock().map(|s| s.clone()).unwrap_or_default();
        Some(match prop {
            "number" | "id" => Value::Int(r.ctx.run.number),
            "result" => match r.result() {
                Res::Success => Value::Null,
                other => Value::str(word(other)),
            },
            "currentResult" => Value::str(word(r.result())),
            "displayName" | "fullDisplayName" => Value::str(
                shown
                    .display_name
                    .unwrap_or_else(|| format!("#{}", r.ctx.run.number)),
            ),
            "description" => shown.description.map(Value::str).unwrap_or(Value::Null),
            "durationString" => {
                let secs = r.started.elapsed().as_secs();
                Value::str(format!(
                    "{}{} sec and counting",
                    if secs >= 60 {
                        format!("{} min ", secs / 60)
                    } else {
                        String::new()
                    },
                    secs % 60
                ))
            }
            "duration" => Value::Int(r.started.elapsed().as_millis() as i64),
            "projectName" => Value::str(r.ctx.project.slug.as_str()),
            "previousBuild" => match r.ctx.previous.as_deref().and_then(Res::of_status) {
                Some(res) => Value::obj(Obj::PreviousBuild {
                    result: Some(word(res).to_owned()),
                }),
                None => Value::Null,
            },
            _ => return None,
        })
    }

    fn set_build(&self, prop: &str, value: &Value) -> Result<(), String> {
        let r = self.runner;
        match prop {
            "result" => {
                let word = value.show();
                let res = Res::parse(&word).ok_or_else(|| {
                    format!("currentBuild.result must be SUCCESS, UNSTABLE, FAILURE or ABORTED, not `{word}`")
                })?;
                r.raise(res, &format!("currentBuild.result = '{word}'"));
                Ok(())
            }
            "displayName" | "description" => {
                let text = value.show();
                if let Ok(mut shown) = r.shown.lock() {
                    if prop == "displayName" {
                        shown.display_name = Some(text.clone());
                    } else {
                        shown.description = Some(text.clone());
                    }
                }
                r.events.log(
                    &Origin::default(),
                    &format!("[sluice] currentBuild.{prop} = {text}"),
                );
                Ok(())
            }
            other => Err(format!("currentBuild.{other} cannot be set")),
        }
    }

    fn cancelled(&self, scope: &Scope) -> bool {
        scope.cancel.is_cancelled()
    }
}
