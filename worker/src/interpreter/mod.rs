//! The Jenkins interpreter: one walk of a run's Jenkinsfile for every executor, driving an
//! [`Agent`] where the steps run (a directory on the worker's host with the local agents; a
//! Pod in the tenant's namespace with the Kubernetes ones).
//!
//! It starts the attempt's agent, checks out the commit into its workspace (straight into a
//! host directory, else cloned here and streamed in), refuses a Jenkinsfile that does not
//! lint (or that the agents cannot run) before any step, records what the file declares,
//! checks the parameters, then walks the pipeline with Jenkins' semantics: stages in order,
//! `parallel` branches and `matrix` cells at once, `when`, `input` gates, `timeout` and
//! `retry` at pipeline, stage and step level, `catchError`/`warnError`/`unstable`, and `post`
//! conditions against the build (or stage) result.

mod conditions;
mod deploy;
pub mod junit;
mod plugin_steps;
mod script;
mod steps;
mod values;
mod walk;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, Mutex};

use sluice_core::logs::Origin;
use sluice_core::pipeline::model::{Pipeline, PipelineOption};
use sluice_core::store::artifacts::TestSummary;
use sluice_core::store::execution::{Declared, RateLimit};
use sluice_core::store::params;
use tokio_util::sync::CancellationToken;

use crate::agent::{Agent, Agents, WORKSPACE, tar_stream};
use crate::checkout::{CheckoutError, checkout, head_commit};
use crate::executor::{Executor, Outcome, RunContext, RunEvents};
use sluice_core::store::changes::{ChangeRequest, RefType};

/// Runs pipelines on the agents `agents` starts, one per attempt.
#[derive(Clone)]
pub struct JenkinsExecutor {
    agents: Arc<dyn Agents>,
}

impl JenkinsExecutor {
    pub fn new(agents: Arc<dyn Agents>) -> JenkinsExecutor {
        JenkinsExecutor { agents }
    }
}

/// A build or stage result, worst last (Jenkins: SUCCESS < UNSTABLE < FAILURE < ABORTED).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Res {
    Success,
    Unstable,
    Failure,
    Aborted,
}

impl Res {
    pub(crate) fn parse(word: &str) -> Option<Res> {
        match word.to_ascii_uppercase().as_str() {
            "SUCCESS" => Some(Res::Success),
            "UNSTABLE" => Some(Res::Unstable),
            "FAILURE" => Some(Res::Failure),
            "ABORTED" => Some(Res::Aborted),
            _ => None,
        }
    }

    /// From a run status (the previous run's).
    pub(crate) fn of_status(status: &str) -> Option<Res> {
        match status {
            "succeeded" => Some(Res::Success),
            "unstable" => Some(Res::Unstable),
            "failed" => Some(Res::Failure),
            "cancelled" => Some(Res::Aborted),
            _ => None,
        }
    }

    pub(crate) fn stage_word(self) -> &'static str {
        match self {
            Res::Success => "succeeded",
            Res::Unstable => "unstable",
            Res::Failure => "failed",
            Res::Aborted => "cancelled",
        }
    }
}

/// Why steps stopped early: a failure (an error, a failing script, a timeout) or an abort
/// (cancelled, a gate rejected).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stop {
    pub res: Res,
    pub reason: String,
}

impl Stop {
    pub(crate) fn failure(reason: impl Into<String>) -> Stop {
        Stop {
            res: Res::Failure,
            reason: reason.into(),
        }
    }

    pub(crate) fn aborted(reason: impl Into<String>) -> Stop {
        Stop {
            res: Res::Aborted,
            reason: reason.into(),
        }
    }
}

pub(crate) type Flow = Result<(), Stop>;

pub(crate) type Env = BTreeMap<String, String>;

/// What the whole walk shares.
pub(crate) struct Runner<'a> {
    pub ctx: &'a RunContext,
    /// Where the steps run.
    pub agent: &'a dyn Agent,
    pub events: &'a dyn RunEvents,
    pub branch: String,
    pub tag: Option<String>,
    /// The pull or merge request a change-request run builds.
    pub change: Option<ChangeRequest>,
    /// The built commit's message and the files it changed (`when { changelog, changeset }`).
    pub commit_message: String,
    pub changed_files: Vec<String>,
    /// The run builds the project's default branch: its Jenkinsfile's declarations count.
    pub on_default_branch: bool,
    pub params: values::Params,
    /// The build result so far (`catchError`, `unstable`, failing tests raise it).
    pub build: Mutex<Res>,
    /// Why the build result was raised without stopping (for the run's reason).
    pub notes: Mutex<Vec<String>>,
    pub tests: tokio::sync::Mutex<TestSummary>,
    pub gates: AtomicU32,
    /// Worker-side: stashes by name, and files taken from the agent for a step.
    pub stashes: PathBuf,
    pub scratch_root: PathBuf,
    pub scratch_seq: AtomicU32,
    /// Who approved the run's gates so far (emails): protected environments' deployers.
    pub approvers: Mutex<Vec<String>>,
    /// Variables steps export to the steps after them (`deploy`'s `APP_URL`, and what
    /// Groovy assigns to `env.X`).
    pub exports: Mutex<Env>,
    /// Parameters declared boolean (`params.X` is then a Boolean in Groovy).
    pub booleans: std::collections::HashSet<String>,
    pub started: std::time::Instant,
    /// What Groovy set as `currentBuild.displayName` and `.description`.
    pub shown: Mutex<Shown>,
    /// Held while the run waits at a gate: one gate at a time.
    pub gate_turn: tokio::sync::Mutex<()>,
    /// `options { parallelsAlwaysFailFast() }`.
    pub fail_fast_all: bool,
    /// `options { skipStagesAfterUnstable() }`.
    pub skip_after_unstable: bool,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Shown {
    pub display_name: Option<String>,
    pub description: Option<String>,
}

impl Runner<'_> {
    /// A computed `cron(…)` or `numToKeepStr`, evaluated now that the run's environment is
    /// known, as Jenkins evaluates them when the Jenkinsfile runs; recorded with the rest of
    /// what the Jenkinsfile declares. A value that does not work is logged and left out.
    async fn declare_computed(&self, pipeline: &Pipeline, scope: &Scope) {
        let keep = pipeline.options.iter().find_map(|o| match o {
            PipelineOption::ComputedBuildDiscarder { keep } => Some(keep),
            _ => None,
        });
        if (pipeline.computed_cron.is_none() && keep.is_none()) || !self.on_default_branch {
            return;
        }
        let here = Origin::default();
        let mut declared = declared(pipeline);
        if let Some(expr) = &pipeline.computed_cron {
            match self.computed(&expr.0, scope).await {
                Ok(spec) if spec.trim().is_empty() => {
                    self.events.log(
                        &here,
                        "[sluice] cron trigger: empty for this run, no schedule",
                    );
                }
                Ok(spec) => {
                    match sluice_core::pipeline::cron::Schedule::parse(spec.trim(), "check") {
                        Ok(_) => {
                            self.events
                                .log(&here, &format!("[sluice] cron trigger: {}", spec.trim()));
                            let mut lines: Vec<String> = pipeline.triggers.clone();
                            lines.push(spec.trim().to_owned());
                            declared.cron = Some(lines.join("\n"));
                        }
                        Err(err) => self.events.log_error(
                            &here,
                            &format!("[sluice] cron('{spec}') is left out: {err}"),
                        ),
                    }
                }
                Err(stop) => self.events.log_error(
                    &here,
                    &format!("[sluice] the cron trigger is left out: {}", stop.reason),
                ),
            }
        }
        if let Some(keep) = keep {
            match self
                .computed(&keep.0, scope)
                .await
                .map(|k| k.trim().parse::<i32>())
            {
                Ok(Ok(n)) if n >= 0 => {
                    self.events
                        .log(&here, &format!("[sluice] buildDiscarder keeps {n} runs"));
                    declared.build_keep = Some(n);
                }
                Ok(_) => self.events.log_error(
                    &here,
                    "[sluice] numToKeepStr is not a whole number: no build discarder",
                ),
                Err(stop) => self.events.log_error(
                    &here,
                    &format!("[sluice] numToKeepStr is left out: {}", stop.reason),
                ),
            }
        }
        self.events.declared(declared).await;
    }

    pub(crate) fn raise(&self, res: Res, note: &str) {
        if let Ok(mut build) = self.build.lock() {
            *build = (*build).max(res);
        }
        if let Ok(mut notes) = self.notes.lock() {
            notes.push(note.to_owned());
        }
    }

    pub(crate) fn result(&self) -> Res {
        self.build.lock().map_or(Res::Failure, |b| *b)
    }
}

/// Where in the walk a step runs.
#[derive(Clone)]
pub(crate) struct Scope {
    pub env: Env,
    /// The directory steps run in, relative to the agent's root.
    pub dir: String,
    pub origin: Origin,
    /// The current stage's result (`catchError(stageResult:)` and friends raise it).
    pub stage_res: std::sync::Arc<Mutex<Res>>,
    pub cancel: CancellationToken,
    /// Inside a matrix cell: its name, which prefixes its stages' names in the log.
    pub cell: Option<String>,
}

impl Scope {
    pub(crate) fn raise_stage(&self, res: Res) {
        if let Ok(mut r) = self.stage_res.lock() {
            *r = (*r).max(res);
        }
    }

    pub(crate) fn stage_result(&self) -> Res {
        self.stage_res.lock().map_or(Res::Failure, |r| *r)
    }
}

#[async_trait::async_trait]
impl Executor for JenkinsExecutor {
    async fn execute(
        &self,
        ctx: &RunContext,
        events: &dyn RunEvents,
        cancel: CancellationToken,
    ) -> Outcome {
        let here = Origin::default();
        // A host directory is checked out into directly; anything else gets the tree cloned
        // here and streamed in once the agent runs (its image may come from the Jenkinsfile).
        let host_src = self.agents.checkout_dir(ctx);
        let src = host_src
            .clone()
            .unwrap_or_else(|| ctx.workspace.join("checkout"));
        let git_ref = ctx.run.git_ref.clone().unwrap_or_else(|| "main".into());
        events.log(
            &here,
            &format!(
                "[sluice] checking out {} at {git_ref}{}",
                ctx.project.repo_url,
                ctx.run
                    .commit_sha
                    .as_deref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default()
            ),
        );
        let is_tag = match checkout(
            &ctx.project.repo_url,
            &git_ref,
            ctx.run.commit_sha.as_deref(),
            &src,
            &ctx.repo_access,
            ctx.repo_credential.as_ref(),
            &cancel,
        )
        .await
        {
            Ok(done) => {
                if let Some(keys) = &done.learned_host_keys {
                    events.pin_host_keys(keys).await;
                }
                done.is_tag
            }
            Err(CheckoutError::Cancelled) => {
                return Outcome::Cancelled("cancelled during checkout".into());
            }
            Err(other) => {
                events.log_error(&here, &other.to_string());
                return Outcome::Failed(other.to_string());
            }
        };
        // Whatever started the run, it records the commit it built, with its message and
        // author, and what kind of ref that was.
        let mut commit_message = String::new();
        let mut changed_files = Vec::new();
        match head_commit(&src, &cancel).await {
            Ok(commit) => {
                commit_message = commit.message.clone();
                changed_files = commit.files.clone();
                let ref_type = if ctx.run.change.is_some() {
                    RefType::ChangeRequest
                } else if is_tag {
                    RefType::Tag
                } else {
                    RefType::Branch
                };
                if ctx.run.commit_sha.is_none() {
                    events.log(&here, &format!("[sluice] {git_ref} is at {}", commit.sha));
                }
                events.commit(&commit, ref_type).await;
            }
            Err(err) => {
                tracing::warn!(run = ctx.run.id, error = %err, "describing the checked-out commit failed")
            }
        }
        let file = &ctx.project.pipeline_path;
        let source = match tokio::fs::read_to_string(src.join(file)).await {
            Ok(source) => source,
            Err(err) => return fail(events, format!("cannot read {file}: {err}")),
        };
        let lint = sluice_core::pipeline::lint(&source);
        let Some(pipeline) = lint.pipeline.as_ref().filter(|_| lint.is_valid()) else {
            let errors: Vec<String> = lint
                .diagnostics
                .iter()
                .filter(|d| d.severity == sluice_core::pipeline::Severity::Error)
                .take(5)
                .map(|d| format!("{file}:{}:{}: {}", d.pos.line, d.pos.col, d.message))
                .collect();
            return fail(events, errors.join("\n"));
        };
        // What the Jenkinsfile declares for the project (parameters, cron, concurrency,
        // retention) comes from its default branch, as each branch of a Jenkins multibranch
        // project has its own: another branch's, a tag's or a change request's Jenkinsfile
        // runs, but does not reschedule the project.
        let on_default_branch =
            !is_tag && ctx.run.change.is_none() && git_ref == ctx.project.default_branch;
        if on_default_branch {
            events.declared(declared(pipeline)).await;
        }
        if let Some(reason) = self.agents.refuse(pipeline, file) {
            return fail(events, reason);
        }
        let agent = match self.agents.start(ctx, pipeline, events, &cancel).await {
            Ok(agent) => agent,
            Err(_) if cancel.is_cancelled() => {
                return Outcome::Cancelled("cancelled while the build agent started".into());
            }
            Err(err) => return fail(events, format!("cannot start the build agent: {err}")),
        };
        // `checkoutToSubdirectory('dir')`: the checkout lands in that directory of the workspace.
        let subdirectory = pipeline.options.iter().find_map(|o| match o {
            PipelineOption::CheckoutToSubdirectory { dir } => Some(dir.as_str()),
            _ => None,
        });
        if let Some(dir) = subdirectory {
            events.log(&here, &format!("[sluice] checkout in {WORKSPACE}/{dir}"));
        }
        let outcome = match (host_src, subdirectory) {
            (Some(root), Some(dir)) => move_into(&root, dir).await.map_err(|err| {
                fail(
                    events,
                    format!("cannot move the checkout into `{dir}`: {err}"),
                )
            }),
            (Some(_), None) => Ok(()),
            (None, dir) => agent
                .put(
                    &dir.map_or_else(|| WORKSPACE.to_owned(), |d| format!("{WORKSPACE}/{d}")),
                    tar_stream::pack_dir(src.clone()),
                )
                .await
                .map_err(|err| {
                    fail(
                        events,
                        format!("cannot copy the checkout to the agent: {err}"),
                    )
                }),
        };
        let outcome = match outcome {
            Ok(()) => {
                let checked_out = CheckedOut {
                    on_default_branch,
                    pipeline,
                    git_ref,
                    is_tag,
                    commit_message,
                    changed_files,
                };
                self.attempt(agent.as_ref(), ctx, events, cancel, checked_out)
                    .await
            }
            Err(outcome) => outcome,
        };
        if let Err(err) = agent.finish().await {
            tracing::warn!(run = ctx.run.id, error = %err, "stopping the build agent failed");
        }
        outcome
    }
}

/// What the attempt has before its first step: the checked-out ref and its Jenkinsfile.
struct CheckedOut<'a> {
    on_default_branch: bool,
    pipeline: &'a Pipeline,
    git_ref: String,
    is_tag: bool,
    commit_message: String,
    changed_files: Vec<String>,
}

impl JenkinsExecutor {
    /// The attempt on a started agent.
    async fn attempt(
        &self,
        agent: &dyn Agent,
        ctx: &RunContext,
        events: &dyn RunEvents,
        cancel: CancellationToken,
        checked_out: CheckedOut<'_>,
    ) -> Outcome {
        let CheckedOut {
            on_default_branch,
            pipeline,
            git_ref,
            is_tag,
            commit_message,
            changed_files,
        } = checked_out;
        let file = &ctx.project.pipeline_path;
        let here = Origin::default();
        let given: BTreeMap<String, String> =
            serde_json::from_str(&ctx.run.params).unwrap_or_default();
        let specs: Vec<params::ParamSpec> = pipeline
            .parameters
            .iter()
            .map(params::ParamSpec::from)
            .collect();
        let run_params = match params::check(&specs, &given) {
            Ok(values) => values,
            Err(err) => return fail(events, format!("{file}: {err}")),
        };
        events.also_mask(params::password_values(&specs, &run_params));
        events.params(&run_params).await;

        let mut env = Env::new();
        env.insert("BUILD_NUMBER".into(), ctx.run.number.to_string());
        env.insert("BUILD_ID".into(), ctx.run.number.to_string());
        env.insert("JOB_NAME".into(), ctx.project.slug.clone());
        env.insert(
            "BUILD_TAG".into(),
            format!("sluice-{}-{}", ctx.project.slug, ctx.run.number),
        );
        // Jenkins names a tag build's ref TAG_NAME and a branch build's BRANCH_NAME; a change
        // request's branch is `PR-12` / `MR-12`, with CHANGE_* describing it.
        let change = ctx.run.change.as_deref().and_then(ChangeRequest::from_json);
        let branch = change
            .as_ref()
            .map_or_else(|| git_ref.clone(), ChangeRequest::name);
        if is_tag {
            env.insert("TAG_NAME".into(), git_ref.clone());
        } else {
            env.insert("BRANCH_NAME".into(), branch.clone());
        }
        for (name, value) in change.iter().flat_map(ChangeRequest::env) {
            env.insert(name.into(), value);
        }
        env.insert("WORKSPACE".into(), agent.path_of(WORKSPACE));
        env.insert("CI".into(), "true".into());
        if let Some(sha) = &ctx.run.commit_sha {
            env.insert("GIT_COMMIT".into(), sha.clone());
        }
        for (k, v) in &run_params {
            env.insert(k.clone(), v.clone());
        }
        let runner = Runner {
            ctx,
            agent,
            events,
            tag: is_tag.then(|| git_ref.clone()),
            branch,
            change,
            commit_message,
            changed_files,
            on_default_branch,
            params: values::Params::new(run_params),
            build: Mutex::new(Res::Success),
            notes: Mutex::new(Vec::new()),
            tests: tokio::sync::Mutex::new(TestSummary::default()),
            gates: AtomicU32::new(0),
            stashes: ctx.workspace.join("stashes"),
            scratch_root: ctx.workspace.join("scratch"),
            scratch_seq: AtomicU32::new(0),
            approvers: Mutex::new(Vec::new()),
            exports: Mutex::new(Env::new()),
            booleans: pipeline
                .parameters
                .iter()
                .filter(|p| matches!(p, sluice_core::pipeline::model::Parameter::Boolean { .. }))
                .map(|p| p.name().to_owned())
                .collect(),
            started: std::time::Instant::now(),
            shown: Mutex::new(Shown::default()),
            gate_turn: tokio::sync::Mutex::new(()),
            fail_fast_all: pipeline
                .options
                .contains(&PipelineOption::ParallelsAlwaysFailFast),
            skip_after_unstable: pipeline
                .options
                .contains(&PipelineOption::SkipStagesAfterUnstable),
        };
        let top = Scope {
            env,
            dir: WORKSPACE.to_owned(),
            origin: here.clone(),
            stage_res: std::sync::Arc::new(Mutex::new(Res::Success)),
            cancel,
            cell: None,
        };
        let prelude = match &pipeline.prelude {
            Some(script) => runner.prelude(script, &top).await,
            None => Ok(()),
        };
        let environment = match prelude {
            Ok(()) => runner.environment(&top, &pipeline.environment).await,
            Err(stop) => Err(stop),
        };
        let flow = match environment {
            Ok(env) => {
                let scope = Scope { env, ..top.clone() };
                runner.declare_computed(pipeline, &scope).await;
                let flow = runner
                    .guarded(
                        &pipeline.options,
                        walk::Body::Stages(&pipeline.stages),
                        &scope,
                    )
                    .await;
                runner.finish_flow(flow, &scope, &pipeline.post).await
            }
            Err(stop) => Err(stop),
        };
        if let Err(stop) = &flow {
            runner.raise(stop.res, &stop.reason);
        }
        let reason = match &flow {
            Err(stop) => stop.reason.clone(),
            Ok(()) => runner
                .notes
                .lock()
                .ok()
                .and_then(|n| n.first().cloned())
                .unwrap_or_default(),
        };
        let shown = runner.shown.lock().map(|s| s.clone()).unwrap_or_default();
        events
            .shown(shown.display_name.as_deref(), shown.description.as_deref())
            .await;
        match runner.result() {
            Res::Success => Outcome::Succeeded,
            Res::Unstable => Outcome::Unstable(reason),
            Res::Failure => Outcome::Failed(reason),
            Res::Aborted => Outcome::Cancelled(reason),
        }
    }
}

/// Moves the checkout at `root` into `root/dir` (a relative path the analyzer checked).
async fn move_into(root: &std::path::Path, dir: &str) -> std::io::Result<()> {
    let aside = root.with_extension("moving");
    tokio::fs::rename(root, &aside).await?;
    let dest = root.join(dir);
    if let Some(parent) = dest.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    tokio::fs::rename(&aside, &dest).await
}

fn fail(events: &dyn RunEvents, reason: String) -> Outcome {
    events.log_error(&Origin::default(), &reason);
    Outcome::Failed(reason)
}

/// One of `logRotator`'s other counts (days, artifact count, artifact days), if declared.
fn rotation(
    pipeline: &Pipeline,
    pick: impl Fn(Option<u32>, Option<u32>, Option<u32>) -> Option<u32>,
) -> Option<i32> {
    pipeline.options.iter().find_map(|o| match o {
        PipelineOption::BuildRotation {
            days,
            artifact_keep,
            artifact_days,
        } => pick(*days, *artifact_keep, *artifact_days).and_then(|n| i32::try_from(n).ok()),
        _ => None,
    })
}

/// What the Jenkinsfile declares that outlives the run.
pub fn declared(pipeline: &Pipeline) -> Declared {
    Declared {
        params: params::to_json(&pipeline.parameters),
        cron: (!pipeline.triggers.is_empty()).then(|| pipeline.triggers.join("\n")),
        concurrent_builds: !pipeline
            .options
            .contains(&PipelineOption::DisableConcurrentBuilds),
        build_keep: pipeline.options.iter().find_map(|o| match o {
            PipelineOption::BuildDiscarder { keep } => i32::try_from(*keep).ok(),
            _ => None,
        }),
        build_keep_days: rotation(pipeline, |days, _, _| days),
        artifact_keep: rotation(pipeline, |_, keep, _| keep),
        artifact_keep_days: rotation(pipeline, |_, _, days| days),
        quiet_period: pipeline.options.iter().find_map(|o| match o {
            PipelineOption::QuietPeriod { seconds } => i32::try_from(*seconds).ok(),
            _ => None,
        }),
        rate_limit: pipeline.options.iter().find_map(|o| match o {
            PipelineOption::RateLimit {
                count,
                period_seconds,
                user_boost,
            } => Some(RateLimit {
                count: i32::try_from(*count).ok()?,
                period: i32::try_from(*period_seconds).ok()?,
                user_boost: *user_boost,
            }),
            _ => None,
        }),
    }
}
