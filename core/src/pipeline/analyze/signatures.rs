//! Step arguments checked against each step's signature at lint time, as Jenkins checks them
//! when it compiles the pipeline: unknown parameter names (with "did you mean"), a parameter
//! given twice, literals of the wrong type, too many positional arguments.

use super::super::syntax::{Node, Value};
use super::Analyzer;

/// What a parameter takes; only literals are checked (a Groovy expression may be anything).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ty {
    Str,
    Bool,
    /// A whole number in Java's `int` range (a numeric string too, as Jenkins coerces).
    Int,
    List,
    Any,
}

use Ty::*;

/// A step's named parameters and how many positional arguments it takes (a lone positional
/// argument stands for its first parameter).
struct Signature {
    step: &'static str,
    params: &'static [(&'static str, Ty)],
    positional: usize,
}

const SIGNATURES: &[Signature] = &[
    Signature {
        step: "sh",
        params: &[
            ("script", Str),
            ("returnStdout", Bool),
            ("returnStatus", Bool),
            ("encoding", Str),
            ("label", Str),
        ],
        positional: 1,
    },
    Signature {
        step: "echo",
        params: &[("message", Str)],
        positional: 1,
    },
    Signature {
        step: "error",
        params: &[("message", Str)],
        positional: 1,
    },
    Signature {
        step: "sleep",
        params: &[("time", Int), ("unit", Str)],
        positional: 1,
    },
    Signature {
        step: "dir",
        params: &[("path", Str)],
        positional: 1,
    },
    Signature {
        step: "withEnv",
        params: &[("overrides", List)],
        positional: 1,
    },
    Signature {
        step: "withCredentials",
        params: &[("bindings", List)],
        positional: 1,
    },
    Signature {
        step: "timeout",
        params: &[("time", Int), ("unit", Str), ("activity", Bool)],
        positional: 1,
    },
    Signature {
        step: "retry",
        params: &[("count", Int), ("conditions", List)],
        positional: 1,
    },
    Signature {
        step: "catchError",
        params: &[
            ("buildResult", Str),
            ("stageResult", Str),
            ("message", Str),
            ("catchInterruptions", Bool),
        ],
        positional: 0,
    },
    Signature {
        step: "warnError",
        params: &[("message", Str), ("catchInterruptions", Bool)],
        positional: 1,
    },
    Signature {
        step: "unstable",
        params: &[("message", Str)],
        positional: 1,
    },
    Signature {
        step: "archiveArtifacts",
        params: &[
            ("artifacts", Str),
            ("excludes", Str),
            ("allowEmptyArchive", Bool),
            ("fingerprint", Bool),
            ("onlyIfSuccessful", Bool),
            ("caseSensitive", Bool),
            ("defaultExcludes", Bool),
            ("followSymlinks", Bool),
        ],
        positional: 1,
    },
    Signature {
        step: "archive",
        params: &[("includes", Str), ("excludes", Str)],
        positional: 1,
    },
    Signature {
        step: "stash",
        params: &[
            ("name", Str),
            ("includes", Str),
            ("excludes", Str),
            ("allowEmpty", Bool),
            ("useDefaultExcludes", Bool),
        ],
        positional: 1,
    },
    Signature {
        step: "unstash",
        params: &[("name", Str)],
        positional: 1,
    },
    Signature {
        step: "junit",
        params: &[
            ("testResults", Str),
            ("allowEmptyResults", Bool),
            ("keepLongStdio", Bool),
            ("keepProperties", Bool),
            ("keepTestNames", Bool),
            ("skipPublishingChecks", Bool),
            ("skipMarkingBuildUnstable", Bool),
            ("skipOldReports", Bool),
            ("healthScaleFactor", Any),
            ("checksName", Str),
            ("stdioRetention", Str),
            ("testDataPublishers", List),
        ],
        positional: 1,
    },
    Signature {
        step: "writeFile",
        params: &[("file", Str), ("text", Str), ("encoding", Str)],
        positional: 0,
    },
    Signature {
        step: "deleteDir",
        params: &[],
        positional: 0,
    },
    Signature {
        step: "input",
        params: &[
            ("message", Str),
            ("ok", Str),
            ("submitter", Str),
            ("parameters", List),
            ("id", Str),
            ("submitterParameter", Str),
        ],
        positional: 1,
    },
    Signature {
        step: "milestone",
        params: &[("ordinal", Int), ("label", Str), ("unsafe", Bool)],
        positional: 1,
    },
    Signature {
        step: "ansiColor",
        params: &[("colorMapName", Str)],
        positional: 1,
    },
    Signature {
        step: "timestamps",
        params: &[],
        positional: 0,
    },
    Signature {
        step: "lock",
        params: &[
            ("resource", Str),
            ("label", Str),
            ("quantity", Int),
            ("inversePrecedence", Bool),
            ("skipIfLocked", Bool),
            ("variable", Str),
        ],
        positional: 1,
    },
    Signature {
        step: "publishHTML",
        params: &[
            ("reportDir", Str),
            ("reportFiles", Str),
            ("reportName", Str),
            ("reportTitles", Str),
            ("allowMissing", Bool),
            ("alwaysLinkToLastBuild", Bool),
            ("keepAll", Bool),
            ("includes", Str),
            ("escapeUnderscores", Bool),
            ("useWrapperFileDirectly", Bool),
        ],
        positional: 0,
    },
];

/// The name in `known` nearest `name`, when close enough to be a typo.
pub(super) fn nearest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    known
        .into_iter()
        .map(|k| {
            (
                strsim::damerau_levenshtein(&name.to_lowercase(), &k.to_lowercase()),
                k,
            )
        })
        .filter(|(d, k)| *d <= (k.len() / 3).max(1))
        .min()
        .map(|(_, k)| k)
}

fn fits(ty: Ty, value: &Value) -> bool {
    match (ty, value) {
        (_, Value::Expr(..)) | (Any, _) => true,
        (Str, v) => matches!(
            v,
            Value::Str(..) | Value::GStr(..) | Value::Word(..) | Value::Num(..)
        ),
        (Bool, v) => matches!(v, Value::Bool(..)),
        (Int, Value::Num(n, _)) => n.fract() == 0.0 && (0.0..=f64::from(i32::MAX)).contains(n),
        (Int, Value::Str(s, _)) => s.trim().parse::<i32>().is_ok_and(|n| n >= 0),
        (Int, Value::GStr(..)) => true,
        (Int, _) => false,
        (List, v) => matches!(v, Value::List(..)),
    }
}

fn described(ty: Ty) -> &'static str {
    match ty {
        Str => "a string",
        Bool => "true or false",
        Int => "a whole number from 0 to 2147483647",
        List => "a list [ … ]",
        Any => "a value",
    }
}

impl Analyzer<'_> {
    /// Checks `node`'s arguments against its step's signature, when Sluice knows it.
    pub(super) fn check_signature(&mut self, node: &Node) {
        let Some(sig) = SIGNATURES.iter().find(|s| s.step == node.name) else {
            return;
        };
        let step = sig.step;
        let mut seen: Vec<&str> = Vec::new();
        for (key, value) in &node.args.named {
            if seen.contains(&key.as_str()) {
                self.error(
                    value.pos(),
                    format!("`{step}`: parameter `{key}:` is given twice"),
                );
                continue;
            }
            seen.push(key);
            let Some((_, ty)) = sig.params.iter().find(|(p, _)| p == key) else {
                let hint = nearest(key, sig.params.iter().map(|(p, _)| *p))
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                let takes = if sig.params.is_empty() {
                    "no parameters".to_owned()
                } else {
                    sig.params
                        .iter()
                        .map(|(p, _)| format!("`{p}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                self.error(
                    value.pos(),
                    format!("`{step}` has no parameter `{key}`{hint}; it takes {takes}"),
                );
                continue;
            };
            if !fits(*ty, value) {
                self.error(
                    value.pos(),
                    format!("`{step}`: `{key}:` takes {}", described(*ty)),
                );
            }
        }
        let positional = &node.args.positional;
        if positional.len() > sig.positional {
            let extra = &positional[sig.positional.min(positional.len())];
            let message = if sig.positional == 0 {
                format!("`{step}` takes named parameters only")
            } else {
                format!("`{step}` takes {} argument without a name", sig.positional)
            };
            self.error(extra.pos(), message);
        } else if let (Some(first), Some((name, ty))) = (positional.first(), sig.params.first()) {
            if !node.args.named.is_empty() && node.args.named.iter().any(|(k, _)| k == name) {
                self.error(
                    first.pos(),
                    format!("`{step}`: `{name}` is given twice (with and without its name)"),
                );
            } else if !fits(*ty, first) {
                self.error(
                    first.pos(),
                    format!("`{step}`: `{name}` takes {}", described(*ty)),
                );
            }
        }
    }
}
