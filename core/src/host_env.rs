//! The environment build code and git get: never the worker's own (which holds
//! `SLUICE_SECRET_KEY`, database and Redis URLs), only what a shell needs to work.

/// Variables passed through from the worker's environment when set.
const PASSED: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "TZ",
    "TMPDIR",
    "SSH_AUTH_SOCK",
];

/// The base environment of every child process.
pub fn base() -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = PASSED
        .iter()
        .filter_map(|name| std::env::var(name).ok().map(|v| ((*name).to_owned(), v)))
        .collect();
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()));
    }
    env
}

#[cfg(test)]
mod tests {
    #[test]
    fn nothing_of_sluice_passes() {
        assert!(super::base().iter().all(|(k, _)| !k.starts_with("SLUICE_")));
        assert!(super::base().iter().any(|(k, _)| k == "PATH"));
    }
}
