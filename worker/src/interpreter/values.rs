//! Step arguments as values: strings with `${…}` filled in from the environment and
//! parameters, numbers, booleans, and Jenkins' `*`/`?` branch patterns.

use sluice_core::pipeline::lexer::Part;
use sluice_core::pipeline::model::Step;
use sluice_core::pipeline::syntax::Value;

use super::Env;

fn lookup(expr: &str, env: &Env, params: &Env) -> String {
    let expr = expr.trim();
    if let Some(name) = expr.strip_prefix("params.") {
        return params.get(name).cloned().unwrap_or_default();
    }
    let name = expr.strip_prefix("env.").unwrap_or(expr);
    env.get(name).cloned().unwrap_or_default()
}

pub(crate) fn render(parts: &[Part], env: &Env, params: &Env) -> String {
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

pub(crate) fn text(value: &Value, env: &Env, params: &Env) -> Option<String> {
    match value {
        Value::Str(s, _) | Value::Word(s, _) => Some(s.clone()),
        Value::GStr(parts, _) => Some(render(parts, env, params)),
        Value::Num(n, _) => Some(n.to_string()),
        Value::Bool(b, _) => Some(b.to_string()),
        _ => None,
    }
}

/// The step's main argument: the first positional one or the named `key`.
pub(crate) fn arg(step: &Step, key: &str, env: &Env, params: &Env) -> Option<String> {
    step.args
        .positional
        .first()
        .or_else(|| step.args.named(key))
        .and_then(|v| text(v, env, params))
}

/// A named argument as text.
pub(crate) fn named(step: &Step, key: &str, env: &Env, params: &Env) -> Option<String> {
    step.args.named(key).and_then(|v| text(v, env, params))
}

/// A named boolean argument.
pub(crate) fn flag(step: &Step, key: &str) -> bool {
    matches!(step.args.named(key), Some(Value::Bool(true, _)))
}

/// `time` + `unit` (Jenkins' `TimeUnit` names) in seconds, as `sleep` and `timeout` take them.
pub(crate) fn seconds(step: &Step, env: &Env, params: &Env, default_unit: &str) -> f64 {
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
pub(crate) fn glob(pattern: &str, value: &str) -> bool {
    fn go(p: &[char], v: &[char]) -> bool {
        match (p.first(), v.first()) {
            (None, None) => true,
            (Some('*'), _) => go(&p[1..], v) || (!v.is_empty() && go(p, &v[1..])),
            (Some('?'), Some(_)) => go(&p[1..], &v[1..]),
            (Some(a), Some(b)) if a == b => go(&p[1..], &v[1..]),
            _ => false,
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let v: Vec<char> = value.chars().collect();
    go(&p, &v)
}

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
        assert_eq!(
            render(&interpolate("Ship ${V}?"), &env, &Env::new()),
            "Ship 1.2?"
        );
        assert_eq!(
            render(&interpolate("no vars"), &env, &Env::new()),
            "no vars"
        );
    }
}
