//! "Did you mean": the known name closest to a misspelt one.

/// Steps a Jenkinsfile may call, declarative and Groovy, for suggestions.
pub const KNOWN_NAMES: &[&str] = &[
    "sh",
    "echo",
    "error",
    "sleep",
    "dir",
    "withEnv",
    "withCredentials",
    "timeout",
    "retry",
    "catchError",
    "warnError",
    "unstable",
    "archiveArtifacts",
    "stash",
    "unstash",
    "junit",
    "writeFile",
    "readFile",
    "fileExists",
    "deleteDir",
    "checkout",
    "input",
    "deploy",
    "parallel",
    "script",
    "println",
    "isUnix",
    "string",
    "usernamePassword",
    "file",
    "sshUserPrivateKey",
];

/// The known name nearest `name`, when it is close enough to be a typo.
pub fn suggest(name: &str) -> Option<&'static str> {
    KNOWN_NAMES
        .iter()
        .map(|k| (strsim::damerau_levenshtein(name, k), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(1) && *d > 0)
        .min()
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    #[test]
    fn near_names_are_suggested_and_far_ones_are_not() {
        assert_eq!(super::suggest("shh"), Some("sh"));
        assert_eq!(super::suggest("archiveArtefacts"), Some("archiveArtifacts"));
        assert_eq!(super::suggest("ech"), Some("echo"));
        assert_eq!(super::suggest("kubectl"), None);
    }
}
