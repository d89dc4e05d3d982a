//! Files in the workspace: Ant-style globs (`**/*.jar`, comma-separated, as
//! `archiveArtifacts`, `stash` and `junit` take them) and copying for `stash`/`unstash`.

use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};

fn set(patterns: &str) -> Result<GlobSet, String> {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        // Ant: a pattern ending in `/` means everything below it.
        let pattern = if pattern.ends_with('/') {
            format!("{pattern}**")
        } else {
            pattern.to_owned()
        };
        let glob = globset::GlobBuilder::new(&pattern)
            .literal_separator(true)
            .build()
            .or_else(|_| Glob::new(&pattern))
            .map_err(|e| format!("bad pattern `{pattern}`: {e}"))?;
        builder.add(glob);
    }
    builder.build().map_err(|e| e.to_string())
}

/// The files under `base` matching `includes` and not `excludes`, as (relative path with
/// `/`, absolute path), sorted. Symbolic links are not followed out of the workspace.
pub(crate) fn matching(
    base: &Path,
    includes: &str,
    excludes: Option<&str>,
) -> Result<Vec<(String, PathBuf)>, String> {
    let include = set(includes)?;
    let exclude = set(excludes.unwrap_or(""))?;
    let mut found = Vec::new();
    for entry in walkdir::WalkDir::new(base)
        .follow_links(false)
        .sort_by_file_name()
    {
        let Ok(entry) = entry else { continue };
        if !entry.file_type().is_file() {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(base) else {
            continue;
        };
        let rel: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        let rel = rel.join("/");
        if include.is_match(&rel) && !exclude.is_match(&rel) {
            found.push((rel, entry.path().to_owned()));
        }
    }
    Ok(found)
}

/// Copies `files` (relative path, source) under `dest`.
pub(crate) async fn copy_into(files: &[(String, PathBuf)], dest: &Path) -> std::io::Result<()> {
    for (rel, src) in files {
        let target = dest.join(rel);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        tokio::fs::copy(src, &target).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ant_globs_match_like_jenkins() {
        let dir = tempfile::tempdir().unwrap();
        for f in [
            "dist/app.tar.gz",
            "dist/sub/x.jar",
            "README.md",
            "target/a.jar",
        ] {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f).unwrap();
        }
        let names = |inc: &str, exc: Option<&str>| -> Vec<String> {
            matching(dir.path(), inc, exc)
                .unwrap()
                .into_iter()
                .map(|(r, _)| r)
                .collect()
        };
        assert_eq!(names("dist/*", None), vec!["dist/app.tar.gz"]);
        assert_eq!(
            names("**/*.jar", None),
            vec!["dist/sub/x.jar", "target/a.jar"]
        );
        assert_eq!(names("**/*.jar", Some("target/**")), vec!["dist/sub/x.jar"]);
        assert_eq!(names("README.md, dist/", None).len(), 3);
        assert!(names("nothing/*", None).is_empty());
    }
}
