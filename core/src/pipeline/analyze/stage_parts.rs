//! Parts of a stage: when, input, post, matrix and steps.

use std::collections::HashSet;

use super::super::model::*;
use super::super::syntax::{Node, Value};
use super::{Analyzer, STEPS, text_of};

impl Analyzer<'_> {
    pub(super) fn when_block(&mut self, node: &Node) -> Option<When> {
        let conditions: Vec<When> = node
            .block
            .iter()
            .flatten()
            // `beforeAgent`, `beforeInput` and `beforeOptions` say when the condition is
            // checked; here it always is before the stage's agent, input and options.
            .filter(|n| {
                !matches!(
                    n.name.as_str(),
                    "beforeAgent" | "beforeInput" | "beforeOptions"
                )
            })
            .filter_map(|n| self.when(n))
            .collect();
        match conditions.len() {
            0 => {
                if node.block.as_ref().is_none_or(|b| b.is_empty()) {
                    self.error(node.pos, "`when` needs a condition");
                }
                None
            }
            1 => conditions.into_iter().next(),
            _ => Some(When::AllOf { conditions }),
        }
    }

    pub(super) fn when(&mut self, node: &Node) -> Option<When> {
        let first = node.args.positional.first().and_then(text_of);
        let nested = |a: &mut Self| {
            node.block
                .iter()
                .flatten()
                .filter_map(|n| a.when(n))
                .collect::<Vec<_>>()
        };
        match node.name.as_str() {
            "branch" => first.or_else(|| node.args.named("pattern").and_then(text_of)).map(|pattern| When::Branch { pattern }),
            "tag" => Some(When::Tag { pattern: first.or_else(|| node.args.named("pattern").and_then(text_of)).unwrap_or_else(|| "*".into()) }),
            "environment" => match (node.args.named("name").and_then(text_of), node.args.named("value").and_then(text_of)) {
                (Some(name), Some(value)) => Some(When::Environment { name, value }),
                _ => {
                    self.error(node.pos, "environment condition needs name: and value:");
                    None
                }
            },
            "changeRequest" => self.change_request(node),
            "changelog" => match first.or_else(|| node.args.named("pattern").and_then(text_of)) {
                Some(pattern) => match regex::Regex::new(&pattern) {
                    Ok(_) => Some(When::Changelog { pattern }),
                    Err(err) => {
                        let detail = err.to_string();
                        let detail = detail.lines().last().unwrap_or_default().trim_start_matches("error: ").to_owned();
                        self.error(node.pos, format!("changelog `{pattern}` is not a regular expression ({detail})"));
                        None
                    }
                },
                None => {
                    self.error(node.pos, "changelog needs a regular expression, e.g. changelog '.*\\[deploy\\].*'");
                    None
                }
            },
            "changeset" => match first.or_else(|| node.args.named("pattern").and_then(text_of)) {
                Some(pattern) => Some(When::Changeset {
                    pattern,
                    case_sensitive: matches!(node.args.named("caseSensitive"), Some(Value::Bool(true, _))),
                }),
                None => {
                    self.error(node.pos, "changeset needs a file pattern, e.g. changeset 'src/**'");
                    None
                }
            },
            "buildingTag" => Some(When::BuildingTag),
            "isRestartedRun" => Some(When::IsRestartedRun),
            "triggeredBy" => match first.or_else(|| node.args.named("cause").and_then(text_of)) {
                Some(cause) => Some(When::TriggeredBy { cause }),
                None => {
                    self.error(node.pos, "triggeredBy needs a cause, e.g. triggeredBy 'TimerTrigger'");
                    None
                }
            },
            "equals" => match (
                node.args.named("expected").and_then(groovy_of),
                node.args.named("actual").and_then(groovy_of),
            ) {
                (Some(expected), Some(actual)) => {
                    for v in [node.args.named("expected"), node.args.named("actual")].into_iter().flatten() {
                        self.check_value(v);
                    }
                    Some(When::Equals {
                        expected: Computed(std::sync::Arc::new(expected)),
                        actual: Computed(std::sync::Arc::new(actual)),
                    })
                }
                _ => {
                    self.error(node.pos, "equals needs expected: and actual:");
                    None
                }
            },
            "not" => nested(self).into_iter().next().map(|c| When::Not { condition: Box::new(c) }),
            "allOf" => Some(When::AllOf { conditions: nested(self) }),
            "anyOf" => Some(When::AnyOf { conditions: nested(self) }),
            "expression" => match &node.script {
                Some(body) => {
                    self.check_script(body);
                    Some(When::Expression { script: Script(body.clone()) })
                }
                None => {
                    self.error(node.pos, "`expression` takes a block: expression { return env.DEPLOY == 'true' }");
                    None
                }
            },
            other => {
                self.error(node.pos, format!("unknown `when` condition `{other}`"));
                None
            }
        }
        .or_else(|| {
            if !self.diags.iter().any(|d| d.pos == node.pos) {
                self.error(node.pos, format!("`{}` condition is incomplete", node.name));
            }
            None
        })
    }

    /// `changeRequest()`, `changeRequest target: 'main'`, `changeRequest branch: 'fix-*',
    /// comparator: 'GLOB'` (Jenkins compares with EQUALS unless told otherwise).
    fn change_request(&mut self, node: &Node) -> Option<When> {
        let mut comparator = Comparator::Equals;
        let mut attributes = Vec::new();
        for (key, value) in &node.args.named {
            let Some(value) = text_of(value) else {
                self.error(node.pos, format!("changeRequest `{key}:` takes a string"));
                return None;
            };
            if key == "comparator" {
                let Some(parsed) = Comparator::parse(&value) else {
                    self.error(
                        node.pos,
                        format!("changeRequest comparator `{value}` is not EQUALS, GLOB or REGEXP"),
                    );
                    return None;
                };
                comparator = parsed;
            } else if CHANGE_ATTRIBUTES.contains(&key.as_str()) {
                attributes.push((key.clone(), value));
            } else {
                self.error(
                    node.pos,
                    format!(
                        "changeRequest has no attribute `{key}`; it takes {} and comparator",
                        CHANGE_ATTRIBUTES.join(", ")
                    ),
                );
                return None;
            }
        }
        if !node.args.positional.is_empty() {
            self.error(
                node.pos,
                "changeRequest takes named attributes only, e.g. changeRequest target: 'main'",
            );
            return None;
        }
        if comparator == Comparator::Regexp {
            for (key, pattern) in &attributes {
                if let Err(err) = regex::Regex::new(pattern) {
                    let detail = err.to_string();
                    let detail = detail.lines().last().unwrap_or_default();
                    let detail = detail.trim_start_matches("error: ");
                    self.error(
                        node.pos,
                        format!("changeRequest `{key}:` is not a regular expression ({detail})"),
                    );
                    return None;
                }
            }
        }
        Some(When::ChangeRequest {
            attributes,
            comparator,
        })
    }

    pub(super) fn input(&mut self, node: &Node) -> Option<Input> {
        let block = node.block.as_deref().unwrap_or_default();
        let field = |key: &str| {
            block
                .iter()
                .find(|n| n.name == key)
                .and_then(|n| n.args.positional.first())
                .and_then(text_of)
        };
        let Some(message) =
            field("message").or_else(|| node.args.named("message").and_then(text_of))
        else {
            self.error(node.pos, "`input` needs a message");
            return None;
        };
        let parameters = block
            .iter()
            .find(|n| n.name == "parameters")
            .map(|p| self.parameters(p))
            .unwrap_or_default();
        for n in block {
            if ![
                "message",
                "ok",
                "submitter",
                "parameters",
                "id",
                "submitterParameter",
            ]
            .contains(&n.name.as_str())
            {
                self.error(n.pos, format!("unknown `input` field `{}`", n.name));
            }
        }
        Some(Input {
            message,
            ok: field("ok"),
            submitter: field("submitter"),
            parameters,
        })
    }

    pub(super) fn post(&mut self, node: &Node) -> Post {
        let mut post = Post::default();
        self.empty_section(
            node,
            "add a condition such as always { … }, or remove the section",
        );
        let mut seen = HashSet::new();
        for cond in node.block.iter().flatten() {
            if !seen.insert(cond.name.as_str()) {
                self.error(
                    cond.pos,
                    format!("post condition `{}` appears twice", cond.name),
                );
                continue;
            }
            let condition = match cond.name.as_str() {
                "always" => PostCondition::Always,
                "success" => PostCondition::Success,
                "failure" => PostCondition::Failure,
                "unstable" => PostCondition::Unstable,
                "aborted" => PostCondition::Aborted,
                "changed" => PostCondition::Changed,
                "fixed" => PostCondition::Fixed,
                "regression" => PostCondition::Regression,
                "unsuccessful" => PostCondition::Unsuccessful,
                "notBuilt" => PostCondition::NotBuilt,
                "cleanup" => PostCondition::Cleanup,
                other => {
                    self.error(cond.pos, format!("unknown post condition `{other}`"));
                    continue;
                }
            };
            post.conditions.push((condition, self.steps(cond)));
        }
        post
    }

    pub(super) fn matrix(&mut self, node: &Node) -> Option<StageBody> {
        let block = node.block.as_deref().unwrap_or_default();
        let axes_of = |a: &mut Self, n: &Node, what: &str| -> Vec<Axis> {
            let excluding = what.starts_with("excluded");
            let mut axes = Vec::new();
            for axis in n.block.iter().flatten().filter(|x| x.name == "axis") {
                let inner = axis.block.as_deref().unwrap_or_default();
                let name = inner
                    .iter()
                    .find(|x| x.name == "name")
                    .and_then(|x| x.args.positional.first())
                    .and_then(text_of);
                let listed = inner
                    .iter()
                    .find(|x| x.name == "values" || x.name == "notValues");
                let negated = listed.is_some_and(|x| x.name == "notValues");
                if negated && !excluding {
                    a.error(
                        axis.pos,
                        "`notValues` belongs in an `exclude`; an axis lists its `values`",
                    );
                }
                for x in inner {
                    if !matches!(x.name.as_str(), "name" | "values" | "notValues") {
                        a.error(
                            x.pos,
                            format!(
                                "unknown field `{}` in {what}: name, values{}",
                                x.name,
                                if excluding { ", notValues" } else { "" }
                            ),
                        );
                    }
                }
                let values: Vec<String> = listed
                    .map(|x| x.args.positional.iter().filter_map(text_of).collect())
                    .unwrap_or_default();
                match name {
                    Some(name) if !values.is_empty() => axes.push(Axis {
                        name,
                        values,
                        negated,
                    }),
                    Some(name) => a.error(axis.pos, format!("{what} `{name}` has no values")),
                    None => a.error(axis.pos, format!("{what} needs a name")),
                }
            }
            axes
        };
        let axes = block
            .iter()
            .find(|n| n.name == "axes")
            .map(|n| {
                if self.empty_section(
                    n,
                    "a matrix needs at least one axis { name '…'; values '…', '…' }",
                ) {
                    return Vec::new();
                }
                axes_of(self, n, "matrix axis")
            })
            .unwrap_or_default();
        if !block.iter().any(|n| n.name == "axes") {
            self.error(
                node.pos,
                "a matrix needs `axes { axis { name '…'; values '…', '…' } }`",
            );
        }
        let excludes = block
            .iter()
            .find(|n| n.name == "excludes")
            .map(|n| {
                self.empty_section(n, "add an exclude { axis { … } }, or remove the section");
                n.block
                    .iter()
                    .flatten()
                    .map(|e| {
                        self.empty_section(e, "add the axis values it leaves out");
                        axes_of(self, e, "excluded axis")
                    })
                    .collect()
            })
            .unwrap_or_default();
        let stages = match block.iter().find(|n| n.name == "stages") {
            Some(s) => {
                self.in_parallel = true;
                let stages = self.stages(s);
                self.in_parallel = false;
                stages
            }
            None => {
                self.error(node.pos, "a matrix needs `stages { … }`");
                Vec::new()
            }
        };
        for n in block {
            if ![
                "axes",
                "excludes",
                "stages",
                "agent",
                "when",
                "post",
                "environment",
                "options",
            ]
            .contains(&n.name.as_str())
            {
                self.error(n.pos, format!("unknown section `{}` in matrix", n.name));
            }
        }
        Some(StageBody::Matrix {
            axes,
            excludes,
            stages,
        })
    }

    pub(super) fn steps(&mut self, node: &Node) -> Vec<Step> {
        node.block
            .iter()
            .flatten()
            .filter_map(|n| self.step(n))
            .collect()
    }

    pub(super) fn step(&mut self, node: &Node) -> Option<Step> {
        if node.name == "script" {
            let Some(body) = &node.script else {
                self.error(node.pos, "`script` takes a block of Groovy: script { … }");
                return None;
            };
            self.check_script(body);
            return Some(Step {
                name: node.name.clone(),
                pos: node.pos,
                args: Default::default(),
                steps: Vec::new(),
                script: Some(Script(body.clone())),
            });
        }
        // `parallel(first: { … }, "second one": { … }, failFast: true)` as a step: the
        // closures are Groovy, so the whole call runs as a one-statement script.
        if node.name == "parallel" && node.block.is_none() && !node.args.is_empty() {
            let Some(call) = groovy_call(node) else {
                self.error(node.pos, "the `parallel` step takes named closures: parallel(first: { … }, second: { … })");
                return None;
            };
            let body = std::sync::Arc::new(vec![crate::groovy::ast::Stmt {
                kind: crate::groovy::ast::StmtKind::Expr(call),
                pos: node.pos,
            }]);
            self.check_script(&body);
            return Some(Step {
                name: "script".into(),
                pos: node.pos,
                args: Default::default(),
                steps: Vec::new(),
                script: Some(Script(body)),
            });
        }
        if node.name == "step" {
            return self.class_step(node);
        }
        if node.name == "publishHTML" {
            return self.publish_html(node);
        }
        if node.assign.is_some() {
            self.error(
                node.pos,
                format!(
                    "`{} = …` is a Groovy assignment; use `environment` or `withEnv`",
                    node.name
                ),
            );
            return None;
        }
        let Some((_, takes_block)) = STEPS.iter().find(|(name, _)| *name == node.name) else {
            let hint = super::super::suggest(&node.name)
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            self.error(node.pos, format!("unknown step `{}`{hint}", node.name));
            return None;
        };
        self.check_signature(node);
        for v in node
            .args
            .positional
            .iter()
            .chain(node.args.named.iter().map(|(_, v)| v))
        {
            self.check_value(v);
        }
        if *takes_block && node.block.is_none() {
            self.error(
                node.pos,
                format!("`{}` wraps steps: {}(…) {{ … }}", node.name, node.name),
            );
        }
        if !*takes_block && node.block.is_some() {
            self.error(node.pos, format!("`{}` takes no block", node.name));
        }
        let needs_argument = !matches!(
            node.name.as_str(),
            "deleteDir" | "catchError" | "warnError" | "checkout" | "milestone" | "timestamps"
        );
        if needs_argument && node.args.is_empty() {
            self.error(node.pos, format!("`{}` needs arguments", node.name));
        } else if node.name == "deploy"
            && let Err(errors) = super::super::deploy::parse(&node.args, node.pos)
        {
            for (pos, message) in errors {
                self.error(pos, message);
            }
        }
        let steps = if *takes_block {
            self.steps(node)
        } else {
            Vec::new()
        };
        Some(Step {
            name: node.name.clone(),
            pos: node.pos,
            args: node.args.clone(),
            steps,
            script: None,
        })
    }
}

/// A declarative value as a Groovy expression.
pub(super) fn groovy_of(v: &super::super::syntax::Value) -> Option<crate::groovy::ast::Expr> {
    use super::super::syntax::Value;
    use crate::groovy::ast::{Expr, ExprKind};
    let pos = v.pos();
    let kind = match v {
        Value::Expr(e, _) => return Some((**e).clone()),
        Value::GStr(parts, _) => {
            let mut diags = Vec::new();
            let parts = crate::groovy::parse::gstring(parts, pos, &mut diags)?;
            ExprKind::GStr(parts)
        }
        Value::Str(s, _) | Value::Word(s, _) => ExprKind::Str(s.clone()),
        Value::Bool(b, _) => ExprKind::Bool(*b),
        Value::Num(n, _) if n.fract() == 0.0 => ExprKind::Int(*n as i64),
        Value::Num(n, _) => ExprKind::Float(*n),
        _ => return None,
    };
    Some(Expr { kind, pos })
}

/// A declarative step call as a Groovy call expression (its closures are Groovy already).
fn groovy_call(node: &Node) -> Option<crate::groovy::ast::Expr> {
    use super::super::syntax::Value;
    use crate::groovy::ast::{Arg, Expr, ExprKind};
    fn expr(v: &Value) -> Option<Expr> {
        let pos = v.pos();
        let kind = match v {
            Value::Expr(e, _) => return Some((**e).clone()),
            Value::Str(s, _) | Value::Word(s, _) => ExprKind::Str(s.clone()),
            Value::Bool(b, _) => ExprKind::Bool(*b),
            Value::Num(n, _) if n.fract() == 0.0 => ExprKind::Int(*n as i64),
            Value::Num(n, _) => ExprKind::Float(*n),
            _ => return None,
        };
        Some(Expr { kind, pos })
    }
    let mut args = Vec::new();
    for v in &node.args.positional {
        args.push(Arg {
            name: None,
            value: expr(v)?,
        });
    }
    for (k, v) in &node.args.named {
        args.push(Arg {
            name: Some(k.clone()),
            value: expr(v)?,
        });
    }
    Some(Expr {
        kind: ExprKind::Call {
            target: None,
            name: node.name.clone(),
            args,
            safe: false,
            spread: false,
        },
        pos: node.pos,
    })
}
