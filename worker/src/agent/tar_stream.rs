//! Tar streams in and out of agents: packing a directory, unpacking below one, a one-file
//! archive (`writeFile`), and taking the files of an archive that match Ant-style globs
//! (`archiveArtifacts`, `stash`, `junit`). The `tar` crate is synchronous, so each runs on the
//! blocking pool over a bridge to the async stream.

use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use globset::{Glob, GlobSet, GlobSetBuilder};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};
use tokio_util::io::SyncIoBridge;

use super::ByteStream;

/// How much of a stream is buffered between the tar code and its reader.
const PIPE: usize = 256 * 1024;

/// The files below `dir` as a tar stream (names relative to `dir`, links not followed). When
/// packing fails part-way, the stream ends with that error rather than looking complete.
pub fn pack_dir(dir: PathBuf) -> ByteStream {
    let (writer, reader) = tokio::io::duplex(PIPE);
    let failed = Arc::new(Mutex::new(None));
    let report = failed.clone();
    let bridge = SyncIoBridge::new(writer);
    tokio::task::spawn_blocking(move || {
        let mut builder = tar::Builder::new(bridge);
        builder.follow_symlinks(false);
        let packed = builder
            .append_dir_all(".", &dir)
            .and_then(|()| builder.finish());
        if let Err(err) = packed
            && let Ok(mut slot) = report.lock()
        {
            // Set before the builder (and so the writer) is dropped: the reader sees the end
            // of the stream only after this.
            *slot = Some(format!("packing {}: {err}", dir.display()));
        }
        drop(builder);
    });
    Box::pin(Packed { reader, failed })
}

/// The reading end of [`pack_dir`]: at the end of the stream, the packing error if any.
struct Packed {
    reader: tokio::io::DuplexStream,
    failed: Arc<Mutex<Option<String>>>,
}

impl AsyncRead for Packed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.reader).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() == before && buf.remaining() > 0 => {
                let failed = self.failed.lock().ok().and_then(|mut f| f.take());
                Poll::Ready(match failed {
                    Some(err) => Err(std::io::Error::other(err)),
                    None => Ok(()),
                })
            }
            other => other,
        }
    }
}

/// Unpacks `tar` below `dest` (created when missing). Entries that would land outside `dest`
/// are refused by the `tar` crate.
pub async fn unpack(tar: ByteStream, dest: PathBuf) -> std::io::Result<()> {
    tokio::fs::create_dir_all(&dest).await?;
    let bridge = SyncIoBridge::new(tar);
    tokio::task::spawn_blocking(move || {
        let mut archive = tar::Archive::new(bridge);
        archive.set_preserve_permissions(true);
        archive.set_overwrite(true);
        archive.unpack(&dest)
    })
    .await
    .map_err(std::io::Error::other)?
}

/// An archive holding one file, `name`, with `contents`.
pub fn single_file(name: &str, contents: &[u8]) -> std::io::Result<ByteStream> {
    file_with_mode(name, contents, 0o644)
}

/// An archive holding one file only its owner may read (a secret: `withCredentials` files
/// and SSH keys, which `ssh` refuses when others can read them).
pub fn private_file(name: &str, contents: &[u8]) -> std::io::Result<ByteStream> {
    file_with_mode(name, contents, 0o600)
}

fn file_with_mode(name: &str, contents: &[u8], mode: u32) -> std::io::Result<ByteStream> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(contents.len() as u64);
    header.set_mode(mode);
    header.set_mtime(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    );
    builder.append_data(&mut header, name, contents)?;
    let bytes = builder.into_inner()?;
    Ok(Box::pin(std::io::Cursor::new(bytes)))
}

/// An archive with nothing in it (putting it creates the directory).
pub fn empty() -> ByteStream {
    let bytes = tar::Builder::new(Vec::new())
        .into_inner()
        .unwrap_or_default();
    Box::pin(std::io::Cursor::new(bytes))
}

/// Ant-style patterns, comma-separated (`**/*.jar, dist/`), as `archiveArtifacts`, `stash`
/// and `junit` take them.
pub fn globs(patterns: &str) -> Result<GlobSet, String> {
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

/// Unpacks the regular files of `tar` whose names match `includes` and not `excludes` below
/// `dest`; returns their names (`/`-separated, relative), sorted.
pub async fn select(
    tar: ByteStream,
    includes: &str,
    excludes: Option<&str>,
    dest: PathBuf,
) -> Result<Vec<String>, String> {
    let include = globs(includes)?;
    let exclude = globs(excludes.unwrap_or(""))?;
    tokio::fs::create_dir_all(&dest)
        .await
        .map_err(|e| e.to_string())?;
    let bridge = SyncIoBridge::new(tar);
    tokio::task::spawn_blocking(move || -> Result<Vec<String>, String> {
        let mut archive = tar::Archive::new(bridge);
        let mut found = Vec::new();
        for entry in archive.entries().map_err(|e| e.to_string())? {
            let mut entry = entry.map_err(|e| e.to_string())?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let path = entry.path().map_err(|e| e.to_string())?.into_owned();
            let Some(rel) = relative(&path) else { continue };
            if include.is_match(&rel) && !exclude.is_match(&rel) {
                if !entry.unpack_in(&dest).map_err(|e| e.to_string())? {
                    continue;
                }
                found.push(rel);
            }
        }
        found.sort();
        Ok(found)
    })
    .await
    .map_err(|e| e.to_string())?
}

/// A tar entry's name as `a/b/c`, without a leading `./`; None for names leaving the root.
fn relative(path: &Path) -> Option<String> {
    super::clean(&path.to_string_lossy())
        .ok()
        .filter(|p| !p.is_empty())
}

/// Writes `files` (relative names below `base`) into a new tar file at `dest`.
pub async fn pack_files(base: PathBuf, files: Vec<String>, dest: PathBuf) -> std::io::Result<()> {
    let mut out = tokio::fs::File::create(&dest).await?;
    let bytes = tokio::task::spawn_blocking(move || -> std::io::Result<Vec<u8>> {
        let mut builder = tar::Builder::new(Vec::new());
        builder.follow_symlinks(false);
        for rel in &files {
            builder.append_path_with_name(base.join(rel), rel)?;
        }
        builder.into_inner()
    })
    .await
    .map_err(std::io::Error::other)??;
    out.write_all(&bytes).await?;
    out.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_packing_error_ends_the_stream_with_it() {
        use tokio::io::AsyncReadExt;
        let (writer, reader) = tokio::io::duplex(64);
        drop(writer);
        let mut packed = Packed {
            reader,
            failed: Arc::new(Mutex::new(Some("packing x: gone".into()))),
        };
        let err = packed.read_to_end(&mut Vec::new()).await.unwrap_err();
        assert_eq!(err.to_string(), "packing x: gone");
        let missing = std::path::PathBuf::from("/nonexistent/sluice-test-dir");
        let err = pack_dir(missing)
            .read_to_end(&mut Vec::new())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("packing /nonexistent"), "{err}");
    }

    #[tokio::test]
    async fn ant_globs_pick_files_from_a_packed_tree() {
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
        let names = |inc: &'static str, exc: Option<&'static str>| {
            let src = dir.path().to_path_buf();
            async move {
                let out = tempfile::tempdir().unwrap();
                let found = select(pack_dir(src), inc, exc, out.path().to_path_buf())
                    .await
                    .unwrap();
                for f in &found {
                    assert_eq!(std::fs::read_to_string(out.path().join(f)).unwrap(), *f);
                }
                found
            }
        };
        assert_eq!(names("dist/*", None).await, vec!["dist/app.tar.gz"]);
        assert_eq!(
            names("**/*.jar", None).await,
            vec!["dist/sub/x.jar", "target/a.jar"]
        );
        assert_eq!(
            names("**/*.jar", Some("target/**")).await,
            vec!["dist/sub/x.jar"]
        );
        assert_eq!(names("README.md, dist/", None).await.len(), 3);
        assert!(names("nothing/*", None).await.is_empty());
    }
}
