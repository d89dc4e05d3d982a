//! The server's secret key: configured, or generated once into the data dir.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

use crate::{Error, Result};

/// File name of the generated key inside the data dir.
pub const KEY_FILE: &str = "secret.key";

/// Shortest accepted key, in characters.
const MIN_KEY_LEN: usize = 32;

/// Where the secret key came from, so start-up can say so.
#[derive(Debug, PartialEq, Eq)]
pub enum KeySource {
    /// `SLUICE_SECRET_KEY` or the config file.
    Configured,
    /// A key file that already existed in the data dir.
    File(PathBuf),
    /// A key file written just now (mode 0600).
    Generated(PathBuf),
}

/// Returns the configured key, else the key file in `data_dir`, creating it when absent.
pub fn load_or_generate(
    configured: Option<&SecretString>,
    data_dir: &Path,
) -> Result<(SecretString, KeySource)> {
    if let Some(key) = configured {
        check_length(key.expose_secret())?;
        return Ok((key.clone(), KeySource::Configured));
    }
    let path = data_dir.join(KEY_FILE);
    match std::fs::read_to_string(&path) {
        Ok(contents) => {
            let key = contents.trim().to_owned();
            check_length(&key)?;
            Ok((SecretString::from(key), KeySource::File(path)))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            rand::rng().fill_bytes(&mut bytes);
            let key: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)
                .map_err(|source| Error::Io {
                    action: "creating",
                    path: path.clone(),
                    source,
                })?;
            file.write_all(format!("{key}\n").as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|source| Error::Io {
                    action: "writing",
                    path: path.clone(),
                    source,
                })?;
            Ok((SecretString::from(key), KeySource::Generated(path)))
        }
        Err(source) => Err(Error::Io {
            action: "reading",
            path,
            source,
        }),
    }
}

fn check_length(key: &str) -> Result<()> {
    if key.len() < MIN_KEY_LEN {
        return Err(Error::InvalidSetting {
            field: "secret_key",
            message: format!("must be at least {MIN_KEY_LEN} characters"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn generates_a_private_key_once_and_then_reuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let (first, source) = load_or_generate(None, dir.path()).unwrap();
        let path = dir.path().join(KEY_FILE);
        assert_eq!(source, KeySource::Generated(path.clone()));
        assert_eq!(first.expose_secret().len(), 64);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let (second, source) = load_or_generate(None, dir.path()).unwrap();
        assert_eq!(source, KeySource::File(path));
        assert_eq!(first.expose_secret(), second.expose_secret());
    }

    #[test]
    fn configured_key_wins_and_short_keys_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretString::from("k".repeat(40));
        let (got, source) = load_or_generate(Some(&key), dir.path()).unwrap();
        assert_eq!(source, KeySource::Configured);
        assert_eq!(got.expose_secret(), key.expose_secret());
        assert!(
            !dir.path().join(KEY_FILE).exists(),
            "nothing written when configured"
        );

        let err = load_or_generate(Some(&SecretString::from("short")), dir.path()).unwrap_err();
        assert!(err.to_string().contains("secret_key"), "{err}");
    }
}
