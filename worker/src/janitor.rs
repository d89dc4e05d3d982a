//! Cleaning up after workers that died: attempt directories `run-{id}-{attempt}` under the
//! workspace root whose attempt no longer runs anywhere are removed. (Their build processes
//! died with their worker: each step's supervisor kills them when its lifeline closes.) A
//! worker sweeps when it starts, after taking a run over, and every half lease.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::Utc;
use sea_orm::{DatabaseConnection, EntityTrait};
use sluice_core::entities::run;

/// `run-{id}-{attempt}`.
pub fn parse_name(name: &str) -> Option<(i64, i32)> {
    let rest = name.strip_prefix("run-")?;
    let (id, attempt) = rest.rsplit_once('-')?;
    Some((id.parse().ok()?, attempt.parse().ok()?))
}

/// Sweeps `root`, leaving `active` (this worker's own) alone; returns the workspaces removed.
pub async fn sweep(
    db: &DatabaseConnection,
    root: &Path,
    active: &HashSet<PathBuf>,
    stale_after: Duration,
) -> usize {
    let Ok(mut entries) = tokio::fs::read_dir(root).await else {
        return 0;
    };
    let stale_before = Utc::now() - chrono::Duration::from_std(stale_after).unwrap_or_default();
    let mut removed = 0;
    while let Ok(Some(entry)) = entries.next_entry().await {
        let path = entry.path();
        let Some((run_id, attempt)) = entry.file_name().to_str().and_then(parse_name) else {
            continue;
        };
        if active.contains(&path) {
            continue;
        }
        let current = match run::Entity::find_by_id(run_id).one(db).await {
            Ok(found) => found,
            Err(_) => continue,
        };
        let alive = current.is_some_and(|r| {
            r.attempt == attempt
                && matches!(r.status.as_str(), "running" | "waiting")
                && r.heartbeat_at.is_some_and(|at| at >= stale_before)
        });
        if alive {
            continue;
        }
        match tokio::fs::remove_dir_all(&path).await {
            Ok(()) => {
                removed += 1;
                tracing::info!(run = run_id, attempt, "removed a dead attempt's workspace");
            }
            Err(err) => {
                tracing::warn!(run = run_id, error = %err, "removing a dead attempt's workspace failed")
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_names() {
        assert_eq!(parse_name("run-12-3"), Some((12, 3)));
        assert_eq!(parse_name("run-x-3"), None);
        assert_eq!(parse_name("other"), None);
    }
}
