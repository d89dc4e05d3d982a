//! Pipeline-level sections: agent, environment, options, parameters, triggers.

use std::collections::HashSet;

use super::super::diagnostics::{Diagnostic, Pos};
use super::super::model::*;
use super::super::syntax::{Node, Value};
use super::{Analyzer, env_name_ok, template_of, text_of};

/// Jenkins' numbers are Java `int`s.
const MAX_INT: f64 = i32::MAX as f64;

impl Analyzer<'_> {
    pub(super) fn agent(&mut self, node: &Node) -> Option<Agent> {
        if let Some(Value::Word(word, pos)) = node.args.positional.first() {
            return match word.as_str() {
                "any" => Some(Agent::Any),
                "none" => Some(Agent::None),
                _ => {
                    self.error(
                        *pos,
                        format!(
                            "unknown agent `{word}`: use any, none, label, node, docker or kubernetes"
                        ),
                    );
                    None
                }
            };
        }
        if let Some(second) = node.block.as_ref().and_then(|b| b.get(1)) {
            self.error(
                second.pos,
                format!(
                    "`agent` takes one type, found `{}` and `{}`",
                    node.block
                        .as_ref()
                        .and_then(|b| b.first())
                        .map_or("", |n| n.name.as_str()),
                    second.name
                ),
            );
        }
        let Some(kind) = node.block.as_ref().and_then(|b| b.first()) else {
            self.error(
                node.pos,
                "`agent` needs a value: any, none, or a `{ label | docker | kubernetes }` block",
            );
            return None;
        };
        let named = |key: &str| {
            kind.args
                .named(key)
                .or(kind.args.positional.first())
                .and_then(text_of)
        };
        let nested = |key: &str| {
            kind.block
                .iter()
                .flatten()
                .find(|n| n.name == key)
                .and_then(|n| n.args.positional.first())
                .and_then(text_of)
        };
        if let Some(ws) = kind
            .block
            .iter()
            .flatten()
            .find(|n| n.name == "customWorkspace")
        {
            self.diags.push(Diagnostic::warning(
                ws.pos,
                "`customWorkspace` is ignored: every run gets a fresh workspace of its own",
            ));
        }
        for n in kind.block.iter().flatten() {
            if matches!(kind.name.as_str(), "label" | "node")
                && !matches!(n.name.as_str(), "label" | "customWorkspace")
            {
                self.error(
                    n.pos,
                    format!(
                        "unknown field `{}` in `{}`: label, customWorkspace",
                        n.name, kind.name
                    ),
                );
            }
        }
        match kind.name.as_str() {
            "label" | "node" => named("label")
                .or_else(|| nested("label"))
                .map(|label| Agent::Label { label }),
            "docker" => named("image")
                .or_else(|| nested("image"))
                .map(|image| Agent::Docker { image }),
            "kubernetes" => nested("yaml")
                .or_else(|| named("yaml"))
                .map(|yaml| Agent::Kubernetes { yaml }),
            other => {
                self.error(kind.pos, format!("unknown agent type `{other}`"));
                return None;
            }
        }
        .or_else(|| {
            self.error(
                kind.pos,
                format!("`{}` agent is missing its value", kind.name),
            );
            None
        })
    }

    pub(super) fn environment(&mut self, node: &Node) -> Vec<EnvVar> {
        let mut vars = Vec::new();
        self.empty_section(
            node,
            "set at least one variable (NAME = 'value'), or remove the section",
        );
        let mut names = HashSet::new();
        for entry in node.block.iter().flatten() {
            if entry.assign.is_some() && !names.insert(entry.name.as_str()) {
                self.error(
                    entry.pos,
                    format!("environment variable `{}` is set twice", entry.name),
                );
                continue;
            }
            let Some(value) = &entry.assign else {
                self.error(
                    entry.pos,
                    format!("expected `{} = 'value'` in `environment`", entry.name),
                );
                continue;
            };
            if !env_name_ok(&entry.name) {
                self.error(
                    entry.pos,
                    format!(
                        "`{}` is not a valid environment name (letters, digits, _)",
                        entry.name
                    ),
                );
                continue;
            }
            let value = match value {
                Value::Call { name, args, pos } if name == "credentials" => {
                    match args.positional.first().and_then(text_of) {
                        Some(id) if crate::validate::secret_name(&id).is_err() => {
                            self.error(
                                *pos,
                                format!(
                                    "credentials('{id}'): `{id}` cannot be a secret's name (a Jenkins credential id: letters, digits, `-`, `_` and `.`, starting with a letter or digit)"
                                ),
                            );
                            continue;
                        }
                        Some(id) => EnvValue::Credentials { id },
                        None => {
                            self.error(*pos, "`credentials` needs the secret's name, e.g. credentials('deploy-token')");
                            continue;
                        }
                    }
                }
                Value::Expr(expr, _) => {
                    self.check_value(value);
                    EnvValue::Computed {
                        expr: Computed(expr.clone()),
                    }
                }
                other => match template_of(other) {
                    Some(value) => EnvValue::Text { value },
                    None => {
                        self.error(
                            other.pos(),
                            "environment values are strings, credentials('id') or Groovy expressions such as sh(script: '…', returnStdout: true).trim()",
                        );
                        continue;
                    }
                },
            };
            vars.push(EnvVar {
                name: entry.name.clone(),
                value,
            });
        }
        vars
    }

    pub(super) fn number(&mut self, value: Option<&Value>, what: &str, pos: Pos) -> Option<u64> {
        match value {
            Some(Value::Num(n, _)) if *n >= 0.0 && n.fract() == 0.0 && *n <= MAX_INT => {
                Some(*n as u64)
            }
            Some(Value::Num(n, p)) if *n > MAX_INT && n.fract() == 0.0 => {
                self.error(*p, format!("{what} is out of range: at most 2147483647"));
                None
            }
            Some(Value::Str(s, p)) => s
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| *n as f64 <= MAX_INT)
                .or_else(|| {
                    self.error(
                        *p,
                        format!("{what} must be a whole number from 0 to 2147483647"),
                    );
                    None
                }),
            Some(other) => {
                self.error(other.pos(), format!("{what} must be a whole number"));
                None
            }
            None => {
                self.error(pos, format!("{what} is missing"));
                None
            }
        }
    }

    pub(super) fn parameters(&mut self, node: &Node) -> Vec<Parameter> {
        let mut params = Vec::new();
        let mut names = HashSet::new();
        self.empty_section(
            node,
            "declare at least one parameter, or remove the section",
        );
        for p in node.block.iter().flatten() {
            if p.block.is_some() {
                self.error(
                    p.pos,
                    format!(
                        "parameter `{}` takes arguments, not a block: {}(name: '…', …)",
                        p.name, p.name
                    ),
                );
                continue;
            }
            let Some(name) = p.args.named("name").and_then(text_of) else {
                self.error(p.pos, format!("`{}` parameter needs `name:`", p.name));
                continue;
            };
            if !names.insert(name.clone()) {
                self.error(p.pos, format!("parameter `{name}` is declared twice"));
            }
            let description = p
                .args
                .named("description")
                .and_then(text_of)
                .unwrap_or_default();
            let default = p
                .args
                .named("defaultValue")
                .and_then(text_of)
                .unwrap_or_default();
            let param = match p.name.as_str() {
                "string" => Parameter::String {
                    name,
                    default,
                    description,
                },
                "text" => Parameter::Text {
                    name,
                    default,
                    description,
                },
                "password" => Parameter::Password {
                    name,
                    default,
                    description,
                },
                "booleanParam" => Parameter::Boolean {
                    name,
                    default: default == "true",
                    description,
                },
                "choice" => {
                    let choices = match p.args.named("choices") {
                        Some(Value::List(items, _)) => items.iter().filter_map(text_of).collect(),
                        Some(other) => text_of(other)
                            .map(|t| t.lines().map(str::to_owned).collect())
                            .unwrap_or_default(),
                        None => Vec::new(),
                    };
                    if choices.is_empty() {
                        self.error(
                            p.pos,
                            format!("choice parameter `{name}` needs `choices: [...]`"),
                        );
                    }
                    Parameter::Choice {
                        name,
                        choices,
                        description,
                    }
                }
                other => {
                    self.error(
                        p.pos,
                        format!(
                            "unknown parameter type `{other}`: string, booleanParam, choice, text or password"
                        ),
                    );
                    continue;
                }
            };
            params.push(param);
        }
        params
    }

    pub(super) fn triggers(&mut self, node: &Node) -> (Vec<String>, Option<Computed>) {
        let mut crons = Vec::new();
        let mut computed = None;
        self.empty_section(
            node,
            "add a trigger such as cron('H 4 * * 1-5'), or remove the section",
        );
        let mut seen = HashSet::new();
        for t in node.block.iter().flatten() {
            if t.block.is_some() {
                self.error(
                    t.pos,
                    format!(
                        "trigger `{}` takes arguments, not a block: {}('…')",
                        t.name, t.name
                    ),
                );
                continue;
            }
            if !seen.insert(t.name.as_str()) {
                self.error(t.pos, format!("trigger `{}` appears twice", t.name));
                continue;
            }
            let spec_value = t.args.positional.first().or(t.args.named("spec"));
            if t.name == "cron"
                && let Some(value @ (Value::Expr(..) | Value::GStr(..))) = spec_value
                && (matches!(value, Value::Expr(..))
                    || text_of(value).is_some_and(|s| s.contains("${")))
            {
                self.check_value(value);
                computed =
                    super::stage_parts::groovy_of(value).map(|e| Computed(std::sync::Arc::new(e)));
                continue;
            }
            match (t.name.as_str(), spec_value.and_then(text_of)) {
                ("cron", Some(spec)) => match super::super::cron::Schedule::parse(&spec, "lint") {
                    Ok(_) => crons.push(spec),
                    Err(e) => {
                        let pos = t.args.positional.first().map_or(t.pos, |v| v.pos());
                        self.error(pos, format!("cron('{spec}'): {e}"));
                    }
                },
                ("cron", None) => {
                    self.error(t.pos, "cron needs a schedule, e.g. cron('H 4 * * 1-5')")
                }
                // The GitHub plugin's push trigger: the project's webhook already does it.
                ("githubPush", _) => self.diags.push(Diagnostic::warning(
                    t.pos,
                    "trigger `githubPush` is what the project's webhook already does: pushes to GitHub start runs when the webhook is set up (docs/WEBHOOKS.md)",
                )),
                (other, _) => self.error(
                    t.pos,
                    format!("unknown trigger `{other}`: Sluice supports cron and githubPush"),
                ),
            }
        }
        (crons, computed)
    }
}
