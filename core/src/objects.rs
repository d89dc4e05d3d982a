//! Object storage for run logs and artifacts: the local filesystem under the data dir by
//! default, S3, Azure Blob or GCS when `object_store_url` names a bucket.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;

use crate::config::Settings;
use crate::{Error, Result};

/// The store every role shares; keys are `logs/{run}/…`, `artifacts/{run}/…`.
pub type Objects = Arc<dyn ObjectStore>;

/// Opens the configured store. Cloud credentials come from the provider's usual variables
/// (`AWS_*`, `AZURE_*`, `GOOGLE_*`), passed to `object_store` as options.
pub fn open(settings: &Settings) -> Result<Objects> {
    let Some(url) = settings
        .object_store_url
        .as_deref()
        .filter(|u| !u.is_empty())
    else {
        let dir = settings.data_dir.join("objects");
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
            action: "creating",
            path: dir.clone(),
            source,
        })?;
        return Ok(Arc::new(LocalFileSystem::new_with_prefix(&dir)?));
    };
    let parsed = url::Url::parse(url)
        .map_err(|e| Error::invalid("object_store_url", format!("`{url}` is not a URL: {e}")))?;
    let options = std::env::vars().filter_map(|(k, v)| {
        let lower = k.to_ascii_lowercase();
        ["aws_", "azure_", "google_"]
            .iter()
            .any(|p| lower.starts_with(p))
            .then_some((lower, v))
    });
    let (store, prefix) = object_store::parse_url_opts(&parsed, options).map_err(|e| {
        Error::invalid("object_store_url", format!("`{url}` cannot be opened: {e}"))
    })?;
    if prefix.as_ref().is_empty() {
        Ok(Arc::from(store))
    } else {
        Ok(Arc::new(PrefixStore::new(store, prefix)))
    }
}

/// A store in a directory (tests and tools).
pub fn local(dir: &std::path::Path) -> Result<Objects> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        action: "creating",
        path: dir.to_owned(),
        source,
    })?;
    Ok(Arc::new(LocalFileSystem::new_with_prefix(dir)?))
}
