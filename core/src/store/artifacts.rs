//! Artifacts and test results a run recorded. Bytes are in object storage under
//! `artifacts/{run}/{path}`; rows hold the path, size and sha256.

use chrono::Utc;
use object_store::path::Path;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Set,
};
use serde::{Deserialize, Serialize};

use crate::entities::{artifact, run};
use crate::{Error, Result};

/// Checks an artifact path: relative, `/`-separated, no `.`/`..`/empty parts, no NUL or
/// backslash. The same check refuses traversal on download.
pub fn check_path(path: &str) -> Result<()> {
    let bad = path.is_empty()
        || path.len() > 1024
        || path.starts_with('/')
        || path.contains(['\\', '\0'])
        || path
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        return Err(Error::invalid(
            "path",
            format!(
                "`{}` is not a relative path inside the workspace",
                path.escape_debug()
            ),
        ));
    }
    Ok(())
}

pub fn object_path(run_id: i64, path: &str) -> Path {
    Path::from(format!("artifacts/{run_id}/{path}"))
}

/// Records an uploaded artifact (a second upload of the same path replaces the row).
pub async fn record(
    db: &impl ConnectionTrait,
    run_id: i64,
    path: &str,
    size: u64,
    sha256: &str,
) -> Result<()> {
    check_path(path)?;
    artifact::Entity::delete_many()
        .filter(artifact::Column::RunId.eq(run_id))
        .filter(artifact::Column::Path.eq(path))
        .exec(db)
        .await?;
    artifact::ActiveModel {
        run_id: Set(run_id),
        path: Set(path.to_owned()),
        size: Set(i64::try_from(size).unwrap_or(i64::MAX)),
        sha256: Set(sha256.to_owned()),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

pub async fn list(db: &impl ConnectionTrait, run_id: i64) -> Result<Vec<artifact::Model>> {
    Ok(artifact::Entity::find()
        .filter(artifact::Column::RunId.eq(run_id))
        .order_by_asc(artifact::Column::Path)
        .all(db)
        .await?)
}

pub async fn get(db: &impl ConnectionTrait, run_id: i64, path: &str) -> Result<artifact::Model> {
    check_path(path)?;
    artifact::Entity::find()
        .filter(artifact::Column::RunId.eq(run_id))
        .filter(artifact::Column::Path.eq(path))
        .one(db)
        .await?
        .ok_or(Error::NotFound)
}

/// A failing test, as JUnit named it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FailedTest {
    pub suite: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// A run's JUnit results, summed over its `junit` steps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TestSummary {
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    /// The failing tests (the first 200).
    pub failures: Vec<FailedTest>,
}

impl TestSummary {
    pub fn add(&mut self, other: TestSummary) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
        let room = 200usize.saturating_sub(self.failures.len());
        self.failures.extend(other.failures.into_iter().take(room));
    }
}

pub async fn set_tests(db: &impl ConnectionTrait, run_id: i64, tests: &TestSummary) -> Result<()> {
    let json = serde_json::to_string(tests).map_err(|e| Error::Conflict(e.to_string()))?;
    run::Entity::update_many()
        .col_expr(run::Column::Tests, Expr::value(json))
        .filter(run::Column::Id.eq(run_id))
        .exec(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_the_workspace() {
        assert!(check_path("dist/app.tar.gz").is_ok());
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            "a\\b",
            "a/.",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }
}
