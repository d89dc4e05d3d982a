//! Step arguments as values: strings with `${…}` filled in from the environment and
//! parameters, numbers, booleans, and Jenkins' `*`/`?` branch patterns.

use std::sync::Arc;

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use sluice_core::groovy::ast::Expr;
use sluice_core::groovy::eval::Frame;
use sluice_core::groovy::{Cx, Failure, Host, Interp, StepCall, Value as Groovy};
use sluice_core::pipeline::Pos;
use sluice_core::pipeline::lexer::Part;
use sluice_core::pipeline::model::Step;
use sluice_core::pipeline::syntax::Value;

use super::Env;

/// The run's parameters, and the Groovy script binding that `${name}` also reads (a
/// variable a `script` block assigned).
pub(crate) struct Params {
    pub values: Env,
    pub binding: Arc<Frame>,
}

impl Params {
    pub(crate) fn new(values: Env) -> Params {
        Params {
            values,
            binding: Arc::new(Frame::default()),
        }
    }
}

impl std::ops::Deref for Params {
    type Target = Env;

    fn deref(&self) -> &Env {
        &self.values
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || c == '_')
}

fn lookup(expr: &str, env: &Env, params: &Params) -> String {
    let expr = expr.trim();
    if let Some(name) = expr.strip_prefix("params.").filter(|n| is_name(n)) {
        return params.get(name).cloned().unwrap_or_default();
    }
    if let Some(name) = expr.strip_prefix("env.").filter(|n| is_name(n)) {
        return env.get(name).cloned().unwrap_or_default();
    }
    if is_name(expr) {
        return match env.get(expr) {
            Some(v) => v.clone(),
            None => params
                .binding
                .get(expr)
                .map(|v| v.show())
                .unwrap_or_default(),
        };
    }
    let mut diags = Vec::new();
    match sluice_core::groovy::parse::interpolated(expr, Pos { line: 1, col: 1 }, &mut diags) {
        Some(e) => evaluate(&e, env, params).unwrap_or_default(),
        None => String::new(),
    }
}

/// Evaluates a Groovy expression in a declarative step's argument or string: no steps, a
/// small budget (it runs inline, and never waits).
fn evaluate(expr: &Expr, env: &Env, params: &Params) -> Option<String> {
    let interp = Interp::with_binding(Inline { env, params }, params.binding.clone())
        .with_budget(4_000, 16 << 20);
    match interp.eval(expr, ()).now_or_never()? {
        Ok(v) => Some(v.show()),
        Err(_) => None,
    }
}

/// The host of inline expressions: variables and parameters, no steps.
struct Inline<'a> {
    env: &'a Env,
    params: &'a Params,
}

impl Host for Inline<'_> {
    type Scope = ();

    fn is_step(&self, _: &str) -> bool {
        false
    }

    fn step<'a>(
        &'a self,
        _: &'a Cx<'a, Self>,
        call: StepCall,
    ) -> BoxFuture<'a, Result<Groovy, Failure>> {
        Box::pin(async move {
            Err(Failure::step(format!(
                "`{}` cannot run inside a string or an argument: call it in a script block",
                call.name
            )))
        })
    }

    fn env(&self, _: &(), name: &str) -> Option<String> {
        self.env.get(name).cloned()
    }

    fn env_all(&self, _: &()) -> Vec<(String, String)> {
        self.env.clone().into_iter().collect()
    }

    fn set_env(&self, _: &(), _: &str, _: Option<String>) {}

    fn param(&self, name: &str) -> Option<Groovy> {
        self.params.get(name).map(|v| Groovy::str(v.as_str()))
    }

    fn params(&self) -> Vec<(String, Groovy)> {
        self.params
            .iter()
            .map(|(k, v)| (k.clone(), Groovy::str(v.as_str())))
            .collect()
    }

    fn build(&self, _: &str) -> Option<Groovy> {
        None
    }

    fn set_build(&self, _: &str, _: &Groovy) -> Result<(), String> {
        Err("currentBuild cannot be set here".into())
    }
}

pub(crate) fn render(parts: &[Part], env: &Env, params: &Params) -> String {
    parts
        .iter()
        .map(|p| match p {
            Part::Text(t) => t.clone(),
            Part::Var(v) => lookup(v, env, params),
        })
        .collect()
}

/// `${NAME}` in already-parsed text, back into parts.
pub(crate) fn interpolate(text: &str) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        if start > 0 {
            parts.push(Part::Text(rest[..start].to_owned()));
        }
        parts.push(Part::Var(rest[start + 2..start + len].to_owned()));
        rest = &rest[start + len + 1..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest.to_owned()));
    }
    parts
}

pub(crate) fn text(value: &Value, env: &Env, params: &Params) -> Option<String> {
    match value {
        Value::Expr(e, _) => evaluate(e, env, params),
        Value::Str(s, _) | Value::Word(s, _) => Some(s.clone()),
        Value::GStr(parts, _) => Some(render(parts, env, params)),
        Value::Num(n, _) => Some(n.to_string()),
        Value::Bool(b, _) => Some(b.to_string()),
        _ => None,
    }
}

/// The step's main argument: the first positional one or the named `key`.
pub(crate) fn arg(step: &Step, key: &str, env: &Env, params: &Params) -> Option<String> {
    step.args
        .positional
        .first()
        .or_else(|| step.args.named(key))
        .and_then(|v| text(v, env, params))
}

/// A named argument as text.
pub(crate) fn named(step: &Step, key: &str, env: &Env, params: &Params) -> Option<String> {
    step.args.named(key).and_then(|v| text(v, env, params))
}

/// A named boolean argument.
pub(crate) fn flag(step: &Step, key: &str) -> bool {
    matches!(step.args.named(key), Some(Value::Bool(true, _)))
}

/// `time` + `unit` (Jenkins' `TimeUnit` names) in seconds, as `sleep` and `timeout` take them.
pub(crate) fn seconds(step: &Step, env: &Env, params: &Params, default_unit: &str) -> f64 {
    let amount: f64 = arg(step, "time", env, params)
        .and_then(|t| t.parse().ok())
        .unwrap_or(0.0);
    let unit = named(step, "unit", env, params).unwrap_or_else(|| default_unit.into());
    let factor = match unit.as_str() {
        "NANOSECONDS" => 1e-9,
        "MICROSECONDS" => 1e-6,
        "MILLISECONDS" => 0.001,
        "MINUTES" => 60.0,
        "HOURS" => 3600.0,
        "DAYS" => 86400.0,
        _ => 1.0,
    };
    (amount * factor).clamp(0.0, 366.0 * 86400.0)
}

/// `*` matches any run of characters, `?` one character (Jenkins' branch/tag patterns).
pub(crate) use sluice_core::store::changes::glob;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_patterns_glob_like_jenkins() {
        assert!(glob("main", "main"));
        assert!(glob("release/*", "release/1.2"));
        assert!(glob("feature-?", "feature-a"));
        assert!(!glob("release/*", "main"));
        assert!(!glob("main", "mainline"));
    }

    #[test]
    fn interpolation_fills_variables() {
        let mut env = Env::new();
        env.insert("V".into(), "1.2".into());
        let params = Params::new(Env::new());
        assert_eq!(
            render(&interpolate("Ship ${V}?"), &env, &params),
            "Ship 1.2?"
        );
        assert_eq!(render(&interpolate("no vars"), &env, &params), "no vars");
        params
            .binding
            .define("version", sluice_core::groovy::Value::str("2.0"));
        assert_eq!(
            render(
                &interpolate("v${version} ${V.replace('.', '-')} ${params.NONE}"),
                &env,
                &params
            ),
            "v2.0 1-2 "
        );
    }
}
