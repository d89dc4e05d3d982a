//! The typed pipeline a Jenkinsfile describes, as the worker will run it.

use std::sync::Arc;

use serde::Serialize;

use super::diagnostics::Pos;
use super::lexer::Part;
use super::syntax::Args;
use crate::groovy::ast::{Expr, Stmt};

/// Groovy statements (`script { }`, `expression { }`), the same when they are the same block.
#[derive(Debug, Clone)]
pub struct Script(pub Arc<Vec<Stmt>>);

impl PartialEq for Script {
    fn eq(&self, other: &Script) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Script {}

impl Serialize for Script {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("groovy")
    }
}

/// A Groovy expression computing a value, the same when it is the same expression.
#[derive(Debug, Clone)]
pub struct Computed(pub Arc<Expr>);

impl PartialEq for Computed {
    fn eq(&self, other: &Computed) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Computed {}

impl Serialize for Computed {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("groovy")
    }
}

/// A string that may interpolate `${VAR}`, `${env.X}`, `${params.X}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Template(pub Vec<Part>);

impl Serialize for Part {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Part::Text(t) => s.serialize_str(t),
            Part::Var(v) => s.serialize_str(&format!("${{{v}}}")),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Agent {
    Any,
    None,
    Label { label: String },
    Docker { image: String },
    Kubernetes { yaml: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum EnvValue {
    Text {
        value: Template,
    },
    /// `credentials('id')`: the project secret `id`, masked in logs.
    Credentials {
        id: String,
    },
    /// A Groovy expression: `sh(script: 'git describe', returnStdout: true).trim()`.
    Computed {
        expr: Computed,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EnvVar {
    pub name: String,
    pub value: EnvValue,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum PipelineOption {
    Timeout {
        seconds: u64,
    },
    Retry {
        count: u32,
    },
    DisableConcurrentBuilds,
    SkipDefaultCheckout,
    Timestamps,
    BuildDiscarder {
        keep: u32,
    },
    /// The rest of `logRotator(…)`: runs finished more than `days` ago lose their log and
    /// artifacts; runs past the newest `artifact_keep`, or finished more than `artifact_days`
    /// ago, lose their artifacts.
    BuildRotation {
        days: Option<u32>,
        artifact_keep: Option<u32>,
        artifact_days: Option<u32>,
    },
    /// `logRotator(numToKeepStr: "${env.KEEP}")`: the count is computed when the run starts.
    ComputedBuildDiscarder {
        keep: Computed,
    },
    /// Every `parallel` stage stops its other branches at the first failure.
    ParallelsAlwaysFailFast,
    /// `skipStagesAfterUnstable()`: once the build is unstable, the stages after are skipped.
    SkipStagesAfterUnstable,
    /// `quietPeriod(n)`: a run started by a push or a schedule waits `seconds` before it may
    /// start, and pushes to the same ref meanwhile fold into it.
    QuietPeriod {
        seconds: u32,
    },
    /// `rateLimitBuilds(throttle: …)`: at most `count` runs start per period; with
    /// `user_boost`, runs a person started skip the line.
    RateLimit {
        count: u32,
        period_seconds: u64,
        user_boost: bool,
    },
    /// `checkoutToSubdirectory('dir')`: the checkout lands in that directory of the workspace.
    CheckoutToSubdirectory {
        dir: String,
    },
    /// Block steps used as options (`withCredentials([…])`, `ansiColor('xterm')`): they wrap
    /// the pipeline's or the stage's body, outermost first.
    Wrappers {
        steps: Vec<Step>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Parameter {
    String {
        name: String,
        default: String,
        description: String,
    },
    Boolean {
        name: String,
        default: bool,
        description: String,
    },
    Choice {
        name: String,
        choices: Vec<String>,
        description: String,
    },
    Text {
        name: String,
        default: String,
        description: String,
    },
    /// A secret given when the run starts: masked in the log, hidden in the API.
    Password {
        name: String,
        default: String,
        description: String,
    },
}

impl Parameter {
    pub fn name(&self) -> &str {
        match self {
            Parameter::String { name, .. }
            | Parameter::Boolean { name, .. }
            | Parameter::Choice { name, .. }
            | Parameter::Text { name, .. }
            | Parameter::Password { name, .. } => name,
        }
    }
}

/// How a `when` condition compares a value with its pattern (Jenkins' `comparator:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Comparator {
    Equals,
    Glob,
    Regexp,
}

impl Comparator {
    pub fn parse(text: &str) -> Option<Comparator> {
        match text {
            "EQUALS" => Some(Comparator::Equals),
            "GLOB" => Some(Comparator::Glob),
            "REGEXP" => Some(Comparator::Regexp),
            _ => None,
        }
    }
}

/// The attributes `changeRequest(…)` may compare.
pub const CHANGE_ATTRIBUTES: &[&str] = &[
    "id",
    "target",
    "branch",
    "fork",
    "url",
    "title",
    "author",
    "authorDisplayName",
    "authorEmail",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum When {
    Branch {
        pattern: String,
    },
    Tag {
        pattern: String,
    },
    Environment {
        name: String,
        value: String,
    },
    /// `changelog '.*\\[deploy\\].*'`: the built commit's message matches the regular
    /// expression (anywhere in the message, as Jenkins matches each changelog entry).
    Changelog {
        pattern: String,
    },
    /// `changeset 'src/**'`: a file the built commit changed matches the glob.
    Changeset {
        pattern: String,
        case_sensitive: bool,
    },
    /// `changeRequest()`: a pull or merge request build; with attributes
    /// (`changeRequest target: 'main'`), only when every one matches.
    ChangeRequest {
        attributes: Vec<(String, String)>,
        comparator: Comparator,
    },
    /// `expression { … }`: Groovy, true when its value is.
    Expression {
        script: Script,
    },
    /// `buildingTag()`: a tag build.
    BuildingTag,
    /// `equals expected: x, actual: y`: both sides are values or Groovy expressions.
    Equals {
        expected: Computed,
        actual: Computed,
    },
    /// `triggeredBy 'TimerTrigger'`: a Jenkins cause, mapped from what started the run.
    TriggeredBy {
        cause: String,
    },
    /// `isRestartedRun()`: Sluice has no restart from a stage, so never.
    IsRestartedRun,
    Not {
        condition: Box<When>,
    },
    AllOf {
        conditions: Vec<When>,
    },
    AnyOf {
        conditions: Vec<When>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Input {
    pub message: String,
    pub ok: Option<String>,
    /// Comma-separated user emails or roles allowed to answer; None = developers and above.
    pub submitter: Option<String>,
    pub parameters: Vec<Parameter>,
}

/// A step with its arguments as written and, for wrappers (`dir`, `retry`…), nested steps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Step {
    pub name: String,
    #[serde(skip)]
    pub pos: Pos,
    #[serde(skip)]
    pub args: Args,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    /// The statements of a `script { }` step.
    #[serde(skip)]
    pub script: Option<Script>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PostCondition {
    Always,
    Success,
    Failure,
    Unstable,
    Aborted,
    Changed,
    Fixed,
    Regression,
    /// Anything but success.
    Unsuccessful,
    /// Jenkins' NOT_BUILT result, which a Sluice run never has.
    NotBuilt,
    Cleanup,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Post {
    pub conditions: Vec<(PostCondition, Vec<Step>)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Axis {
    pub name: String,
    pub values: Vec<String>,
    /// `notValues` in an `exclude`: the cells whose value is *not* one of `values`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub negated: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum StageBody {
    Steps {
        steps: Vec<Step>,
    },
    Parallel {
        stages: Vec<Stage>,
        /// `failFast true` (or `parallelsAlwaysFailFast()`): the first failing branch stops
        /// the others.
        fail_fast: bool,
    },
    Stages {
        stages: Vec<Stage>,
    },
    Matrix {
        axes: Vec<Axis>,
        excludes: Vec<Vec<Axis>>,
        stages: Vec<Stage>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stage {
    pub name: String,
    #[serde(skip)]
    pub pos: Pos,
    pub agent: Option<Agent>,
    pub environment: Vec<EnvVar>,
    pub options: Vec<PipelineOption>,
    pub when: Option<When>,
    pub when_before_agent: bool,
    pub input: Option<Input>,
    pub body: StageBody,
    pub post: Post,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Pipeline {
    pub agent: Agent,
    pub environment: Vec<EnvVar>,
    pub options: Vec<PipelineOption>,
    pub parameters: Vec<Parameter>,
    /// Cron specs with Jenkins' `H`.
    pub triggers: Vec<String>,
    /// A cron spec computed when the run starts (`cron(env.BRANCH_NAME == 'main' ? 'H 4 * * *'
    /// : '')`, `cron("${SCHEDULE}")`); an empty result means no schedule.
    pub computed_cron: Option<Computed>,
    pub stages: Vec<Stage>,
    pub post: Post,
    /// The Groovy outside `pipeline { }` (method definitions, variables), run before the
    /// first stage in the binding every `script` block shares.
    pub prelude: Option<Script>,
}
