//! Input rules shared by the API and the pages, each naming the field at fault.

use crate::{Error, Result};

/// Org and project slugs: 2–40 of `a-z`, `0-9` and `-`, not starting or ending with `-`.
pub fn slug(field: &'static str, value: &str) -> Result<()> {
    let ok_chars = value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !(2..=40).contains(&value.len())
        || !ok_chars
        || value.starts_with('-')
        || value.ends_with('-')
    {
        return Err(Error::invalid(
            field,
            "use 2 to 40 lowercase letters, digits and dashes, not starting or ending with a dash",
        ));
    }
    Ok(())
}

/// A display name: 1–200 characters after trimming.
pub fn name(field: &'static str, value: &str) -> Result<String> {
    let trimmed = value.trim();
    if trimmed.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    if trimmed.is_empty() || trimmed.chars().count() > 200 {
        return Err(Error::invalid(field, "must be 1 to 200 characters"));
    }
    Ok(trimmed.to_owned())
}

/// An email address, normalised to lower case.
pub fn email(value: &str) -> Result<String> {
    let email = value.trim().to_lowercase();
    let valid = email.len() <= 320
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if !valid {
        return Err(Error::invalid(
            "email",
            "must be an email address like name@example.com",
        ));
    }
    Ok(email)
}

/// Passwords: 8 to 256 characters, no NUL (it cannot be stored or typed).
pub fn password(value: &str) -> Result<()> {
    let len = value.chars().count();
    if !(8..=256).contains(&len) || value.contains('\0') {
        return Err(Error::invalid("password", "must be 8 to 256 characters"));
    }
    Ok(())
}

/// Parameter and environment names: `A-Z`, `0-9`, `_`, not starting with a digit, ≤ 128.
pub fn env_name(value: &str) -> Result<()> {
    let valid = !value.is_empty()
        && value.len() <= 128
        && !value.starts_with(|c: char| c.is_ascii_digit())
        && value
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if !valid {
        return Err(Error::invalid(
            "name",
            "use A-Z, 0-9 and _, not starting with a digit (at most 128)",
        ));
    }
    Ok(())
}

/// Secret names are Jenkins credential ids, so `credentials('deploy-token')` finds its
/// secret: letters, digits, `-`, `_` and `.`, starting with a letter or digit, ≤ 128.
pub fn secret_name(value: &str) -> Result<()> {
    let valid = !value.is_empty()
        && value.len() <= 128
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !valid {
        return Err(Error::invalid(
            "name",
            "a secret name is a Jenkins credential id: letters, digits, `-`, `_` and `.`, \
             starting with a letter or digit (at most 128), e.g. `deploy-token`",
        ));
    }
    Ok(())
}

/// Repository URLs Sluice can clone: https, http, ssh, scp-style `git@host:path`, or file.
pub fn repo_url(value: &str) -> Result<()> {
    let value = value.trim();
    let scp_style = value.split_once('@').is_some_and(|(user, rest)| {
        !user.is_empty()
            && !user.contains('/')
            && rest
                .split_once(':')
                .is_some_and(|(h, p)| !h.is_empty() && !p.is_empty())
    });
    let schemed = ["https://", "http://", "ssh://", "git://", "file://"]
        .iter()
        .any(|scheme| {
            value
                .strip_prefix(scheme)
                .is_some_and(|rest| rest.len() > 1)
        });
    if value.len() > 2048
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
        || !(schemed || scp_style)
    {
        return Err(Error::invalid(
            "repo_url",
            "must be an https://, ssh://, git@host:path or file:// repository URL",
        ));
    }
    Ok(())
}

/// Branch names and pipeline paths: non-empty, no spaces or `..`, at most `max` bytes.
pub fn path_like(field: &'static str, value: &str, max: usize) -> Result<()> {
    if value.is_empty()
        || value.len() > max
        || value.contains("..")
        || value.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(Error::invalid(
            field,
            format!("must be 1 to {max} characters without spaces or '..'"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_follow_the_rules() {
        for good in ["ab", "acme", "acme-2", "a1", &"x".repeat(40)] {
            assert!(slug("slug", good).is_ok(), "{good}");
        }
        for bad in [
            "a",
            "Acme",
            "-acme",
            "acme-",
            "ac me",
            "acme_co",
            &"x".repeat(41),
            "ünï",
        ] {
            assert!(slug("slug", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn control_characters_are_refused_everywhere() {
        assert!(email("a\u{0}@example.com").is_err());
        assert!(name("name", "x\u{0}y").is_err());
        assert!(repo_url("https://x.example/\u{0}").is_err());
        assert!(password("long enough\u{0}").is_err());
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            email(" Alice@Example.COM ").ok().as_deref(),
            Some("alice@example.com")
        );
        for bad in [
            "alice",
            "@example.com",
            "alice@",
            "alice@localhost",
            "a b@example.com",
        ] {
            assert!(email(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn repo_urls_and_secret_names() {
        for good in [
            "https://github.com/a/b.git",
            "git@github.com:a/b.git",
            "ssh://git@h/x",
            "file:///srv/repo",
        ] {
            assert!(repo_url(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "github.com/a/b",
            "javascript:alert(1)",
            "https://",
            "https://a b",
        ] {
            assert!(repo_url(bad).is_err(), "{bad}");
        }
        for good in [
            "DEPLOY_TOKEN",
            "deploy-token",
            "github.app.key",
            "1password",
        ] {
            assert!(secret_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "-lead",
            ".hidden",
            "..",
            "a/b",
            "a b",
            "é",
            &"x".repeat(129),
        ] {
            assert!(secret_name(bad).is_err(), "{bad}");
        }
        assert!(env_name("DEPLOY_TOKEN").is_ok());
        for bad in ["", "lower", "1ABC", "A-B"] {
            assert!(env_name(bad).is_err(), "{bad}");
        }
    }
}
