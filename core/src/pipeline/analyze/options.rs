//! The `options` section of the pipeline and of a stage.

use std::collections::HashSet;

use super::super::diagnostics::Diagnostic;
use super::super::model::*;
use super::super::syntax::{Node, Value};
use super::{Analyzer, call_step, text_of};

/// Jenkins options that change nothing here, and why: accepted with a warning.
const HARMLESS_OPTIONS: &[(&str, &str)] = &[
    (
        "disableRestartFromStage",
        "runs cannot be restarted from a stage here",
    ),
    (
        "disableResume",
        "a run whose worker dies is started again from the beginning",
    ),
    ("preserveStashes", "stashes live only as long as their run"),
    ("durabilityHint", "every step's state is kept the same way"),
    (
        "newContainerPerStage",
        "a run keeps one agent for the stages that share it",
    ),
    (
        "checkoutToSubdirectory",
        "the checkout is made once per run, by the pipeline's `options`, not per stage",
    ),
];

/// The longest `quietPeriod` honoured, in seconds: a day.
pub const MAX_QUIET_PERIOD: u64 = 86_400;

/// `rateLimitBuilds` periods, in seconds (Jenkins' `durationName`s).
const RATE_PERIODS: &[(&str, u64)] = &[
    ("second", 1),
    ("minute", 60),
    ("hour", 3_600),
    ("day", 86_400),
    ("week", 7 * 86_400),
    ("month", 31 * 86_400),
    ("year", 366 * 86_400),
];

/// Options that apply to the whole pipeline and mean nothing on a stage.
const PIPELINE_ONLY_OPTIONS: &[&str] = &[
    "buildDiscarder",
    "disableConcurrentBuilds",
    "parallelsAlwaysFailFast",
    "quietPeriod",
    "preserveStashes",
    "durabilityHint",
    "newContainerPerStage",
    "rateLimitBuilds",
    "disableResume",
    "disableRestartFromStage",
    "overrideIndexTriggers",
    "copyArtifactPermission",
    "skipStagesAfterUnstable",
];

impl Analyzer<'_> {
    pub(super) fn options(&mut self, node: &Node, at_stage: bool) -> Vec<PipelineOption> {
        let mut options = Vec::new();
        let mut wrappers = Vec::new();
        self.empty_section(
            node,
            "add an option such as timeout(time: 1, unit: 'HOURS'), or remove the section",
        );
        let mut seen = HashSet::new();
        for opt in node.block.iter().flatten() {
            if !seen.insert(opt.name.as_str()) {
                self.error(opt.pos, format!("option `{}` appears twice", opt.name));
                continue;
            }
            if at_stage && PIPELINE_ONLY_OPTIONS.contains(&opt.name.as_str()) {
                self.error(
                    opt.pos,
                    format!(
                        "option `{}` applies to the whole pipeline: move it to the pipeline's `options`",
                        opt.name
                    ),
                );
                continue;
            }
            // `timeout(time: "${params.MINUTES}")`, `retry(env.TRIES as int)`: values known only
            // when the run gets there, so the option runs as the step of the same name.
            let computed = |key: &str| {
                matches!(
                    opt.args.named(key).or(opt.args.positional.first()),
                    Some(Value::GStr(..) | Value::Expr(..))
                )
            };
            if (opt.name == "timeout" && (computed("time") || computed("unit")))
                || (opt.name == "retry" && computed("count"))
            {
                self.check_signature(opt);
                for v in opt
                    .args
                    .positional
                    .iter()
                    .chain(opt.args.named.iter().map(|(_, v)| v))
                {
                    self.check_value(v);
                }
                wrappers.push(call_step(opt));
                continue;
            }
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
                        // Jenkins writes "" or "-1" for a count it should not use.
                        let given = |keys: [&str; 2]| {
                            keys.iter().find_map(|k| args.named(k)).filter(|v| {
                                !text_of(v).is_some_and(|s| s.trim().is_empty() || s.trim() == "-1")
                                    && !matches!(v, Value::Num(n, _) if *n == -1.0)
                            })
                        };
                        let keep = given(["numToKeepStr", "numToKeep"]);
                        let days = given(["daysToKeepStr", "daysToKeep"]);
                        let artifact_keep = given(["artifactNumToKeepStr", "artifactNumToKeep"]);
                        let artifact_days = given(["artifactDaysToKeepStr", "artifactDaysToKeep"]);
                        let (days, artifact_keep, artifact_days) = (
                            days.and_then(|v| self.number(Some(v), "daysToKeepStr", *pos)),
                            artifact_keep
                                .and_then(|v| self.number(Some(v), "artifactNumToKeepStr", *pos)),
                            artifact_days
                                .and_then(|v| self.number(Some(v), "artifactDaysToKeepStr", *pos)),
                        );
                        if days.is_some() || artifact_keep.is_some() || artifact_days.is_some() {
                            let n = |v: Option<u64>| v.map(|n| n.min(u64::from(u32::MAX)) as u32);
                            options.push(PipelineOption::BuildRotation {
                                days: n(days),
                                artifact_keep: n(artifact_keep),
                                artifact_days: n(artifact_days),
                            });
                        }
                        match keep {
                            Some(v @ (Value::Expr(..) | Value::GStr(..)))
                                if matches!(v, Value::Expr(..))
                                    || text_of(v).is_some_and(|s| s.contains("${")) =>
                            {
                                self.check_value(v);
                                super::stage_parts::groovy_of(v).map(|e| {
                                    PipelineOption::ComputedBuildDiscarder {
                                        keep: Computed(std::sync::Arc::new(e)),
                                    }
                                })
                            }
                            Some(v) => self
                                .number(Some(v), "numToKeepStr", *pos)
                                .map(|k| PipelineOption::BuildDiscarder { keep: k as u32 }),
                            None if days.is_some()
                                || artifact_keep.is_some()
                                || artifact_days.is_some() =>
                            {
                                None
                            }
                            None => {
                                self.error(
                                    *pos,
                                    "logRotator needs numToKeepStr, daysToKeepStr, artifactNumToKeepStr or artifactDaysToKeepStr",
                                );
                                None
                            }
                        }
                    }
                    _ => {
                        self.error(
                            opt.pos,
                            "use buildDiscarder(logRotator(numToKeepStr: 'N')) (or daysToKeepStr, artifactNumToKeepStr, artifactDaysToKeepStr)",
                        );
                        None
                    }
                },
                "parallelsAlwaysFailFast" => Some(PipelineOption::ParallelsAlwaysFailFast),
                "skipStagesAfterUnstable" => {
                    if !opt.args.is_empty() {
                        self.error(opt.pos, "skipStagesAfterUnstable() takes no arguments");
                    }
                    Some(PipelineOption::SkipStagesAfterUnstable)
                }
                "withCredentials" | "ansiColor" => {
                    self.check_signature(opt);
                    if opt.name == "withCredentials" && opt.args.is_empty() {
                        self.error(opt.pos, "`withCredentials` needs bindings: withCredentials([string(credentialsId: 'id', variable: 'V')])");
                    }
                    if opt.block.is_some() {
                        self.error(
                            opt.pos,
                            format!(
                                "option `{}` takes no block: it wraps the whole body",
                                opt.name
                            ),
                        );
                    }
                    wrappers.push(call_step(opt));
                    None
                }
                "quietPeriod" if !at_stage => self.quiet_period(opt),
                "rateLimitBuilds" if !at_stage => self.rate_limit(opt),
                "checkoutToSubdirectory" if !at_stage => self.checkout_subdirectory(opt),
                name => match HARMLESS_OPTIONS.iter().find(|(n, _)| *n == name) {
                    Some((_, why)) => {
                        self.diags.push(Diagnostic::warning(
                            opt.pos,
                            format!("option `{name}` has no effect in Sluice: {why}"),
                        ));
                        None
                    }
                    None => {
                        self.error(opt.pos, format!("unknown option `{name}`"));
                        None
                    }
                },
            };
            options.extend(parsed);
        }
        if !wrappers.is_empty() {
            options.push(PipelineOption::Wrappers { steps: wrappers });
        }
        options
    }

    pub(super) fn timeout_seconds(&mut self, node: &Node) -> Option<u64> {
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
        // A year is more than any build needs; anything past it is a typo.
        match time.checked_mul(factor).filter(|s| *s <= 366 * 86_400) {
            Some(seconds) => Some(seconds),
            None => {
                self.error(node.pos, "timeout is longer than a year");
                None
            }
        }
    }

    /// `quietPeriod(30)`: seconds a triggered run waits before it may start.
    fn quiet_period(&mut self, opt: &Node) -> Option<PipelineOption> {
        let seconds = self.number(
            opt.args
                .positional
                .first()
                .or(opt.args.named("quietPeriod")),
            "quiet period",
            opt.pos,
        )?;
        if seconds > MAX_QUIET_PERIOD {
            self.diags.push(Diagnostic::warning(
                opt.pos,
                format!("a quiet period of {seconds} s is cut to a day ({MAX_QUIET_PERIOD} s)"),
            ));
        }
        Some(PipelineOption::QuietPeriod {
            seconds: seconds.min(MAX_QUIET_PERIOD) as u32,
        })
    }

    /// `rateLimitBuilds(throttle: [count: 2, durationName: 'hour', userBoost: true])`.
    fn rate_limit(&mut self, opt: &Node) -> Option<PipelineOption> {
        const USAGE: &str =
            "use rateLimitBuilds(throttle: [count: 1, durationName: 'hour', userBoost: false])";
        let Some(Value::Map(throttle, _)) = opt.args.named("throttle") else {
            self.error(opt.pos, USAGE);
            return None;
        };
        let entry = |key: &str| throttle.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        for (key, value) in throttle {
            if !["count", "durationName", "userBoost"].contains(&key.as_str()) {
                self.error(
                    value.pos(),
                    format!(
                        "`throttle` has no `{key}`: it takes count, durationName and userBoost"
                    ),
                );
                return None;
            }
        }
        let count = self.number(entry("count"), "`throttle` count", opt.pos)?;
        if count == 0 {
            let at = entry("count").map_or(opt.pos, Value::pos);
            self.error(at, "`throttle` count must be at least 1");
            return None;
        }
        let period_seconds = match entry("durationName") {
            None => 3_600,
            Some(value) => {
                let name = text_of(value).unwrap_or_default();
                match RATE_PERIODS.iter().find(|(n, _)| *n == name) {
                    Some((_, seconds)) => *seconds,
                    None => {
                        self.error(
                            value.pos(),
                            format!(
                                "unknown durationName `{name}`: second, minute, hour, day, week, month or year"
                            ),
                        );
                        return None;
                    }
                }
            }
        };
        let user_boost = match entry("userBoost") {
            None => false,
            Some(Value::Bool(b, _)) => *b,
            Some(other) => {
                self.error(other.pos(), "`userBoost` must be true or false");
                return None;
            }
        };
        Some(PipelineOption::RateLimit {
            count: count as u32,
            period_seconds,
            user_boost,
        })
    }

    /// `checkoutToSubdirectory('src')`: a relative directory of the workspace.
    fn checkout_subdirectory(&mut self, opt: &Node) -> Option<PipelineOption> {
        let value = opt
            .args
            .positional
            .first()
            .or(opt.args.named("subdirectory"));
        let dir = match value.map(|v| (text_of(v), v)) {
            Some((Some(dir), Value::Str(..))) => dir,
            Some((_, v)) => {
                self.error(
                    v.pos(),
                    "the subdirectory must be a plain string such as 'src'",
                );
                return None;
            }
            None => {
                self.error(opt.pos, "use checkoutToSubdirectory('dir')");
                return None;
            }
        };
        let dir = dir.trim_end_matches('/').to_owned();
        let bad = dir.is_empty()
            || dir.starts_with('/')
            || dir.contains('\\')
            || dir
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..");
        if bad || dir.len() > 255 {
            self.error(
                opt.pos,
                format!("`{dir}` is not a subdirectory of the workspace: use a relative path such as 'src' or 'app/src', without `..`"),
            );
            return None;
        }
        Some(PipelineOption::CheckoutToSubdirectory { dir })
    }
}
