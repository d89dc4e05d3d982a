//! From generic statements to the typed [`Pipeline`], checking what Jenkins would refuse and
//! what Sluice does not run (`script {}`, `when { expression {} }`, Groovy outside
//! `pipeline {}`, unknown sections, options and steps), plus semantic rules: unique stage
//! names, non-empty `stages`, `steps` alone or `parallel` alone, matrix axes with values,
//! valid environment names.

use std::collections::HashSet;

use super::diagnostics::{Diagnostic, Pos};
use super::lexer::Part;
use super::model::*;
use super::syntax::{Node, Value};

/// Steps Sluice runs, and whether each takes a block of nested steps.
const STEPS: &[(&str, bool)] = &[
    ("sh", false),
    ("echo", false),
    ("error", false),
    ("sleep", false),
    ("dir", true),
    ("withEnv", true),
    ("withCredentials", true),
    ("timeout", true),
    ("retry", true),
    ("catchError", true),
    ("warnError", true),
    ("unstable", false),
    ("archiveArtifacts", false),
    ("stash", false),
    ("unstash", false),
    ("junit", false),
    ("writeFile", false),
    ("deleteDir", false),
    ("checkout", false),
    ("input", false),
    ("deploy", false),
];

/// Jenkins options that change nothing here: accepted with a warning.
const HARMLESS_OPTIONS: &[&str] = &[
    "ansiColor",
    "quietPeriod",
    "preserveStashes",
    "parallelsAlwaysFailFast",
    "durabilityHint",
    "newContainerPerStage",
    "checkoutToSubdirectory",
];

pub(crate) struct Analyzer<'d> {
    pub diags: &'d mut Vec<Diagnostic>,
    stage_names: HashSet<String>,
}

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::Str(s, _) => Some(s.clone()),
        Value::GStr(parts, _) => Some(
            parts
                .iter()
                .map(|p| match p {
                    Part::Text(t) => t.clone(),
                    Part::Var(v) => format!("${{{v}}}"),
                })
                .collect(),
        ),
        Value::Word(w, _) => Some(w.clone()),
        Value::Num(n, _) => Some(n.to_string()),
        Value::Bool(b, _) => Some(b.to_string()),
        _ => None,
    }
}

fn template_of(value: &Value) -> Option<Template> {
    match value {
        Value::Str(s, _) => Some(Template(vec![Part::Text(s.clone())])),
        Value::GStr(parts, _) => Some(Template(parts.clone())),
        Value::Num(_, _) | Value::Bool(_, _) => {
            text_of(value).map(|t| Template(vec![Part::Text(t)]))
        }
        _ => None,
    }
}

fn env_name_ok(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl<'d> Analyzer<'d> {
    pub fn new(diags: &'d mut Vec<Diagnostic>) -> Self {
        Analyzer {
            diags,
            stage_names: HashSet::new(),
        }
    }

    fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.diags.push(Diagnostic::error(pos, message));
    }

    /// The top level: exactly one `pipeline { }` and nothing else.
    pub fn file(&mut self, nodes: &[Node]) -> Option<Pipeline> {
        let mut pipeline = None;
        for node in nodes {
            if node.name == "pipeline" && node.block.is_some() && pipeline.is_none() {
                pipeline = Some(node);
            } else if node.name == "pipeline" {
                self.error(node.pos, "only one `pipeline { … }` block is allowed");
            } else {
                self.error(
                    node.pos,
                    format!(
                        "`{}` outside `pipeline {{ … }}` is Groovy, which Sluice does not run",
                        node.name
                    ),
                );
            }
        }
        let Some(node) = pipeline else {
            let pos = nodes.first().map_or(Pos { line: 1, col: 1 }, |n| n.pos);
            self.error(
                pos,
                "no `pipeline { … }` block: Sluice runs declarative pipelines",
            );
            return None;
        };
        self.pipeline(node)
    }

    fn pipeline(&mut self, node: &Node) -> Option<Pipeline> {
        let mut agent = None;
        let mut p = Pipeline {
            agent: Agent::Any,
            environment: Vec::new(),
            options: Vec::new(),
            parameters: Vec::new(),
            triggers: Vec::new(),
            stages: Vec::new(),
            post: Post::default(),
        };
        let mut seen_stages = false;
        let mut seen = HashSet::new();
        for section in node.block.iter().flatten() {
            if !seen.insert(section.name.clone()) {
                self.error(
                    section.pos,
                    format!("`{}` appears twice in `pipeline`", section.name),
                );
                continue;
            }
            match section.name.as_str() {
                "agent" => agent = self.agent(section),
                "environment" => p.environment = self.environment(section),
                "options" => p.options = self.options(section),
                "parameters" => p.parameters = self.parameters(section),
                "triggers" => p.triggers = self.triggers(section),
                "tools" => self.diags.push(Diagnostic::warning(
                    section.pos,
                    "`tools` is ignored: install tools in the agent image",
                )),
                "stages" => {
                    seen_stages = true;
                    p.stages = self.stages(section);
                }
                "post" => p.post = self.post(section),
                other => self.error(
                    section.pos,
                    format!("unknown section `{other}` in `pipeline`"),
                ),
            }
        }
        if agent.is_none() && !seen.contains("agent") {
            self.error(
                node.pos,
                "`pipeline` needs an `agent` (for example `agent any`)",
            );
        }
        if !seen_stages {
            self.error(node.pos, "`pipeline` needs a `stages { … }` block");
        }
        p.agent = agent.unwrap_or(Agent::Any);
        Some(p)
    }

    fn agent(&mut self, node: &Node) -> Option<Agent> {
        if let Some(Value::Word(word, pos)) = node.args.positional.first() {
            return match word.as_str() {
                "any" => Some(Agent::Any),
                "none" => Some(Agent::None),
                _ => {
                    self.error(
                        *pos,
                        format!(
                            "unknown agent `{word}`: use any, none, label, docker or kubernetes"
                        ),
                    );
                    None
                }
            };
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
        match kind.name.as_str() {
            "label" => named("label").map(|label| Agent::Label { label }),
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

    fn environment(&mut self, node: &Node) -> Vec<EnvVar> {
        let mut vars = Vec::new();
        for entry in node.block.iter().flatten() {
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
                        Some(id) => EnvValue::Credentials { id },
                        None => {
                            self.error(*pos, "`credentials` needs the secret's name, e.g. credentials('DEPLOY_TOKEN')");
                            continue;
                        }
                    }
                }
                other => match template_of(other) {
                    Some(value) => EnvValue::Text { value },
                    None => {
                        self.error(
                            other.pos(),
                            "environment values are strings or credentials('id')",
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

    fn number(&mut self, value: Option<&Value>, what: &str, pos: Pos) -> Option<u64> {
        match value {
            Some(Value::Num(n, _)) if *n >= 0.0 && n.fract() == 0.0 => Some(*n as u64),
            Some(Value::Str(s, p)) => s.parse().ok().or_else(|| {
                self.error(*p, format!("{what} must be a whole number"));
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

    fn options(&mut self, node: &Node) -> Vec<PipelineOption> {
        let mut options = Vec::new();
        for opt in node.block.iter().flatten() {
            let parsed = match opt.name.as_str() {
                "timeout" => self
                    .timeout_seconds(opt)
                    .map(|seconds| PipelineOption::Timeout { seconds }),
                "retry" => {
                    let n = self.number(
                        opt.args.positional.first().or(opt.args.named("count")),
                        "retry count",
                        opt.pos,
                    );
                    n.map(|count| PipelineOption::Retry {
                        count: count.min(100) as u32,
                    })
                }
                "disableConcurrentBuilds" => Some(PipelineOption::DisableConcurrentBuilds),
                "skipDefaultCheckout" => Some(PipelineOption::SkipDefaultCheckout),
                "timestamps" => Some(PipelineOption::Timestamps),
                "buildDiscarder" => match opt.args.positional.first() {
                    Some(Value::Call { name, args, pos }) if name == "logRotator" => {
                        let keep = args.named("numToKeepStr").or(args.named("numToKeep"));
                        self.number(keep, "numToKeepStr", *pos)
                            .map(|k| PipelineOption::BuildDiscarder { keep: k as u32 })
                    }
                    _ => {
                        self.error(opt.pos, "use buildDiscarder(logRotator(numToKeepStr: 'N'))");
                        None
                    }
                },
                name if HARMLESS_OPTIONS.contains(&name) => {
                    self.diags.push(Diagnostic::warning(
                        opt.pos,
                        format!("option `{name}` has no effect in Sluice"),
                    ));
                    None
                }
                other => {
                    self.error(opt.pos, format!("unknown option `{other}`"));
                    None
                }
            };
            options.extend(parsed);
        }
        options
    }

    fn timeout_seconds(&mut self, node: &Node) -> Option<u64> {
        let time = self.number(
            node.args.named("time").or(node.args.positional.first()),
            "timeout `time`",
            node.pos,
        )?;
        let unit = node
            .args
            .named("unit")
            .and_then(text_of)
            .unwrap_or_else(|| "MINUTES".into());
        let factor = match unit.as_str() {
            "SECONDS" => 1,
            "MINUTES" => 60,
            "HOURS" => 3600,
            "DAYS" => 86_400,
            other => {
                self.error(
                    node.pos,
                    format!("unknown timeout unit `{other}`: SECONDS, MINUTES, HOURS or DAYS"),
                );
                return None;
            }
        };
        Some(time * factor)
    }

    fn parameters(&mut self, node: &Node) -> Vec<Parameter> {
        let mut params = Vec::new();
        let mut names = HashSet::new();
        for p in node.block.iter().flatten() {
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
                            "unknown parameter type `{other}`: string, booleanParam, choice or text"
                        ),
                    );
                    continue;
                }
            };
            params.push(param);
        }
        params
    }

    fn triggers(&mut self, node: &Node) -> Vec<String> {
        let mut crons = Vec::new();
        for t in node.block.iter().flatten() {
            match (t.name.as_str(), t.args.positional.first().and_then(text_of)) {
                ("cron", Some(spec)) => match super::cron::Schedule::parse(&spec, "lint") {
                    Ok(_) => crons.push(spec),
                    Err(e) => {
                        let pos = t.args.positional.first().map_or(t.pos, |v| v.pos());
                        self.error(pos, format!("cron('{spec}'): {e}"));
                    }
                },
                ("cron", None) => {
                    self.error(t.pos, "cron needs a schedule, e.g. cron('H 4 * * 1-5')")
                }
                (other, _) => self.error(
                    t.pos,
                    format!("unknown trigger `{other}`: Sluice supports cron"),
                ),
            }
        }
        crons
    }

    fn stages(&mut self, node: &Node) -> Vec<Stage> {
        let children = node.block.as_deref().unwrap_or_default();
        if children.is_empty() {
            self.error(
                node.pos,
                format!("`{}` is empty: add at least one stage", node.name),
            );
        }
        let mut stages = Vec::new();
        for child in children {
            if child.name != "stage" {
                self.error(
                    child.pos,
                    format!(
                        "only `stage` may appear in `{}`, found `{}`",
                        node.name, child.name
                    ),
                );
                continue;
            }
            stages.extend(self.stage(child));
        }
        stages
    }

    fn stage(&mut self, node: &Node) -> Option<Stage> {
        let Some(name) = node.args.positional.first().and_then(text_of) else {
            self.error(node.pos, "a stage needs a name: stage('Build') { … }");
            return None;
        };
        if !self.stage_names.insert(name.clone()) {
            self.error(node.pos, format!("duplicate stage name `{name}`"));
        }
        let mut stage = Stage {
            name,
            pos: node.pos,
            agent: None,
            environment: Vec::new(),
            options: Vec::new(),
            when: None,
            when_before_agent: false,
            input: None,
            body: StageBody::Steps { steps: Vec::new() },
            post: Post::default(),
        };
        let mut bodies = Vec::new();
        for section in node.block.iter().flatten() {
            match section.name.as_str() {
                "agent" => stage.agent = self.agent(section),
                "environment" => stage.environment = self.environment(section),
                "options" => stage.options = self.options(section),
                "when" => {
                    stage.when_before_agent = section.block.iter().flatten().any(|n| {
                        n.name == "beforeAgent"
                            && matches!(n.args.positional.first(), Some(Value::Bool(true, _)))
                    });
                    stage.when = self.when_block(section);
                }
                "input" => stage.input = self.input(section),
                "post" => stage.post = self.post(section),
                "steps" => bodies.push((
                    section.pos,
                    StageBody::Steps {
                        steps: self.steps(section),
                    },
                )),
                "parallel" => bodies.push((
                    section.pos,
                    StageBody::Parallel {
                        stages: self.stages(section),
                    },
                )),
                "stages" => bodies.push((
                    section.pos,
                    StageBody::Stages {
                        stages: self.stages(section),
                    },
                )),
                "matrix" => bodies.extend(self.matrix(section).map(|m| (section.pos, m))),
                other => self.error(
                    section.pos,
                    format!("unknown section `{other}` in stage `{}`", stage.name),
                ),
            }
        }
        match bodies.len() {
            0 => self.error(
                node.pos,
                format!(
                    "stage `{}` needs one of steps, parallel, stages or matrix",
                    stage.name
                ),
            ),
            1 => {}
            _ => self.error(
                bodies[1].0,
                format!(
                    "stage `{}` has more than one of steps, parallel, stages and matrix",
                    stage.name
                ),
            ),
        }
        if let Some((_, body)) = bodies.into_iter().next() {
            stage.body = body;
        }
        Some(stage)
    }

    fn when_block(&mut self, node: &Node) -> Option<When> {
        let conditions: Vec<When> = node
            .block
            .iter()
            .flatten()
            .filter(|n| n.name != "beforeAgent")
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

    fn when(&mut self, node: &Node) -> Option<When> {
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
            "changeRequest" => Some(When::ChangeRequest),
            "not" => nested(self).into_iter().next().map(|c| When::Not { condition: Box::new(c) }),
            "allOf" => Some(When::AllOf { conditions: nested(self) }),
            "anyOf" => Some(When::AnyOf { conditions: nested(self) }),
            "expression" => {
                self.error(node.pos, "`when { expression { … } }` runs Groovy, which Sluice does not: use branch, tag, environment, changeRequest, not, allOf or anyOf");
                None
            }
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

    fn input(&mut self, node: &Node) -> Option<Input> {
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

    fn post(&mut self, node: &Node) -> Post {
        let mut post = Post::default();
        for cond in node.block.iter().flatten() {
            let condition = match cond.name.as_str() {
                "always" => PostCondition::Always,
                "success" => PostCondition::Success,
                "failure" => PostCondition::Failure,
                "unstable" => PostCondition::Unstable,
                "aborted" => PostCondition::Aborted,
                "changed" => PostCondition::Changed,
                "fixed" => PostCondition::Fixed,
                "regression" => PostCondition::Regression,
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

    fn matrix(&mut self, node: &Node) -> Option<StageBody> {
        let block = node.block.as_deref().unwrap_or_default();
        let axes_of = |a: &mut Self, n: &Node, what: &str| -> Vec<Axis> {
            let mut axes = Vec::new();
            for axis in n.block.iter().flatten().filter(|x| x.name == "axis") {
                let inner = axis.block.as_deref().unwrap_or_default();
                let name = inner
                    .iter()
                    .find(|x| x.name == "name")
                    .and_then(|x| x.args.positional.first())
                    .and_then(text_of);
                let values: Vec<String> = inner
                    .iter()
                    .find(|x| x.name == "values")
                    .map(|x| x.args.positional.iter().filter_map(text_of).collect())
                    .unwrap_or_default();
                match name {
                    Some(name) if !values.is_empty() => axes.push(Axis { name, values }),
                    Some(name) => a.error(axis.pos, format!("{what} `{name}` has no values")),
                    None => a.error(axis.pos, format!("{what} needs a name")),
                }
            }
            axes
        };
        let axes = block
            .iter()
            .find(|n| n.name == "axes")
            .map(|n| axes_of(self, n, "matrix axis"))
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
                n.block
                    .iter()
                    .flatten()
                    .map(|e| axes_of(self, e, "excluded axis"))
                    .collect()
            })
            .unwrap_or_default();
        let stages = match block.iter().find(|n| n.name == "stages") {
            Some(s) => self.stages(s),
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

    fn steps(&mut self, node: &Node) -> Vec<Step> {
        node.block
            .iter()
            .flatten()
            .filter_map(|n| self.step(n))
            .collect()
    }

    fn step(&mut self, node: &Node) -> Option<Step> {
        if node.name == "script" {
            self.error(
                node.pos,
                "`script { … }` runs Groovy, which Sluice does not: use steps such as sh instead",
            );
            return None;
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
            self.error(node.pos, format!("unknown step `{}`", node.name));
            return None;
        };
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
            "deleteDir" | "catchError" | "warnError" | "checkout"
        );
        if needs_argument && node.args.is_empty() {
            self.error(node.pos, format!("`{}` needs arguments", node.name));
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
        })
    }
}
