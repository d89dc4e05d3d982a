//! The `deploy` step's arguments (API.md, "Releases"), checked when a Jenkinsfile is linted so
//! that a misspelt or missing argument is reported at its `line:col` before any run starts.
//!
//! ```text
//! deploy app: 'web', environment: 'production', artifact: 'dist/**', command: 'python3 app.py',
//!        instances: 6, healthPath: '/healthz', strategy: 'blueGreen',
//!        smoke: 'curl -fsS "$GREEN_URL/healthz"', monitorSeconds: 60
//! ```

use serde::Serialize;

use super::diagnostics::Pos;
use super::model::Template;
use super::syntax::{Args, Value};

/// Every argument `deploy` takes.
const ARGUMENTS: &[&str] = &[
    "app",
    "environment",
    "artifact",
    "command",
    "image",
    "instances",
    "healthPath",
    "strategy",
    "smoke",
    "monitorSeconds",
];

/// The most instances one deploy may ask for.
pub const MAX_INSTANCES: u32 = 50;
/// The longest `monitorSeconds`.
pub const MAX_MONITOR_SECS: u32 = 3600;

/// How a release replaces what runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Strategy {
    BlueGreen,
    Recreate,
}

/// What runs: files this run archived and a command (the local runtime), or an image (the
/// Kubernetes runtime).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Workload {
    Artifact { artifact: String, command: Template },
    Image { image: String },
}

/// A checked `deploy` step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeploySpec {
    pub app: String,
    pub environment: String,
    pub workload: Workload,
    pub instances: u32,
    pub health_path: String,
    /// `None`: blue-green once the environment runs a version, else the first start.
    pub strategy: Option<Strategy>,
    pub smoke: Option<Template>,
    pub monitor_secs: u32,
}

/// An app or environment name: lowercase letters, digits and dashes, starting with a letter,
/// at most 40 characters (it becomes part of URLs and Kubernetes object names).
pub fn is_name(name: &str) -> bool {
    name.len() <= 40
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Reads `args` (the step at `pos`); every problem comes back with the position at fault.
pub fn parse(args: &Args, pos: Pos) -> Result<DeploySpec, Vec<(Pos, String)>> {
    let mut errors = Vec::new();
    if !args.positional.is_empty() {
        errors.push((
            args.positional[0].pos(),
            "`deploy` takes named arguments only (app:, environment:, …)".to_owned(),
        ));
    }
    for (name, value) in &args.named {
        if !ARGUMENTS.contains(&name.as_str()) {
            errors.push((
                value.pos(),
                format!(
                    "`deploy` has no argument `{name}` (it takes {})",
                    ARGUMENTS.join(", ")
                ),
            ));
        }
    }
    let text = |key: &str, errors: &mut Vec<(Pos, String)>| -> Option<(String, Pos)> {
        let value = args.named(key)?;
        match value {
            Value::Str(s, p) => Some((s.clone(), *p)),
            other => {
                errors.push((other.pos(), format!("`{key}:` takes a quoted string")));
                None
            }
        }
    };
    let template = |key: &str, errors: &mut Vec<(Pos, String)>| -> Option<Template> {
        let value = args.named(key)?;
        match super::analyze::template_of(value) {
            Some(t) => Some(t),
            None => {
                errors.push((value.pos(), format!("`{key}:` takes a string")));
                None
            }
        }
    };
    let number = |key: &str, max: u32, min: u32, errors: &mut Vec<(Pos, String)>| -> Option<u32> {
        let value = args.named(key)?;
        match value {
            Value::Num(n, _)
                if n.fract() == 0.0 && *n >= f64::from(min) && *n <= f64::from(max) =>
            {
                Some(*n as u32)
            }
            other => {
                errors.push((
                    other.pos(),
                    format!("`{key}:` takes a whole number from {min} to {max}"),
                ));
                None
            }
        }
    };
    let named = |key: &str, errors: &mut Vec<(Pos, String)>| -> Option<String> {
        match text(key, errors) {
            None => {
                if args.named(key).is_none() {
                    errors.push((pos, format!("`deploy` needs `{key}:`")));
                }
                None
            }
            Some((name, p)) if !is_name(&name) => {
                errors.push((
                    p,
                    format!(
                        "`{key}: '{name}'`: use lowercase letters, digits and dashes, starting with a letter (at most 40)"
                    ),
                ));
                None
            }
            Some((name, _)) => Some(name),
        }
    };
    let app = named("app", &mut errors);
    let environment = named("environment", &mut errors);
    let artifact = text("artifact", &mut errors);
    let command = template("command", &mut errors);
    let image = text("image", &mut errors);
    let workload = match (artifact, command, image) {
        (Some((artifact, _)), Some(command), None) => {
            Some(Workload::Artifact { artifact, command })
        }
        (None, None, Some((image, _))) => Some(Workload::Image { image }),
        (Some(_), _, Some((_, p))) | (_, Some(_), Some((_, p))) => {
            errors.push((
                p,
                "`image:` replaces `artifact:` and `command:`: give one or the other".to_owned(),
            ));
            None
        }
        (Some(_), None, None) => {
            errors.push((
                pos,
                "`artifact:` needs `command:`, which starts each instance".to_owned(),
            ));
            None
        }
        (None, Some(_), None) => {
            errors.push((
                pos,
                "`command:` needs `artifact:`, the archived files it runs from".to_owned(),
            ));
            None
        }
        (None, None, None) => {
            errors.push((
                pos,
                "`deploy` needs `artifact:` and `command:` (or `image:`)".to_owned(),
            ));
            None
        }
    };
    let instances = number("instances", MAX_INSTANCES, 1, &mut errors).unwrap_or(1);
    let monitor_secs = number("monitorSeconds", MAX_MONITOR_SECS, 0, &mut errors).unwrap_or(60);
    let health_path = match text("healthPath", &mut errors) {
        Some((path, p)) if !path.starts_with('/') || path.chars().any(char::is_control) => {
            errors.push((
                p,
                format!("`healthPath: '{path}'` must be a path starting with `/`"),
            ));
            String::new()
        }
        Some((path, _)) => path,
        None => "/healthz".to_owned(),
    };
    let strategy = match text("strategy", &mut errors) {
        Some((s, _)) if s == "blueGreen" => Some(Strategy::BlueGreen),
        Some((s, _)) if s == "recreate" => Some(Strategy::Recreate),
        Some((s, p)) => {
            errors.push((
                p,
                format!("`strategy: '{s}'`: use `blueGreen` or `recreate`"),
            ));
            None
        }
        None => None,
    };
    let smoke = template("smoke", &mut errors);
    match (app, environment, workload) {
        (Some(app), Some(environment), Some(workload)) if errors.is_empty() => Ok(DeploySpec {
            app,
            environment,
            workload,
            instances,
            health_path,
            strategy,
            smoke,
            monitor_secs,
        }),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use crate::pipeline::lint;

    fn errors(step: &str) -> Vec<String> {
        let src = format!(
            "pipeline {{ agent any\n stages {{ stage('Ship') {{ steps {{\n{step}\n }} }} }} }}\n"
        );
        lint(&src)
            .diagnostics
            .iter()
            .filter(|d| d.severity == crate::pipeline::Severity::Error)
            .map(|d| format!("{}:{}: {}", d.pos.line, d.pos.col, d.message))
            .collect()
    }

    #[test]
    fn a_complete_deploy_lints_clean() {
        let ok = "deploy app: 'web', environment: 'production', artifact: 'dist/**', command: 'python3 app.py', instances: 6, healthPath: '/healthz', strategy: 'blueGreen', smoke: 'curl -fsS \"$GREEN_URL/healthz\"', monitorSeconds: 60";
        assert_eq!(errors(ok), Vec::<String>::new());
        let image = "deploy app: 'web', environment: 'staging', image: 'registry.example/web:1'";
        assert_eq!(errors(image), Vec::<String>::new());
    }

    #[test]
    fn bad_deploy_arguments_are_named_at_their_position() {
        let found =
            errors("deploy app: 'Web', environment: 'prod', artifact: 'dist/**', comand: 'x'");
        assert!(
            found
                .iter()
                .any(|e| e.starts_with("3:13:") && e.contains("`app: 'Web'`")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|e| e.contains("no argument `comand`")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|e| e.contains("`artifact:` needs `command:`")),
            "{found:?}"
        );
        let found = errors(
            "deploy app: 'web', environment: 'prod', image: 'x', artifact: 'a', command: 'c', instances: 0, strategy: 'canary', healthPath: 'health'",
        );
        for needle in [
            "`image:` replaces",
            "`instances:` takes a whole number from 1 to 50",
            "`strategy: 'canary'`",
            "`healthPath: 'health'`",
        ] {
            assert!(
                found.iter().any(|e| e.contains(needle)),
                "{needle}: {found:?}"
            );
        }
        let found = errors("deploy artifact: 'a', command: 'c'");
        assert!(
            found.iter().any(|e| e.contains("needs `app:`")),
            "{found:?}"
        );
        assert!(
            found.iter().any(|e| e.contains("needs `environment:`")),
            "{found:?}"
        );
    }
}
