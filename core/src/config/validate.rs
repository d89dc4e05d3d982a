//! Checking settings once they are loaded: a bad value stops start-up and names the setting.

use secrecy::ExposeSecret;
use std::collections::BTreeMap;

use super::Settings;
use crate::addresses::{DenyList, parse_egress};
use crate::{Error, Result};

/// A Kubernetes resource quantity in the forms Sluice's settings take: a decimal number with
/// an optional SI or binary suffix (`250m`, `2`, `1.5`, `512Mi`, `4Gi`, `1G`).
pub fn is_quantity(value: &str) -> bool {
    let suffixes = [
        "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "m", "k", "M", "G", "T", "P", "E",
    ];
    let number = suffixes
        .iter()
        .find_map(|s| value.strip_suffix(s))
        .unwrap_or(value);
    let mut parts = number.splitn(2, '.');
    let whole = parts.next().unwrap_or_default();
    let fraction = parts.next();
    !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()))
}

/// A Kubernetes label value: at most 63 characters, alphanumeric at both ends, `-_.` inside.
fn is_label_value(value: &str) -> bool {
    let bytes = value.as_bytes();
    !value.is_empty()
        && value.len() <= 63
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Settings {
    /// `kube_pod_templates` as label → image; an error names the entry at fault.
    pub fn pod_templates(&self) -> std::result::Result<BTreeMap<String, String>, String> {
        let mut templates = BTreeMap::new();
        for entry in self
            .kube_pod_templates
            .split(',')
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            match entry.split_once('=') {
                Some((label, image)) if !label.trim().is_empty() && !image.trim().is_empty() => {
                    templates.insert(label.trim().to_owned(), image.trim().to_owned());
                }
                _ => return Err(format!("`{entry}` is not `label=image`")),
            }
        }
        Ok(templates)
    }

    pub(super) fn validate(&self) -> Result<()> {
        if let Err(message) = DenyList::parse(&self.repo_deny_cidrs) {
            return Err(Error::InvalidSetting {
                field: "repo_deny_cidrs",
                message,
            });
        }
        if let Err(message) = parse_egress(&self.tenant_egress_cidrs) {
            return Err(Error::InvalidSetting {
                field: "tenant_egress_cidrs",
                message,
            });
        }
        for (field, value) in [
            ("tenant_pod_cpu", &self.tenant_pod_cpu),
            ("tenant_pod_memory", &self.tenant_pod_memory),
            (
                "tenant_pod_ephemeral_storage",
                &self.tenant_pod_ephemeral_storage,
            ),
        ] {
            if !is_quantity(value) {
                return Err(Error::InvalidSetting {
                    field,
                    message: format!(
                        "`{value}` is not a Kubernetes quantity (like 500m, 2, 512Mi or 4Gi)"
                    ),
                });
            }
        }
        if let Err(message) = self.pod_templates() {
            return Err(Error::InvalidSetting {
                field: "kube_pod_templates",
                message,
            });
        }
        if !is_label_value(&self.kube_controller) {
            return Err(Error::InvalidSetting {
                field: "kube_controller",
                message: format!(
                    "`{}` is not a Kubernetes label value (letters, digits, `-`, `_`, `.`, at most 63)",
                    self.kube_controller
                ),
            });
        }
        if let Some(url) = &self.database_url {
            let url = url.expose_secret();
            if !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
            {
                return Err(Error::InvalidSetting {
                    field: "database_url",
                    message: "must start with sqlite:, postgres:// or postgresql://".into(),
                });
            }
        }
        if let Some(url) = &self.redis_url {
            let url = url.expose_secret();
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                return Err(Error::InvalidSetting {
                    field: "redis_url",
                    message: "must start with redis:// or rediss://".into(),
                });
            }
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(Error::InvalidSetting {
                field: "public_url",
                message: "must start with http:// or https://".into(),
            });
        }
        if self.max_body_bytes == 0 {
            return Err(Error::InvalidSetting {
                field: "max_body_bytes",
                message: "must be greater than zero".into(),
            });
        }
        for (field, value) in [
            ("worker_concurrency", self.worker_concurrency as u64),
            ("queue_lease_secs", self.queue_lease_secs),
            ("queue_max_deliveries", u64::from(self.queue_max_deliveries)),
            ("dispatch_backlog", u64::from(self.dispatch_backlog)),
        ] {
            if value == 0 {
                return Err(Error::InvalidSetting {
                    field,
                    message: "must be greater than zero".into(),
                });
            }
        }
        if !(0.0..=1.0).contains(&self.release_min_success_rate) {
            return Err(Error::InvalidSetting {
                field: "release_min_success_rate",
                message: "must be between 0 and 1 (0.99 is 99%)".into(),
            });
        }
        if self.release_max_p99_ms.is_nan() || self.release_max_p99_ms <= 0.0 {
            return Err(Error::InvalidSetting {
                field: "release_max_p99_ms",
                message: "must be greater than zero".into(),
            });
        }
        if self.release_lease_secs < 2 {
            return Err(Error::InvalidSetting {
                field: "release_lease_secs",
                message: "must be at least 2 (it is renewed every third of it)".into(),
            });
        }
        if self.release_ready_timeout_secs == 0 {
            return Err(Error::InvalidSetting {
                field: "release_ready_timeout_secs",
                message: "must be greater than zero".into(),
            });
        }
        if self.queue_prefix.is_empty() || self.queue_prefix.chars().any(char::is_control) {
            return Err(Error::InvalidSetting {
                field: "queue_prefix",
                message: "must be non-empty printable text".into(),
            });
        }
        if let Some(token) = &self.metrics_token {
            let token = token.expose_secret();
            if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(Error::InvalidSetting {
                    field: "metrics_token",
                    message: "must be non-empty printable text without spaces (unset it to \
                              leave /metrics open)"
                        .into(),
                });
            }
        }
        if self.db_max_connections == 0 {
            return Err(Error::InvalidSetting {
                field: "db_max_connections",
                message: "must be greater than zero".into(),
            });
        }
        Ok(())
    }

    /// The database to use: the configured URL, or the SQLite file in the data dir.
    pub(super) fn validate_oauth(&self) -> Result<()> {
        for (name, provider) in &self.oauth {
            let name_ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !name_ok {
                return Err(Error::InvalidSetting {
                    field: "oauth",
                    message: format!("provider name `{name}`: use a-z, 0-9 and -"),
                });
            }
            let issuer_ok = match &provider.issuer {
                Some(url) => url.starts_with("https://") || url.starts_with("http://"),
                None => name == "github" || name == "gitlab",
            };
            if !issuer_ok {
                return Err(Error::InvalidSetting {
                    field: "oauth",
                    message: format!(
                        "provider `{name}` needs an http(s) issuer URL (only github and gitlab have presets)"
                    ),
                });
            }
        }
        Ok(())
    }
}
