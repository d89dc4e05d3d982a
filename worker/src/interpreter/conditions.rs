//! `when` conditions: branch, tag, change requests, environment, changelog and changeset,
//! Groovy expressions, `equals`, `triggeredBy`, and `not`/`allOf`/`anyOf`.

use futures_util::future::BoxFuture;
use sluice_core::pipeline::model::{Comparator, When};
use sluice_core::store::changes::ChangeRequest;

use super::values::glob;
use super::{Runner, Scope, Stop};

impl Runner<'_> {
    /// Whether a stage runs; `expression` conditions run Groovy, and `allOf`/`anyOf` stop at
    /// the first condition that decides, as Jenkins does.
    pub(crate) fn when<'a>(
        &'a self,
        when: &'a When,
        scope: &'a Scope,
    ) -> BoxFuture<'a, Result<bool, Stop>> {
        Box::pin(async move {
            Ok(match when {
                When::Branch { pattern } => self.tag.is_none() && glob(pattern, &self.branch),
                When::Tag { pattern } => self.tag.as_deref().is_some_and(|t| glob(pattern, t)),
                When::Environment { name, value } => scope.env.get(name) == Some(value),
                When::Changelog { pattern } => {
                    regex::Regex::new(pattern).is_ok_and(|re| re.is_match(&self.commit_message))
                }
                When::Changeset {
                    pattern,
                    case_sensitive,
                } => {
                    let matcher = globset::GlobBuilder::new(pattern)
                        .literal_separator(true)
                        .case_insensitive(!case_sensitive)
                        .build()
                        .map(|g| g.compile_matcher());
                    matcher.is_ok_and(|m| self.changed_files.iter().any(|f| m.is_match(f)))
                }
                When::ChangeRequest {
                    attributes,
                    comparator,
                } => self.change.as_ref().is_some_and(|change| {
                    attributes.iter().all(|(key, pattern)| {
                        compare(*comparator, pattern, &change_attribute(change, key))
                    })
                }),
                When::Expression { script } => self.expression(script, scope).await?,
                When::BuildingTag => self.tag.is_some(),
                When::IsRestartedRun => false,
                When::TriggeredBy { cause } => triggered_by(&self.ctx.run.trigger, cause),
                When::Equals { expected, actual } => {
                    self.computed(&expected.0, scope).await?
                        == self.computed(&actual.0, scope).await?
                }
                When::Not { condition } => !self.when(condition, scope).await?,
                When::AllOf { conditions } => {
                    for c in conditions {
                        if !self.when(c, scope).await? {
                            return Ok(false);
                        }
                    }
                    true
                }
                When::AnyOf { conditions } => {
                    for c in conditions {
                        if self.when(c, scope).await? {
                            return Ok(true);
                        }
                    }
                    false
                }
            })
        })
    }
}

/// Whether a run started by `trigger` has Jenkins' cause `cause` (the class's simple name,
/// with or without `Cause`): timers for cron runs, a user for runs started from the UI, the
/// API, the Jenkins API or a rerun, the SCM for webhooks.
fn triggered_by(trigger: &str, cause: &str) -> bool {
    let cause = cause
        .rsplit(['.', '$'])
        .next()
        .unwrap_or(cause)
        .trim_end_matches("Cause");
    let causes: &[&str] = match trigger {
        "cron" => &["TimerTrigger"],
        "api" | "jenkins" | "rerun" => &["UserId", "Rebuild", "Replay"],
        "github" => &["SCMTrigger", "BranchEvent", "GitHubPush", "BranchIndexing"],
        "gitlab" => &[
            "SCMTrigger",
            "BranchEvent",
            "GitLabWebHook",
            "BranchIndexing",
        ],
        _ => &[],
    };
    causes.contains(&cause)
}

/// A change request's attribute as `changeRequest(…)` names it.
fn change_attribute(change: &ChangeRequest, key: &str) -> String {
    match key {
        "id" => change.id.to_string(),
        "target" => change.target.clone(),
        "branch" => change.branch.clone(),
        "fork" => change.fork.clone().unwrap_or_default(),
        "url" => change.url.clone(),
        "title" => change.title.clone(),
        "author" | "authorDisplayName" => change.author.clone(),
        _ => String::new(),
    }
}

/// Jenkins' `comparator:`: EQUALS, GLOB (Ant-style, as `branch` uses) or REGEXP (whole value).
fn compare(comparator: Comparator, pattern: &str, value: &str) -> bool {
    match comparator {
        Comparator::Equals => pattern == value,
        Comparator::Glob => glob(pattern, value),
        Comparator::Regexp => {
            regex::Regex::new(&format!("^(?:{pattern})$")).is_ok_and(|re| re.is_match(value))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jenkins_causes_map_to_what_started_the_run() {
        assert!(triggered_by("cron", "TimerTrigger"));
        assert!(triggered_by(
            "cron",
            "hudson.triggers.TimerTrigger$TimerTriggerCause"
        ));
        assert!(triggered_by("cron", "TimerTriggerCause"));
        assert!(triggered_by("api", "UserIdCause"));
        assert!(triggered_by("github", "GitHubPushCause"));
        assert!(triggered_by("gitlab", "SCMTrigger"));
        assert!(!triggered_by("github", "TimerTrigger"));
        assert!(!triggered_by("cron", "UserIdCause"));
    }
}
