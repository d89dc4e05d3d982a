//! What a run builds besides its commit: the kind of ref (branch, tag or change request),
//! the change request itself, and the project's `branches` filter that decides which
//! pushed branches build at all.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::entities::project;
use crate::git::{RepoAccess, ls_remote};
use crate::store::runs::NewRun;
use crate::{Error, Result, validate};

/// The kind of ref a run builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefType {
    Branch,
    Tag,
    ChangeRequest,
}

impl RefType {
    pub fn as_str(self) -> &'static str {
        match self {
            RefType::Branch => "branch",
            RefType::Tag => "tag",
            RefType::ChangeRequest => "change_request",
        }
    }

    pub fn parse(text: &str) -> Option<RefType> {
        match text {
            "branch" => Some(RefType::Branch),
            "tag" => Some(RefType::Tag),
            "change_request" => Some(RefType::ChangeRequest),
            _ => None,
        }
    }
}

/// A pull request (GitHub) or merge request (GitLab) as a run builds it. The names follow
/// the `CHANGE_*` variables Jenkins sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChangeRequest {
    /// `github` or `gitlab`.
    pub provider: String,
    /// The number (`CHANGE_ID`).
    pub id: u64,
    /// The branch it would merge into (`CHANGE_TARGET`).
    pub target: String,
    /// Its source branch (`CHANGE_BRANCH`).
    pub branch: String,
    /// The fork it comes from (`owner/repo`), None from the project's own repository.
    pub fork: Option<String>,
    pub url: String,
    pub author: String,
    pub title: String,
}

impl ChangeRequest {
    /// `PR-12` (GitHub) or `MR-12` (GitLab): the run's `BRANCH_NAME`.
    pub fn name(&self) -> String {
        let prefix = if self.provider == "gitlab" {
            "MR"
        } else {
            "PR"
        };
        format!("{prefix}-{}", self.id)
    }

    /// The ref the provider keeps the change's head under, in the target repository.
    pub fn head_ref(&self) -> String {
        if self.provider == "gitlab" {
            format!("refs/merge-requests/{}/head", self.id)
        } else {
            format!("refs/pull/{}/head", self.id)
        }
    }

    /// The `CHANGE_*` variables of a run building it.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("CHANGE_ID", self.id.to_string()),
            ("CHANGE_TARGET", self.target.clone()),
            ("CHANGE_BRANCH", self.branch.clone()),
            ("CHANGE_FORK", self.fork.clone().unwrap_or_default()),
            ("CHANGE_URL", self.url.clone()),
            ("CHANGE_AUTHOR", self.author.clone()),
            ("CHANGE_TITLE", self.title.clone()),
        ]
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(json: &str) -> Option<ChangeRequest> {
        serde_json::from_str(json).ok()
    }
}

/// How long looking a ref up may hold up creating a run; past it the run is queued
/// unresolved and its checkout resolves it.
pub const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);

/// Resolves the ref of a run about to be created (from the UI, the API or the Jenkins API) to
/// its commit, with `git ls-remote` under the checkout's address rules. A ref the repository
/// does not have is refused (field `ref`); an unreachable repository leaves the commit to the
/// checkout, which then records it.
pub async fn resolve(
    project: &project::Model,
    new: &mut NewRun,
    access: &RepoAccess,
    credential: Option<&crate::git_auth::RepoCredential>,
) -> Result<()> {
    if new.commit.is_some() || new.change.is_some() {
        return Ok(());
    }
    let git_ref = new
        .git_ref
        .clone()
        .unwrap_or_else(|| project.default_branch.clone());
    validate::path_like("ref", &git_ref, 255)?;
    let cancel = CancellationToken::new();
    let looked_up = tokio::time::timeout(
        RESOLVE_TIMEOUT,
        ls_remote(&project.repo_url, &git_ref, access, credential, &cancel),
    )
    .await;
    match looked_up {
        Ok(Ok(Some(found))) => {
            new.commit = Some(found.sha);
            new.ref_type = Some(if found.is_tag {
                RefType::Tag
            } else {
                RefType::Branch
            });
            Ok(())
        }
        Ok(Ok(None)) => Err(Error::invalid(
            "ref",
            format!("the repository has no branch or tag `{git_ref}`"),
        )),
        Ok(Err(err)) => {
            tracing::info!(project = project.id, error = %err, "the ref is left to the checkout to resolve");
            Ok(())
        }
        Err(_) => {
            tracing::info!(
                project = project.id,
                "looking the ref up timed out; the checkout resolves it"
            );
            Ok(())
        }
    }
}

/// Looks the ref of a run already queued (a cron run) up and records its commit, unless a
/// worker got to the run first (its checkout records the commit then). A private repository's
/// is left to the checkout, which has its credential.
pub async fn resolve_queued(
    db: &sea_orm::DatabaseConnection,
    project: &project::Model,
    run_id: i64,
    access: &RepoAccess,
) {
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    if project.repo_auth.is_some() {
        return;
    }
    let mut new = NewRun::of(crate::store::runs::Trigger::Cron, None, None);
    if let Err(err) = resolve(project, &mut new, access, None).await {
        tracing::info!(run = run_id, error = %err, "a cron run's ref is left to its checkout");
        return;
    }
    let (Some(sha), Some(ref_type)) = (new.commit, new.ref_type) else {
        return;
    };
    let updated = crate::entities::run::Entity::update_many()
        .col_expr(crate::entities::run::Column::CommitSha, Expr::value(sha))
        .col_expr(
            crate::entities::run::Column::RefType,
            Expr::value(ref_type.as_str()),
        )
        .filter(crate::entities::run::Column::Id.eq(run_id))
        .filter(crate::entities::run::Column::CommitSha.is_null())
        .filter(crate::entities::run::Column::Status.eq("queued"))
        .exec(db)
        .await;
    if let Err(err) = updated {
        tracing::warn!(run = run_id, error = %err, "recording a cron run's commit failed");
    }
}

/// Most patterns in a `branches` filter.
const MAX_PATTERNS: usize = 50;

/// A project's `branches` filter: globs (`*` any text, `/` included; `?` one character);
/// a pattern starting with `!` leaves out what it matches. A branch builds when some plain
/// pattern matches it and no `!` pattern does. The default, `["*"]`, builds every branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchFilter(Vec<String>);

impl Default for BranchFilter {
    fn default() -> Self {
        BranchFilter(vec!["*".into()])
    }
}

impl BranchFilter {
    /// Checks patterns given by a user (field `branches`).
    pub fn new(patterns: Vec<String>) -> Result<BranchFilter> {
        if patterns.is_empty() {
            return Err(Error::invalid(
                "branches",
                "must list at least one pattern; [\"*\"] builds every branch",
            ));
        }
        if patterns.len() > MAX_PATTERNS {
            return Err(Error::invalid(
                "branches",
                format!("at most {MAX_PATTERNS} patterns"),
            ));
        }
        for pattern in &patterns {
            let body = pattern.strip_prefix('!').unwrap_or(pattern);
            if body.is_empty()
                || body.len() > 255
                || body
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
            {
                return Err(Error::invalid(
                    "branches",
                    format!(
                        "`{pattern}` is not a branch pattern (1 to 255 characters, no spaces; `*` and `?` are wildcards, `!` excludes)"
                    ),
                ));
            }
        }
        if patterns.iter().all(|p| p.starts_with('!')) {
            return Err(Error::invalid(
                "branches",
                "only `!` patterns match no branch at all; add \"*\" to build the others",
            ));
        }
        Ok(BranchFilter(patterns))
    }

    /// The filter stored on a project (None: the default).
    pub fn of_stored(json: Option<&str>) -> BranchFilter {
        json.and_then(|j| serde_json::from_str(j).ok())
            .map(BranchFilter)
            .unwrap_or_default()
    }

    pub fn patterns(&self) -> &[String] {
        &self.0
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_default()
    }

    /// Whether pushes to `branch` build.
    pub fn allows(&self, branch: &str) -> bool {
        let (excludes, includes): (Vec<&String>, Vec<&String>) =
            self.0.iter().partition(|p| p.starts_with('!'));
        includes.iter().any(|p| glob(p, branch)) && !excludes.iter().any(|p| glob(&p[1..], branch))
    }
}

/// Jenkins' branch and tag patterns: `*` matches any run of characters (`/` included), `?`
/// one character, anything else itself. Iterative, backtracking only to the last `*`, so a
/// pattern from a Jenkinsfile cannot make matching exponential.
pub fn glob(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == '?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(patterns: &[&str]) -> BranchFilter {
        BranchFilter::new(patterns.iter().map(|p| (*p).to_owned()).collect()).unwrap()
    }

    #[test]
    fn every_branch_builds_by_default() {
        let all = BranchFilter::default();
        for branch in ["main", "feature/x", "release/1.2/fix", "a"] {
            assert!(all.allows(branch), "{branch}");
        }
        assert_eq!(BranchFilter::of_stored(None), all);
        assert_eq!(BranchFilter::of_stored(Some("not json")), all);
    }

    #[test]
    fn globs_include_and_exclude() {
        let f = filter(&["main", "release/*", "feature-??", "!release/*-wip"]);
        assert!(f.allows("main"));
        assert!(f.allows("release/1.2"));
        assert!(f.allows("release/1/2"));
        assert!(f.allows("feature-ab"));
        assert!(!f.allows("feature-abc"));
        assert!(!f.allows("release/2-wip"));
        assert!(!f.allows("mainline"));
        assert!(!f.allows("dev"));
        let f = filter(&["*", "!dependabot/*"]);
        assert!(f.allows("main"));
        assert!(!f.allows("dependabot/npm/x"));
        assert!(glob("a*b*c", "a-b-b-c"));
        assert!(!glob("a*b*c", "a-b-b-d"));
        assert!(glob("r?sum?", "résumé"));
        // Linear: this took minutes with recursive backtracking.
        let hard = format!("{}b", "a*".repeat(40));
        assert!(!glob(&hard, &"a".repeat(200)));
    }

    #[test]
    fn bad_filters_name_the_field() {
        for bad in [
            vec![],
            vec!["".to_owned()],
            vec!["a b".into()],
            vec!["!x".into()],
        ] {
            let err = BranchFilter::new(bad.clone()).unwrap_err();
            assert!(
                matches!(
                    &err,
                    Error::Invalid {
                        field: "branches",
                        ..
                    }
                ),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn change_requests_are_named_as_jenkins_names_them() {
        let mut change = ChangeRequest {
            provider: "github".into(),
            id: 12,
            target: "main".into(),
            branch: "fix".into(),
            fork: None,
            url: "https://example.com/pr/12".into(),
            author: "ada".into(),
            title: "Fix".into(),
        };
        assert_eq!(change.name(), "PR-12");
        assert_eq!(change.head_ref(), "refs/pull/12/head");
        assert_eq!(
            ChangeRequest::from_json(&change.to_json()),
            Some(change.clone())
        );
        change.provider = "gitlab".into();
        assert_eq!(change.name(), "MR-12");
        assert_eq!(change.head_ref(), "refs/merge-requests/12/head");
        assert!(change.env().contains(&("CHANGE_FORK", String::new())));
    }
}
