//! The steps plugins give Jenkins that Sluice runs itself: `lock` (one run of the org holds
//! a resource at a time) and `publishHTML` (a report archived under its name), and the
//! artifact upload they share with `archiveArtifacts`.

use std::time::Duration;

use sluice_core::logs::Origin;
use sluice_core::pipeline::model::Step;

use super::steps::{failed, inside};
use super::values::{arg, flag, named};
use super::walk::Body;
use super::{Flow, Runner, Scope, Stop};
use crate::agent::tar_stream;

impl Runner<'_> {
    /// `lock('resource') { … }`: waits (polling, cancellable) until no other run of the org
    /// holds the resource, runs the body, and gives the resource back whatever happened.
    pub(super) async fn lock(
        &self,
        step: &Step,
        body: Body<'_>,
        scope: &Scope,
        origin: &Origin,
    ) -> Flow {
        let line = step.pos.line;
        let (env, params) = (&scope.env, &self.params);
        if named(step, "label", env, params).is_some() {
            return Err(Stop::failure(format!(
                "line {line}: lock(label:) is not supported: lock a resource by name, lock('staging')"
            )));
        }
        let Some(resource) = arg(step, "resource", env, params).filter(|r| !r.is_empty()) else {
            return Err(Stop::failure(format!(
                "line {line}: lock needs a resource: lock('staging') {{ … }}"
            )));
        };
        let mut told = false;
        loop {
            match self.events.lock(&resource).await {
                Ok(Ok(())) => break,
                Ok(Err(holder)) => {
                    if flag(step, "skipIfLocked") {
                        self.events.log(
                            origin,
                            &format!("[sluice] `{resource}` is locked by another run: its steps are skipped (skipIfLocked)"),
                        );
                        return Ok(());
                    }
                    if !told {
                        let by = holder.map_or_else(String::new, |h| {
                            format!(" (held by run {} of project {})", h.number, h.project_id)
                        });
                        self.events.log(
                            origin,
                            &format!("[sluice] waiting for the lock on `{resource}`{by}"),
                        );
                        told = true;
                    }
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                        _ = scope.cancel.cancelled() => {
                            return Err(Stop::aborted(format!("cancelled while waiting for the lock on `{resource}`")));
                        }
                    }
                }
                Err(err) => return Err(Stop::failure(format!("line {line}: lock: {err}"))),
            }
        }
        self.events
            .log(origin, &format!("[sluice] lock on `{resource}` taken"));
        let mut inner = scope.clone();
        if let Some(var) = named(step, "variable", env, params) {
            inner.env.insert(var, resource.clone());
        }
        let flow = self.body(body, &inner).await;
        self.events.unlock(&resource).await;
        self.events
            .log(origin, &format!("[sluice] lock on `{resource}` released"));
        flow
    }

    /// `publishHTML(target: [reportDir:, reportFiles:, reportName:])`: every file of the
    /// report's directory (pages need their styles and scripts), archived under the report's
    /// name.
    pub(super) async fn publish_html(&self, step: &Step, scope: &Scope, origin: &Origin) -> Flow {
        let line = step.pos.line;
        let (env, params) = (&scope.env, &self.params);
        let dir = named(step, "reportDir", env, params).unwrap_or_default();
        let dir = inside(&scope.dir, &dir, line, "publishHTML")?;
        let files_wanted =
            named(step, "reportFiles", env, params).unwrap_or_else(|| "index.html".into());
        let name = named(step, "reportName", env, params).unwrap_or_else(|| "HTML Report".into());
        let prefix: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                    c
                } else {
                    '-'
                }
            })
            .collect();
        let allow_missing = flag(step, "allowMissing");
        let picked = self.scratch("html").await;
        let tree = match self.agent.get(&dir).await {
            Ok(tree) => tree,
            Err(_) if allow_missing => {
                self.events.log(
                    origin,
                    &format!("[sluice] publishHTML: no report `{name}` (allowMissing)"),
                );
                return Ok(());
            }
            Err(e) => return Err(failed(line, "publishHTML", e)),
        };
        let files = tar_stream::select(tree, "**", None, picked.clone())
            .await
            .map_err(|e| failed(line, "publishHTML", e))?;
        let missing: Vec<&str> = files_wanted
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty() && !files.iter().any(|have| have == f))
            .collect();
        if !missing.is_empty() && !allow_missing {
            let _ = tokio::fs::remove_dir_all(&picked).await;
            return Err(Stop::failure(format!(
                "line {line}: publishHTML: report `{name}` has no {} in its directory",
                missing.join(", ")
            )));
        }
        let uploaded = self
            .upload_as(&files, &picked, &format!("{prefix}/"), line, origin)
            .await;
        let _ = tokio::fs::remove_dir_all(&picked).await;
        if uploaded.is_ok() {
            self.events.log(
                origin,
                &format!("[sluice] published HTML report `{name}` ({} files) as artifacts under {prefix}/", files.len()),
            );
        }
        uploaded
    }

    /// Uploads each picked file as the artifact `prefix` + its path.
    pub(super) async fn upload_as(
        &self,
        files: &[String],
        picked: &std::path::Path,
        prefix: &str,
        line: u32,
        origin: &Origin,
    ) -> Flow {
        for rel in files {
            let body = tokio::fs::File::open(picked.join(rel))
                .await
                .map_err(|e| failed(line, "archiveArtifacts", e))?;
            let rel = &format!("{prefix}{rel}");
            match self.events.archive(rel, Box::pin(body)).await {
                Ok(done) => self.events.log(
                    origin,
                    &format!(
                        "[sluice] archived {rel} ({} bytes, sha256 {})",
                        done.size, done.sha256
                    ),
                ),
                Err(err) => {
                    return Err(Stop::failure(format!(
                        "line {line}: archiveArtifacts: {rel}: {err}"
                    )));
                }
            }
        }
        Ok(())
    }
}
