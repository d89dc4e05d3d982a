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
pub(super) const STEPS: &[(&str, bool)] = &[
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
    // `archive` is the old name of `archiveArtifacts`; `milestone` orders concurrent runs in
    // Jenkins, which `disableConcurrentBuilds` does here (logged); `ansiColor` and
    // `timestamps` wrap steps whose log keeps colours and has timestamps already.
    ("archive", false),
    ("milestone", false),
    ("ansiColor", true),
    ("timestamps", true),
    // `lock('staging') { … }`: one run of the org at a time holds the resource.
    ("lock", true),
    // `publishHTML(target: [reportDir:, reportFiles:, reportName:])`: archived as artifacts
    // under the report's name. `step([$class: …])` becomes `archiveArtifacts` or `junit`.
    ("publishHTML", false),
];

pub(crate) struct Analyzer<'d> {
    pub diags: &'d mut Vec<Diagnostic>,
    pub(super) stage_names: HashSet<String>,
    /// Names the file's Groovy defines so far: closures one `script` block assigns may be
    /// called from a later one.
    pub(super) groovy_names: HashSet<String>,
    /// Inside a `parallel` or `matrix`, where another one may not be nested.
    pub(super) in_parallel: bool,
}

/// Steps a Groovy `script` block may call: the declarative ones, and those that return a
/// value or take closures.
pub fn groovy_step(name: &str) -> bool {
    STEPS.iter().any(|(n, _)| *n == name) || matches!(name, "parallel" | "readFile" | "fileExists")
}

/// A step as `node` calls it, with no nested steps: a wrapper option, or a plugin step's
/// reshaped call.
pub(super) fn call_step(node: &Node) -> Step {
    Step {
        name: node.name.clone(),
        pos: node.pos,
        args: node.args.clone(),
        steps: Vec::new(),
        script: None,
    }
}

pub(super) fn text_of(value: &Value) -> Option<String> {
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

pub(super) fn template_of(value: &Value) -> Option<Template> {
    match value {
        Value::Str(s, _) => Some(Template(vec![Part::Text(s.clone())])),
        Value::GStr(parts, _) => Some(Template(parts.clone())),
        Value::Num(_, _) | Value::Bool(_, _) => {
            text_of(value).map(|t| Template(vec![Part::Text(t)]))
        }
        _ => None,
    }
}

pub(super) fn env_name_ok(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

mod options;
mod plugin_steps;
mod sections;
mod signatures;
mod stage_parts;

impl<'d> Analyzer<'d> {
    pub fn new(diags: &'d mut Vec<Diagnostic>) -> Self {
        Analyzer {
            diags,
            stage_names: HashSet::new(),
            groovy_names: HashSet::new(),
            in_parallel: false,
        }
    }

    /// Lint checks on a Groovy block: the sandbox's refusals and unknown calls.
    pub(super) fn check_script(&mut self, body: &[crate::groovy::ast::Stmt]) {
        let mut checker =
            crate::groovy::check::Checker::new(self.diags, &groovy_step, &mut self.groovy_names);
        checker.block(body);
    }

    /// Lint checks on the Groovy expressions inside a value.
    pub(super) fn check_value(&mut self, value: &Value) {
        match value {
            Value::Expr(e, _) => {
                let mut checker = crate::groovy::check::Checker::new(
                    self.diags,
                    &groovy_step,
                    &mut self.groovy_names,
                );
                checker.expr_root(e);
            }
            Value::List(items, _) => {
                for v in items {
                    self.check_value(v);
                }
            }
            Value::Map(entries, _) => {
                for (_, v) in entries {
                    self.check_value(v);
                }
            }
            Value::Call { args, .. } => {
                for v in args
                    .positional
                    .iter()
                    .chain(args.named.iter().map(|(_, v)| v))
                {
                    self.check_value(v);
                }
            }
            _ => {}
        }
    }

    pub(super) fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.diags.push(Diagnostic::error(pos, message));
    }

    /// Reports a section with nothing in it (Jenkins refuses them too); true when empty.
    pub(super) fn empty_section(&mut self, node: &Node, what: &str) -> bool {
        if node.block.as_ref().is_some_and(|b| !b.is_empty()) {
            return false;
        }
        self.error(node.pos, format!("`{}` is empty: {what}", node.name));
        true
    }

    /// The top level: exactly one `pipeline { }` and nothing else.
    pub fn file(&mut self, nodes: &[Node]) -> Option<Pipeline> {
        let mut pipeline = None;
        let mut prelude = Vec::new();
        // Methods first, wherever they are in the file: Groovy defines them before it runs
        // the script, so the pipeline and other methods may call them.
        for node in nodes
            .iter()
            .filter(|n| n.name == super::syntax::GROOVY_NODE)
        {
            for stmt in node.script.iter().flat_map(|s| s.iter()) {
                prelude.push(global(stmt.clone()));
            }
        }
        if !prelude.is_empty() {
            self.check_script(&prelude);
        }
        for node in nodes
            .iter()
            .filter(|n| n.name != super::syntax::GROOVY_NODE)
        {
            if node.name == "pipeline" && node.block.is_some() && pipeline.is_none() {
                pipeline = Some(node);
            } else if node.name == "pipeline" {
                self.error(node.pos, "only one `pipeline { … }` block is allowed");
            } else {
                self.error(
                    node.pos,
                    format!(
                        "`{}` outside `pipeline {{ … }}`: only method definitions and `def` variables may sit beside the pipeline (scripted pipelines are not run)",
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
        let mut p = self.pipeline(node)?;
        p.prelude = (!prelude.is_empty()).then(|| Script(std::sync::Arc::new(prelude)));
        Some(p)
    }

    pub(super) fn pipeline(&mut self, node: &Node) -> Option<Pipeline> {
        let mut agent = None;
        let mut p = Pipeline {
            agent: Agent::Any,
            environment: Vec::new(),
            options: Vec::new(),
            parameters: Vec::new(),
            triggers: Vec::new(),
            stages: Vec::new(),
            post: Post::default(),
            prelude: None,
            computed_cron: None,
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
                "options" => p.options = self.options(section, false),
                "parameters" => p.parameters = self.parameters(section),
                "triggers" => {
                    let (crons, computed) = self.triggers(section);
                    p.triggers = crons;
                    p.computed_cron = computed;
                }
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

    pub(super) fn stages(&mut self, node: &Node) -> Vec<Stage> {
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

    pub(super) fn stage(&mut self, node: &Node) -> Option<Stage> {
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
        let mut fail_fast = None;
        let mut seen = HashSet::new();
        for section in node.block.iter().flatten() {
            if !seen.insert(section.name.as_str()) {
                self.error(
                    section.pos,
                    format!("`{}` appears twice in stage `{}`", section.name, stage.name),
                );
                continue;
            }
            if matches!(section.name.as_str(), "parallel" | "matrix") && self.in_parallel {
                self.error(
                    section.pos,
                    format!(
                        "`{}` cannot be nested inside `parallel` or `matrix`: only one level of parallel stages is allowed",
                        section.name
                    ),
                );
                // Counted as the stage's body, so it is not also reported as missing one.
                bodies.push((section.pos, StageBody::Steps { steps: Vec::new() }));
                continue;
            }
            match section.name.as_str() {
                "agent" => stage.agent = self.agent(section),
                "environment" => stage.environment = self.environment(section),
                "options" => stage.options = self.options(section, true),
                "when" => {
                    stage.when_before_agent = section.block.iter().flatten().any(|n| {
                        n.name == "beforeAgent"
                            && matches!(n.args.positional.first(), Some(Value::Bool(true, _)))
                    });
                    stage.when = self.when_block(section);
                }
                "input" => stage.input = self.input(section),
                "post" => stage.post = self.post(section),
                "steps" => {
                    if section.block.as_ref().is_none_or(Vec::is_empty) {
                        self.error(
                            section.pos,
                            format!(
                                "`steps` of stage `{}` is empty: add at least one step",
                                stage.name
                            ),
                        );
                    }
                    bodies.push((
                        section.pos,
                        StageBody::Steps {
                            steps: self.steps(section),
                        },
                    ))
                }
                "parallel" => {
                    self.in_parallel = true;
                    let stages = self.stages(section);
                    self.in_parallel = false;
                    bodies.push((
                        section.pos,
                        StageBody::Parallel {
                            stages,
                            fail_fast: false,
                        },
                    ))
                }
                "failFast" => match section.args.positional.first() {
                    Some(Value::Bool(b, _)) => fail_fast = Some((section.pos, *b)),
                    _ => self.error(section.pos, "failFast takes true or false"),
                },
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
        if let Some((pos, _)) = fail_fast
            && !matches!(bodies.first(), Some((_, StageBody::Parallel { .. })))
        {
            self.error(pos, "`failFast` applies to a stage with `parallel`");
        }
        if let Some((_, mut body)) = bodies.into_iter().next() {
            if let (StageBody::Parallel { fail_fast: ff, .. }, Some((_, on))) =
                (&mut body, fail_fast)
            {
                *ff = on;
            }
            stage.body = body;
        }
        Some(stage)
    }
}

/// A top-level `def NAME = value` is the script's variable, which the pipeline's closures (and
/// so its `script` blocks) see: it goes into the shared binding.
fn global(stmt: crate::groovy::ast::Stmt) -> crate::groovy::ast::Stmt {
    use crate::groovy::ast::{Expr, ExprKind, Stmt, StmtKind};
    match stmt.kind {
        StmtKind::Def {
            names,
            value: Some(value),
        } if names.len() == 1 => Stmt {
            kind: StmtKind::Expr(Expr {
                kind: ExprKind::Assign {
                    target: Box::new(Expr {
                        kind: ExprKind::Var(names[0].clone()),
                        pos: stmt.pos,
                    }),
                    op: None,
                    value: Box::new(value),
                },
                pos: stmt.pos,
            }),
            pos: stmt.pos,
        },
        kind => Stmt {
            kind,
            pos: stmt.pos,
        },
    }
}
