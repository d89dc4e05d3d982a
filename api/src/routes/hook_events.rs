//! What a webhook delivery asks for, read from GitHub's and GitLab's payloads: a branch or
//! tag push, a pull or merge request with new commits, or nothing. Pure functions of the
//! project and the payload, so every provider quirk is tested without HTTP.

use serde_json::Value;
use sluice_core::entities::project;
use sluice_core::store::changes::{BranchFilter, ChangeRequest, RefType};
use sluice_core::store::runs::{NewRun, Trigger};

const DELETED_SHA: &str = "0000000000000000000000000000000000000000";

/// What a delivery asks for.
#[derive(Debug)]
pub enum Decision {
    Run(Box<NewRun>),
    Ignore(String),
}

fn text(value: &Value, path: &[&str]) -> Option<String> {
    let mut v = value;
    for key in path {
        v = v.get(key)?;
    }
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn number(value: &Value, path: &[&str]) -> Option<u64> {
    let mut v = value;
    for key in path {
        v = v.get(key)?;
    }
    v.as_u64()
}

/// `Name <email>`, or whichever of the two is known.
fn person(name: Option<String>, email: Option<String>) -> Option<String> {
    match (name, email) {
        (Some(n), Some(e)) if !e.is_empty() => Some(format!("{n} <{e}>")),
        (Some(n), _) => Some(n),
        (None, Some(e)) => Some(format!("<{e}>")),
        (None, None) => None,
    }
}

/// A push's commit, as the provider described it.
struct Pushed {
    git_ref: Option<String>,
    commit: Option<String>,
    deleted: bool,
    message: Option<String>,
    author: Option<String>,
}

/// A tag always builds; a branch builds when the project's `branches` filter allows it.
fn push(trigger: Trigger, project: &project::Model, pushed: Pushed) -> Decision {
    let Some(git_ref) = pushed.git_ref else {
        return Decision::Ignore("no ref in the push".into());
    };
    if pushed.deleted {
        return Decision::Ignore(format!("deleted ref {git_ref}"));
    }
    let (name, ref_type) = if let Some(tag) = git_ref.strip_prefix("refs/tags/") {
        (tag.to_owned(), RefType::Tag)
    } else {
        let branch = git_ref.strip_prefix("refs/heads/").unwrap_or(&git_ref);
        let filter = BranchFilter::of_stored(project.branches.as_deref());
        if !filter.allows(branch) {
            return Decision::Ignore(format!(
                "branch {branch} is left out by the project's branches filter {:?}",
                filter.patterns()
            ));
        }
        (branch.to_owned(), RefType::Branch)
    };
    let mut new = NewRun::of(trigger, Some(name), pushed.commit);
    new.ref_type = Some(ref_type);
    new.commit_message = pushed.message;
    new.commit_author = pushed.author;
    Decision::Run(Box::new(new))
}

/// A change request's run: its head ref in the target repository, at `commit`.
fn change_request(
    trigger: Trigger,
    change: ChangeRequest,
    commit: Option<String>,
    message: Option<String>,
    author: Option<String>,
) -> Decision {
    let mut new = NewRun::of(trigger, Some(change.head_ref()), commit);
    new.ref_type = Some(RefType::ChangeRequest);
    new.change = Some(change);
    new.commit_message = message;
    new.commit_author = author;
    Decision::Run(Box::new(new))
}

/// GitHub: `push` (branches and tags) and `pull_request` opened, synchronize or reopened.
pub fn github(project: &project::Model, event: &str, body: &Value) -> Decision {
    match event {
        "ping" => Decision::Ignore("ping".into()),
        "push" => {
            let head = |field: &[&str]| {
                let mut path = vec!["head_commit"];
                path.extend_from_slice(field);
                text(body, &path)
            };
            let pushed = Pushed {
                git_ref: text(body, &["ref"]),
                commit: head(&["id"]).or_else(|| text(body, &["after"])),
                deleted: body
                    .get("deleted")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                message: head(&["message"]),
                author: person(head(&["author", "name"]), head(&["author", "email"])),
            };
            push(Trigger::Github, project, pushed)
        }
        "pull_request" => match text(body, &["action"]).as_deref() {
            Some("opened" | "synchronize" | "reopened") => {
                let pr = |field: &[&str]| {
                    let mut path = vec!["pull_request"];
                    path.extend_from_slice(field);
                    text(body, &path)
                };
                let Some(id) =
                    number(body, &["pull_request", "number"]).or_else(|| number(body, &["number"]))
                else {
                    return Decision::Ignore("pull request without a number".into());
                };
                let base_repo = pr(&["base", "repo", "full_name"]);
                let head_repo = pr(&["head", "repo", "full_name"]);
                // A fork that was deleted leaves `head.repo` null: still someone else's code.
                let fork = match (&head_repo, &base_repo) {
                    (Some(head), Some(base)) if head == base => None,
                    (Some(head), _) => Some(head.clone()),
                    (None, _) => Some("(deleted fork)".into()),
                };
                let change = ChangeRequest {
                    provider: "github".into(),
                    id,
                    target: pr(&["base", "ref"]).unwrap_or_default(),
                    branch: pr(&["head", "ref"]).unwrap_or_default(),
                    fork,
                    url: pr(&["html_url"]).unwrap_or_default(),
                    author: pr(&["user", "login"]).unwrap_or_default(),
                    title: pr(&["title"]).unwrap_or_default(),
                };
                change_request(Trigger::Github, change, pr(&["head", "sha"]), None, None)
            }
            other => Decision::Ignore(format!(
                "pull_request {}",
                other.unwrap_or("without action")
            )),
        },
        other => Decision::Ignore(format!("event {other}")),
    }
}

/// GitLab: Push Hook, Tag Push Hook, and Merge Request Hook open, reopen, or update with new
/// commits (an update that only edits the title or description starts nothing).
pub fn gitlab(project: &project::Model, event: &str, body: &Value) -> Decision {
    match event {
        "Push Hook" | "Tag Push Hook" => {
            let after = text(body, &["after"]);
            let commit = text(body, &["checkout_sha"]).or_else(|| after.clone());
            // The pushed head is among `commits` (newest last) when the push brought it.
            let described = body
                .get("commits")
                .and_then(Value::as_array)
                .and_then(|commits| {
                    commits
                        .iter()
                        .find(|c| text(c, &["id"]).is_some() && text(c, &["id"]) == commit)
                });
            let pushed = Pushed {
                git_ref: text(body, &["ref"]),
                deleted: after.as_deref() == Some(DELETED_SHA),
                message: described.and_then(|c| text(c, &["message"])),
                author: described.and_then(|c| {
                    person(text(c, &["author", "name"]), text(c, &["author", "email"]))
                }),
                commit,
            };
            push(Trigger::Gitlab, project, pushed)
        }
        "Merge Request Hook" => {
            let mr = |field: &[&str]| {
                let mut path = vec!["object_attributes"];
                path.extend_from_slice(field);
                text(body, &path)
            };
            match mr(&["action"]).as_deref() {
                Some("open" | "reopen") => {}
                // GitLab sends `oldrev` only when the update pushed commits.
                Some("update") if mr(&["oldrev"]).is_some() => {}
                Some("update") => {
                    return Decision::Ignore("merge request update without new commits".into());
                }
                other => {
                    return Decision::Ignore(format!(
                        "merge request {}",
                        other.unwrap_or("without action")
                    ));
                }
            }
            let Some(id) = number(body, &["object_attributes", "iid"]) else {
                return Decision::Ignore("merge request without an iid".into());
            };
            let source = number(body, &["object_attributes", "source_project_id"]);
            let target = number(body, &["object_attributes", "target_project_id"]);
            let fork = (source.is_some() && source != target).then(|| {
                mr(&["source", "path_with_namespace"])
                    .unwrap_or_else(|| format!("project {}", source.unwrap_or_default()))
            });
            let change = ChangeRequest {
                provider: "gitlab".into(),
                id,
                target: mr(&["target_branch"]).unwrap_or_default(),
                branch: mr(&["source_branch"]).unwrap_or_default(),
                fork,
                url: mr(&["url"]).unwrap_or_default(),
                author: text(body, &["user", "username"]).unwrap_or_default(),
                title: mr(&["title"]).unwrap_or_default(),
            };
            change_request(
                Trigger::Gitlab,
                change,
                mr(&["last_commit", "id"]),
                mr(&["last_commit", "message"]),
                person(
                    mr(&["last_commit", "author", "name"]),
                    mr(&["last_commit", "author", "email"]),
                ),
            )
        }
        other => Decision::Ignore(format!("event {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn project(branches: Option<&str>) -> project::Model {
        project::Model {
            id: 1,
            org_id: 1,
            slug: "web".into(),
            name: "Web".into(),
            repo_url: "https://example.com/web.git".into(),
            default_branch: "main".into(),
            pipeline_path: "Jenkinsfile".into(),
            webhook_secret_enc: Vec::new(),
            next_run_number: 1,
            pipeline_params: None,
            pipeline_cron: None,
            concurrent_builds: true,
            build_keep: None,
            build_keep_days: None,
            artifact_keep: None,
            artifact_keep_days: None,
            branches: branches.map(str::to_owned),
            fork_secrets: false,
            quiet_period: None,
            rate_limit_count: None,
            rate_limit_period: None,
            rate_limit_user_boost: false,
            repo_auth: None,
            repo_username: None,
            repo_secret_enc: None,
            ssh_public_key: None,
            ssh_known_hosts: None,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
        }
    }

    fn run(decision: Decision) -> NewRun {
        match decision {
            Decision::Run(new) => *new,
            Decision::Ignore(why) => panic!("ignored: {why}"),
        }
    }

    fn ignored(decision: Decision) -> String {
        match decision {
            Decision::Ignore(why) => why,
            Decision::Run(new) => panic!("ran {new:?}"),
        }
    }

    #[test]
    fn pushes_build_every_branch_the_filter_allows_and_every_tag() {
        let all = project(None);
        let push = |r: &str| json!({"ref": r, "after": "abc1", "head_commit": {"id": "abc1", "message": "m", "author": {"name": "A", "email": "a@x"}}});
        let new = run(github(&all, "push", &push("refs/heads/feature/x")));
        assert_eq!(new.git_ref.as_deref(), Some("feature/x"));
        assert_eq!(new.ref_type, Some(RefType::Branch));
        assert_eq!(new.commit_author.as_deref(), Some("A <a@x>"));
        let only_main = project(Some(r#"["main"]"#));
        assert!(
            ignored(github(&only_main, "push", &push("refs/heads/feature/x")))
                .contains("branches filter")
        );
        let tag = run(github(&only_main, "push", &push("refs/tags/v1")));
        assert_eq!(
            (tag.git_ref.as_deref(), tag.ref_type),
            (Some("v1"), Some(RefType::Tag))
        );
        let deleted = json!({"ref": "refs/heads/x", "deleted": true, "after": "0000"});
        assert!(ignored(github(&all, "push", &deleted)).contains("deleted"));
    }

    #[test]
    fn a_deleted_fork_is_still_a_fork() {
        let pr = json!({"action": "synchronize", "pull_request": {"number": 4, "head": {"ref": "main", "sha": "abc", "repo": null},
            "base": {"ref": "main", "repo": {"full_name": "acme/web"}}, "user": {"login": "x"}, "title": "t", "html_url": "u"}});
        let new = run(github(&project(None), "pull_request", &pr));
        let change = new.change.unwrap();
        assert_eq!(change.fork.as_deref(), Some("(deleted fork)"));
        assert_eq!(new.git_ref.as_deref(), Some("refs/pull/4/head"));
        let closed = json!({"action": "closed", "pull_request": {"number": 4}});
        assert_eq!(
            ignored(github(&project(None), "pull_request", &closed)),
            "pull_request closed"
        );
    }

    #[test]
    fn gitlab_pushes_take_the_head_commits_message() {
        let push = json!({"ref": "refs/heads/dev", "after": "b2", "checkout_sha": "b2",
            "commits": [{"id": "b1", "message": "older"}, {"id": "b2", "message": "newest\n", "author": {"name": "Jo", "email": "jo@x"}}]});
        let new = run(gitlab(&project(None), "Push Hook", &push));
        assert_eq!(new.commit_message.as_deref(), Some("newest\n"));
        assert_eq!(new.commit_author.as_deref(), Some("Jo <jo@x>"));
        let mr = json!({"object_attributes": {"action": "merge", "iid": 1}});
        assert_eq!(
            ignored(gitlab(&project(None), "Merge Request Hook", &mr)),
            "merge request merge"
        );
    }
}
